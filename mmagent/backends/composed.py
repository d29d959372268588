"""The composed MM-LLM (`mmagent.model.mmllm.MMLLM`) behind the chat interface.

    messages (+ image artifact ids) -> MMLLM.build_inputs (chat template, tool prompt, placeholders)
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mmagent.model.generation import SamplingConfig, TextStream
from mmagent.model.mmllm import MMLLM
from mmagent.protocol.chat import AdapterHook, ChatResult, Constrained, Message, OnToken

if TYPE_CHECKING:
    from mmagent.media.artifacts import ArtifactStore

log = logging.getLogger(__name__)


class ComposedChatModel:
    """`ChatModel` over an `MMLLM` (encoder -> projector -> LLM)."""

    def __init__(self, model: MMLLM, name: str = "mmllm", sampling: SamplingConfig | None = None,
                 adapter_hook: AdapterHook | None = None) -> None:
        self.model = model
        self.name = name
        self.sampling = sampling or SamplingConfig()
        self.adapter_hook = adapter_hook  # picks a new session's adapter (`mmagent.protocol.chat.ServesSessions`)
        self._default_adapter = model.active_adapter  # the model's own (shipped) one
        self._sessions: dict[str, str | None] = {}

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
            self._sessions[session] = self._default_adapter if picked is None else picked
        name = self._sessions[session]
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
        from mmagent.protocol.toolcall import parse_tool_calls

        m = self.model
        inputs = m.build_inputs(messages, tools, artifacts=artifacts, add_generation_prompt=True, reserve_tokens=max_new_tokens)
        processors = [self._grammar(tools, max_new_tokens, constrained)] if constrained and tools else []
        stream = TextStream(m.tokenizer, on_token, m.eos_token_ids) if on_token else None
        sampling = SamplingConfig(**{**self.sampling.__dict__, "max_new_tokens": max_new_tokens})
        out = m.generate(m.collate([inputs]), sampling=sampling, processors=processors, on_step=stream)
        text = m.tokenizer.decode(out.tokens[0], skip_special_tokens=True)
        calls, errors, prose = parse_tool_calls(text)
        return ChatResult(text=text, tool_calls=calls, parse_errors=errors, prose=prose, prompt_tokens=out.prompt_tokens,
                          completion_tokens=len(out.tokens[0]), model=self.name, adapter=m.active_adapter)

    def _grammar(self, tools: list[dict[str, Any]], max_new_tokens: int, constrained: Constrained = True):
        from mmagent.protocol.constrained import tool_call_processor

        mode = "required" if constrained == "required" else "auto"
        return tool_call_processor(self.model.tokenizer, tools, mode=mode, eos_token_ids=self.model.eos_token_ids,
                                   max_new_tokens=max_new_tokens)

    @torch.inference_mode()
    def warmup(self) -> None:
        """One tiny generation so that first-call costs (allocations, kernels) are not the user's."""
        self.chat([Message(role="user", content="hi")], max_new_tokens=2)


def serving_dtype(config) -> torch.dtype | None:
    """The LLM's dtype for serving a config (see `ComposedChatModel.from_pretrained`); None = the settings' dtype."""
    from mmagent.model.cpu import cpu_features

    if config.fast_decode and config.decode_dtype == "bfloat16":
        return torch.bfloat16
    if config.fast_decode and config.decode_dtype == "int8":
        return cpu_features().prefill_dtype
    return None
