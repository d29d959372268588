"""The composed MM-LLM (`mmagent.model.mmllm.MMLLM`) behind the chat interface.

    messages (+ image artifact ids) -> each id decoded once from the ArtifactStore (`message_images`)
    -> MMLLM.build_inputs (chat template, tool prompt, placeholders)
    -> splice image features -> own decode loop (KV cache; tokens streamed to `on_token`;
    `constrained=True` adds `mmagent.protocol.constrained`'s tool-call grammar as a per-step logits processor)
    -> text -> `mmagent.protocol.toolcall.parse_tool_calls` -> ChatResult

    from mmagent.backends import load_chat_model
    model = load_chat_model("mmagent-default")
    result = model.chat([Message(role="user", content="What is this?", images=["image_1"])],
                        tools=registry.schemas(), artifacts=store, on_token=print)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from mmagent.media.errors import UnsupportedMediaError
from mmagent.model.generation import SamplingConfig, TextStream
from mmagent.model.mmllm import MMLLM
from mmagent.protocol.chat import AdapterHook, ChatResult, Constrained, Message, OnToken

if TYPE_CHECKING:
    from mmagent.media.artifacts import ArtifactStore

log = logging.getLogger(__name__)


class ComposedChatModel:
    """`ChatModel` over an `MMLLM` (encoder -> projector -> LLM)."""

    def __init__(self, model: MMLLM, name: str = "mmllm", sampling: SamplingConfig | None = None,
                 adapter_hook: AdapterHook | None = None, routes: dict[str, str] | None = None) -> None:
        self.model = model
        self.name = name
        self.sampling = sampling or SamplingConfig()
        self.adapter_hook = adapter_hook  # picks a new session's adapter (`mmagent.protocol.chat.ServesSessions`)
        self._default_adapter = model.active_adapter  # the model's own (shipped) one
        self._sessions: dict[str, tuple[str | None, dict[str, str]]] = {}
        # routed slot -> the adapter serving it (a version the learning loop promoted for that slot);
        # a slot missing here is served by the folder's own adapter of that name
        self.routes: dict[str, str] = dict(routes or {})
        self._serving: str | None = model.active_adapter  # the adapter of replies no route takes

    @property
    def temperature(self) -> float:
        """The sampling temperature (0 = greedy); a server sets it per request under its model lock."""
        return self.sampling.temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.sampling.temperature = value

    @property
    def adapter(self) -> str | None:
        """The active adapter (version) name, as the interaction log records it."""
        return self.model.active_adapter

    def serve_session(self, session: str) -> str | None:
        """Activates the adapter `session` runs with: at its first turn in this process the one
        `adapter_hook` picks (the promoted version: no restart needed), else the model's own; later
        turns keep it, even if a newer version is promoted meanwhile."""
        if session not in self._sessions:
            picked = self.adapter_hook(self.model) if self.adapter_hook else None
            routing = self.model.config.routing
            routes = getattr(self.adapter_hook, "routes", None)  # the learning loop's per-slot versions
            slots = [routing.open_world] if routing is not None else []
            self._sessions[session] = (self._default_adapter if picked is None else picked,
                                       routes(self.model, slots) if routes and slots else {})
        name, self.routes = self._sessions[session]
        self._serving = name
        if self.model.active_adapter != name:
            self.model.set_adapter(name)
        return name

    @classmethod
    def from_pretrained(cls, folder: Path | str, name: str | None = None, settings=None,
                        dtype: torch.dtype | None = None) -> ComposedChatModel:
        """Loads a saved MM-LLM for serving. Unless `dtype` says otherwise, a bf16 fast decoder
        gets the LLM itself in bf16, and an int8 one in its prefill dtype (bf16 where the CPU has
        it natively, else fp32: `mmagent.model.cpu`): the decoder's float weights are then the LLM's own
        (no second copy, ~0.4 GB for SmolLM2-135M) and no precision is lost on the way."""
        model = MMLLM.from_pretrained(folder, settings, dtype=dtype or serving_dtype(MMLLM.read_config(folder)))
        model.warm_decoder()  # overlaps the decoder's build with the caller's first-turn set-up
        return cls(model, name or str(folder))

    def chat(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
        *,
        artifacts: ArtifactStore | None = None,
        max_new_tokens: int = 256,
        constrained: Constrained = False,
        on_token: OnToken | None = None,
    ) -> ChatResult:
        from mmagent.config import get_settings
        from mmagent.protocol.grounding import ground_calls
        from mmagent.protocol.toolcall import parse_tool_calls

        m, settings = self.model, get_settings()
        self._route(tools)
        images = message_images(messages, artifacts)
        inputs = m.build_inputs(messages, tools, artifacts=images, add_generation_prompt=True, reserve_tokens=max_new_tokens)
        # tools=[] (none offered, e.g. none fits the request) under constrained decoding: prose only
        processors = [self._grammar(tools, max_new_tokens, constrained)] if constrained and tools is not None else []
        stream = TextStream(m.tokenizer, on_token, m.eos_token_ids) if on_token else None
        sampling = SamplingConfig(**{**self.sampling.__dict__, "max_new_tokens": max_new_tokens})
        out = m.generate(m.collate([inputs]), sampling=sampling, processors=processors, on_step=stream)
        text = m.tokenizer.decode(out.tokens[0], skip_special_tokens=True)
        calls, errors, prose = parse_tool_calls(text)
        calls, dropped = ground_calls(calls, messages, tools) if tools and settings.ground_arguments else (calls, [])
        return ChatResult(text=text, tool_calls=calls, parse_errors=errors, prose=prose, prompt_tokens=out.prompt_tokens,
                          completion_tokens=len(out.tokens[0]), model=self.name, adapter=m.active_adapter,
                          dropped_arguments=dropped)

    def _route(self, tools: list[dict[str, Any]] | None) -> None:
        """Serves this reply with the adapter the folder's routing picks for its tools (`mmagent.model.adapter_routing`):
        a reply offered the user's tools by the open-world slot (its promoted version, else the folder's own), every
        other one by the session's adapter (the folder's own or the version promoted for it). The learning loop keeps
        versions per slot (`mmagent.continual.adapter_slots`), so a custom tool learnt from feedback never changes the
        built-in replies. With the routing's `chat: base`, a plain chat reply (`tools=None`) is the base LLM's (no adapter), so the
        bare base counts as a routed state, not as one made active by hand.
        An adapter a caller made active by hand (`model.set_adapter`) serves every reply."""
        routing, m = self.model.config.routing, self.model
        if routing is None:
            return
        routed = self.routes.get(routing.open_world, routing.open_world)
        if m.active_adapter not in (self._serving, routed) and not (routing.chat == "base" and m.active_adapter is None):
            return
        if routing.serves_base(tools):
            want = None
        else:
            want = routed if routing.adapter_for(tools, None) == routing.open_world else self._serving
        if want != m.active_adapter:
            m.set_adapter(want)

    def _grammar(self, tools: list[dict[str, Any]], max_new_tokens: int, constrained: Constrained = True):
        from mmagent.protocol.constrained import tool_call_processor

        mode = "required" if constrained == "required" else "auto"
        return tool_call_processor(self.model.tokenizer, tools, mode=mode, eos_token_ids=self.model.eos_token_ids,
                                   max_new_tokens=max_new_tokens)

    @torch.inference_mode()
    def warmup(self) -> None:
        """One tiny generation so that first-call costs (allocations, kernels) are not the user's."""
        self.chat([Message(role="user", content="hi")], max_new_tokens=2)


def message_images(messages: Sequence[Message | dict[str, Any]],
                   artifacts: ArtifactStore | Mapping[str, Image.Image] | None) -> Mapping[str, Image.Image] | None:
    """The images `messages` reference, id -> decoded PIL image, for `MMLLM.build_inputs`: each id
    resolved once from the store (`ArtifactStore.load_image`, which keeps recently decoded images).
    Unknown ids raise the store's `ArtifactError` (naming the known ones); a non-image artifact an
    `UnsupportedMediaError`. A mapping of PIL images is passed on as it is; None stays None (the
    model says so if a message references an image)."""
    if artifacts is None or isinstance(artifacts, Mapping):
        return artifacts
    images: dict[str, Image.Image] = {}
    for msg in messages:
        for art_id in msg.images if isinstance(msg, Message) else msg.get("images") or ():
            if art_id in images:
                continue
            art = artifacts.get(art_id)
            if art.kind != "image":
                raise UnsupportedMediaError(f"{art_id} is {art.kind} ({art.mime}); this model takes images only (use a tool for {art.kind})")
            images[art_id] = artifacts.load_image(art_id)
    return images


def serving_dtype(config) -> torch.dtype | None:
    """The LLM's dtype for serving a config (see `ComposedChatModel.from_pretrained`); None = the settings' dtype."""
    from mmagent.model.cpu import cpu_features

    if config.fast_decode and config.decode_dtype == "bfloat16":
        return torch.bfloat16
    if config.fast_decode and config.decode_dtype == "int8":
        return cpu_features().prefill_dtype
    return None
