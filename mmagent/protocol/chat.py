"""The one chat interface every backend speaks and the agent consumes.

Messages carry text plus media as artifact ids (`image_1`, `audio_1`; see `mmagent.media.artifacts`);
a backend that needs pixels asks the artifact store passed to `chat`. A backend answers with a
`ChatResult`: the raw text, the tool calls parsed from it (in the one tool-call format, see
`mmagent.protocol.toolcall`), and what it could not parse. Tokens can be streamed through `on_token`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import AfterValidator, BaseModel, Field

from mmagent.errors import UserError

if TYPE_CHECKING:  # the store lives in mmagent.tools; only its type is needed here
    from mmagent.media.artifacts import ArtifactStore

Role = Literal["system", "user", "assistant", "tool"]
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text every store and tokenizer can take: a lone surrogate (an undecodable byte of a command
    line, decoded with surrogateescape, or an escaped `\\ud83d` from a server's JSON) becomes
    U+FFFD. SQLite, the checkpoint and the tokenizers all refuse such a string outright."""
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


def clean_json(value: Any) -> Any:
    """`clean_text` over every string of a JSON value (keys included)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


CleanText = Annotated[str, AfterValidator(clean_text)]


class ToolCall(BaseModel):
    """One call: a tool name and its JSON arguments (validated later against the tool's schema)."""

    name: CleanText
    arguments: Annotated[dict[str, Any], AfterValidator(clean_json)] = Field(default_factory=dict)
    id: str | None = None


class Message(BaseModel):
    role: Role
    content: CleanText = ""
    images: list[str] = Field(default_factory=list)  # artifact ids, in order of appearance
    audio: list[str] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)  # assistant messages that called tools
    name: str | None = None  # the tool's name, for role == "tool"
    tool_call_id: str | None = None


class ChatResult(BaseModel):
    text: CleanText  # raw model output (what the interaction log keeps)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    parse_errors: list[str] = Field(default_factory=list)  # fragments that looked like calls but did not parse
    # The text outside the calls, from the backend's one parse of the reply (None: a ChatModel that
    # did not parse it; its readers parse `text` then).
    prose: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    adapter: str | None = None
    # optional arguments left out of `tool_calls` because the conversation never states them
    # (`mmagent.protocol.grounding`), one note each; `text` still holds what the model wrote
    dropped_arguments: list[str] = Field(default_factory=list)


OnToken = Callable[[str], None]
Constrained = bool | Literal["required"]  # False: free; True: prose or valid calls; "required": valid calls only


@runtime_checkable
class ChatModel(Protocol):
    """Anything that turns messages (+ tool schemas) into a `ChatResult`."""

    name: str

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
        """`tools` are OpenAI-style function schemas; `constrained` asks for schema-guided decoding:
        True = prose or valid calls, "required" = the reply must be valid calls (OpenAI's
        `tool_choice: "required"`)."""
        ...


class ChatModelProxy:
    """A `ChatModel` wrapped by something that changes `chat` only: every other attribute (name,
    `constrains_decoding`, `serve_session`, `adapter_hook`, `temperature` ...) is the wrapped model's,
    read and written through, so callers see the capabilities the bare model has."""

    def __init__(self, model: ChatModel) -> None:
        object.__setattr__(self, "inner", model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:  # e.g. the agent installs adapter_hook on the model itself
        setattr(self.inner, name, value)


class AdapterHost(Protocol):
    """What holds named LoRA adapters and switches between them (an `MMLLM`)."""

    @property
    def adapters(self) -> list[str]: ...

    @property
    def active_adapter(self) -> str | None: ...

    def load_adapter(self, folder: Any, name: str) -> None: ...

    def set_adapter(self, name: str | None) -> None: ...


AdapterHook = Callable[[AdapterHost], "str | None"]
"""Picks the adapter a NEW session runs with: loads and activates it on the host and returns its
name, or returns None to keep the model's own default. The learning loop's hook
(`mmagent.continual.serving.PromotedAdapter`, the default `mmagent.protocol.adapter_hook` holds)
serves the version `mmagent learn` promoted. A hook may also have `routes(host, slots) -> {slot: name}`:
for a model that routes replies between adapters, the version loaded for each routed slot
(`mmagent.continual.adapter_slots`)."""


@runtime_checkable
class ServesSessions(Protocol):
    """Optional on a `ChatModel`: which adapter each session runs with (a composed MM-LLM has it).

    The agent calls `serve_session(session)` before every turn; at a session's first turn the model
    asks its `adapter_hook`, later turns of that session keep the answer. The hook is injected:
    the agent installs the registered default (`mmagent.protocol.adapter_hook`, which the entry
    layer fills with the learning loop's) when the model has none."""

    adapter_hook: AdapterHook | None

    def serve_session(self, session: str) -> str | None:
        """Activates the adapter `session` runs with and returns its name (None: no adapter)."""
        ...


class ContextOverflowError(ValueError):
    """The messages do not fit the model's context (a backend raises it before any generation,
    so the caller may retry with a shorter history)."""


class UnsupportedDecodingError(ValueError, UserError):
    """Constrained decoding was asked of a backend that cannot do it."""


def supports_constrained(model: ChatModel) -> bool:
    """Whether `chat(..., constrained=True)` is honoured: local backends decode under the tool-call
    grammar; a backend that cannot (a remote endpoint in text mode) sets `constrains_decoding`."""
    return bool(getattr(model, "constrains_decoding", True))


def resolve_constrained(model: ChatModel, requested: bool | None) -> bool:
    """`None` means schema-guided decoding wherever the backend supports it (the default: the
    shipped numbers are measured that way); `True` on a backend that cannot is refused."""
    if requested is None:
        return supports_constrained(model)
    if requested and not supports_constrained(model):
        raise UnsupportedDecodingError(f"{getattr(model, 'name', type(model).__name__)} cannot constrain decoding to the tool schemas; "
                         "turn constrained decoding off (--free / constrained=False)")
    return requested

