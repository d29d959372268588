"""Native transformers VLMs as a `ChatModel`: LLaVA, Idefics3/SmolVLM, Qwen2-VL, ...

Any checkpoint that `AutoModelForImageTextToText` + `AutoProcessor` load (a local
`save_pretrained` folder, a catalog name of kind `vlm`, or a hub id for users with a network):

    from mmagent.backends.vlm import VLMChatModel
    model = VLMChatModel.from_pretrained("/path/to/llava")        # or "llava-hf/llava-1.5-7b-hf"
    result = model.chat([Message(role="user", content="What is this?", images=["image_1"])],
                        tools=registry.schemas(), artifacts=store, on_token=print)

Spec string for `mmagent.backends.load_chat_model`: `vlm:<catalog name | path | hub id>`, e.g.
`vlm:./my-llava` -> `VLMChatModel.from_pretrained("./my-llava")`.

The conversation goes through the processor's own chat template: messages are rendered as
`mmagent.protocol.toolcall.template_messages` renders them for every backend (tool prompt in the system
message, calls in the `<tool_call>` format, `[attached: image_1]` notes), and each message's
images become `{"type": "image"}` parts in front of its text, which the processor expands to the
model's image tokens. The reply is parsed with `mmagent.protocol.toolcall.parse_tool_calls`;
`constrained=True` adds `mmagent.protocol.constrained`'s tool-call grammar as a logits processor.

Image processors are the slow PIL ones (`backend="pil"`): the fast ones need torchvision, which
has no CPU build here. For the same reason Qwen2-VL does not load here: transformers 5.23's
`Qwen2VLProcessor` always builds its video processor, which requires torchvision. LLaVA and
Idefics3/SmolVLM-style checkpoints are tested (tiny random builds in tests/test_backend_vlm.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from transformers import TextStreamer

from mmagent.backends.media import DEFAULT_MAX_PIXELS, MediaError, UnsupportedMediaError, load_message_images
from mmagent.protocol.chat import ChatResult, Constrained, ContextOverflowError, Message, OnToken

if TYPE_CHECKING:
    from transformers import PreTrainedModel, ProcessorMixin

    from mmagent.config import Settings
    from mmagent.media.artifacts import ArtifactStore

log = logging.getLogger(__name__)


class ContextLengthError(ContextOverflowError):
    """The prompt does not fit the model's context window."""


class VLMChatModel:
    """A transformers image-text-to-text model and its processor behind the chat interface."""

    def __init__(
        self,
        model: PreTrainedModel,
        processor: ProcessorMixin,
        *,
        name: str = "vlm",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        temperature: float = 0.0,
        tool_role: str = "tool",
        context_length: int | None = None,
    ) -> None:
        """`tool_role`: the role tool results are given; templates that only know user/assistant
        (LLaVA-1.5's) want "user". `context_length` defaults to the text model's
        `max_position_embeddings`."""
        if getattr(processor, "chat_template", None) is None:
            raise ValueError(f"processor of {name} has no chat template; set processor.chat_template (a Jinja string) first")
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.max_pixels = max_pixels
        self.temperature = temperature
        self.tool_role = tool_role
        self.context_length = context_length or _context_length(model)

    @classmethod
    def from_pretrained(
        cls, spec: str, *, settings: Settings | None = None, dtype: torch.dtype | None = None, **kwargs: Any
    ) -> VLMChatModel:
        """Loads a catalog name, local folder or hub id on the configured device and dtype."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from mmagent.config import apply_thread_policy, get_settings, torch_dtype
        from mmagent.hub.catalog import CATALOG
        from mmagent.model.backbone import backbone_path

        settings = settings or get_settings()
        apply_thread_policy(settings)
        entry = CATALOG.resolve(spec, kind="vlm")
        path = backbone_path(entry, settings)
        processor = AutoProcessor.from_pretrained(path, backend="pil")  # slow PIL image processor: no torchvision
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype or torch_dtype(settings))
        return cls(model.to(settings.device), processor, name=entry.name, **kwargs)

    @property
    def tokenizer(self):
        return self.processor.tokenizer

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
        from mmagent.protocol.grounding import annotated, ground_calls
        from mmagent.protocol.toolcall import parse_tool_calls

        settings = get_settings()
        shown = annotated(messages) if tools and settings.annotate_values else messages
        conversation, images = self.conversation(shown, tools, artifacts)
        inputs = self.encode(conversation, images)
        n_prompt = inputs["input_ids"].shape[1]
        max_new_tokens = self._budget(n_prompt, max_new_tokens)
        new_ids = self.generate(inputs, max_new_tokens, on_token=on_token, constrained=constrained, tools=tools)
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        calls, errors, prose = parse_tool_calls(text)
        calls, dropped = ground_calls(calls, messages, tools) if tools and settings.ground_arguments else (calls, [])
        return ChatResult(
            text=text, tool_calls=calls, parse_errors=errors, prose=prose,
            prompt_tokens=n_prompt, completion_tokens=len(new_ids), model=self.name, dropped_arguments=dropped,
        )

    # -- steps of one turn ------------------------------------------------------------------

    def conversation(
        self, messages: Sequence[Message], tools: list[dict[str, Any]] | None, artifacts: ArtifactStore | None
    ) -> tuple[list[dict[str, Any]], list[Image.Image]]:
        """Messages -> (chat-template conversation with image parts, the images in prompt order)."""
        from mmagent.protocol.toolcall import template_messages

        _check_prompt(messages)
        rendered = template_messages(messages, tools)
        # template_messages adds a system message in front when tools come without one.
        offset = len(rendered) - len(messages)
        conversation: list[dict[str, Any]] = [_text_turn(m) for m in rendered[:offset]]
        images: list[Image.Image] = []
        for msg, turn in zip(messages, rendered[offset:]):
            if msg.audio:
                raise UnsupportedMediaError(
                    f"{self.name} takes images only; {', '.join(msg.audio)} is audio: transcribe it first (transcribe_audio)"
                )
            media = load_message_images(msg, artifacts, max_pixels=self.max_pixels)
            role = self.tool_role if turn["role"] == "tool" else turn["role"]
            parts = [{"type": "image"} for _ in media.images] + [{"type": "text", "text": turn["content"]}]
            conversation.append({"role": role, "content": parts})
            images.extend(media.images)
        return conversation, images

    def encode(self, conversation: list[dict[str, Any]], images: list[Image.Image]):
        """The chat template + processor: input_ids `[1, T]` with image tokens expanded, pixel values."""
        prompt = self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        try:
            inputs = self.processor(text=[prompt], images=images or None, return_tensors="pt")
        except ValueError as err:  # e.g. image-token count mismatch between template and images
            raise MediaError(
                f"{self.name} could not prepare the prompt with {len(images)} image(s): {err} "
                "(the chat template must render each {'type': 'image'} part as the processor's image token)"
            ) from err
        inputs = inputs.to(self.model.device)
        if "pixel_values" in inputs and self.model.dtype != torch.float32:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs

    @torch.inference_mode()
    def generate(
        self, inputs, max_new_tokens: int, *, on_token: OnToken | None = None, constrained: Constrained = False,
        tools: list[dict[str, Any]] | None = None,
    ) -> list[int]:
        """Decodes with the KV cache; streams text pieces to `on_token`; returns the new token ids."""
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": self.temperature > 0}
        if self.temperature > 0:
            kwargs["temperature"] = self.temperature
        if on_token is not None:
            kwargs["streamer"] = _CallbackStreamer(self.tokenizer, on_token)
        eos = _eos_ids(self.model, self.tokenizer)
        if constrained and tools is not None:  # tools=[]: prose only (no offered tool fits); None: nothing to constrain
            kwargs["logits_processor"] = _constrained_processors(self.tokenizer, tools, eos, max_new_tokens, constrained)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        out = self.model.generate(**inputs, pad_token_id=pad, **kwargs)  # [1, T + new]
        new = out[0, inputs["input_ids"].shape[1] :].tolist()
        while new and new[-1] in eos:  # the stop token is not part of the reply
            new.pop()
        return new

    def _budget(self, n_prompt: int, max_new_tokens: int) -> int:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        room = self.context_length - n_prompt
        if room < 1:
            raise ContextLengthError(
                f"prompt is {n_prompt} tokens (images included) but {self.name} has a context of {self.context_length}; "
                "shorten the conversation, send fewer or smaller images, or use a model with a longer context"
            )
        if max_new_tokens > room:
            log.warning("max_new_tokens %d cut to %d to fit the %d-token context", max_new_tokens, room, self.context_length)
        return min(max_new_tokens, room)


def _check_prompt(messages: Sequence[Message]) -> None:
    if not messages:
        raise ValueError("messages is empty: pass at least one user message")
    if not any(m.content.strip() or m.images or m.audio or m.tool_calls for m in messages):
        raise ValueError("the prompt is empty: every message has no text and no media; say something or attach an image")


def _text_turn(turn: dict[str, str]) -> dict[str, Any]:
    return {"role": turn["role"], "content": [{"type": "text", "text": turn["content"]}]}


def _context_length(model: PreTrainedModel) -> int:
    text_config = model.config.get_text_config()
    length = getattr(text_config, "max_position_embeddings", None)
    if not length:
        raise ValueError(f"{type(model).__name__} config has no max_position_embeddings; pass context_length=")
    return int(length)


def _eos_ids(model: PreTrainedModel, tokenizer) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _constrained_processors(tokenizer, tools: list[dict[str, Any]], eos: set[int], max_new_tokens: int,
                            constrained: Constrained = True):
    """`mmagent.protocol.constrained`'s tool-call grammar as an HF logits processor: once the model opens
    `<tool_call>`, only a call that parses and fits one tool's schema can follow, and an open call
    is closed before the token budget runs out."""
    from transformers import LogitsProcessorList

    from mmagent.protocol.constrained import tool_call_processor

    mode = "required" if constrained == "required" else "auto"
    return LogitsProcessorList([tool_call_processor(tokenizer, tools, mode=mode, eos_token_ids=sorted(eos),
                                                    max_new_tokens=max_new_tokens)])


class _CallbackStreamer(TextStreamer):
    """transformers' `TextStreamer` (word-boundary buffering of decoded text) calling `on_token`
    synchronously instead of printing: no thread, unlike `TextIteratorStreamer`."""

    def __init__(self, tokenizer, on_token: OnToken) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._on_token = on_token

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._on_token(text)
