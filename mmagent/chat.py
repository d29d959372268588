"""The one chat interface every backend speaks and the agent consumes.

Messages carry text plus media as artifact ids (`image_1`, `audio_1`; see `mmagent.tools.artifacts`);
a backend that needs pixels asks the artifact store passed to `chat`. A backend answers with a
`ChatResult`: the raw text, the tool calls parsed from it (in the one tool-call format, see
`mmagent.toolcall`), and what it could not parse. Tokens can be streamed through `on_token`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from mmagent.errors import UserError

if TYPE_CHECKING:  # the store lives in mmagent.tools; only its type is needed here
    from mmagent.tools.artifacts import ArtifactStore

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(BaseModel):
    """One call: a tool name and its JSON arguments (validated later against the tool's schema)."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class Message(BaseModel):
    role: Role
    content: str = ""
    images: list[str] = Field(default_factory=list)  # artifact ids, in order of appearance
    audio: list[str] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)  # assistant messages that called tools
    name: str | None = None  # the tool's name, for role == "tool"
    tool_call_id: str | None = None


class ChatResult(BaseModel):
    text: str  # raw model output (what the interaction log keeps)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    parse_errors: list[str] = Field(default_factory=list)  # fragments that looked like calls but did not parse
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    adapter: str | None = None


OnToken = Callable[[str], None]


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
        constrained: bool = False,
        on_token: OnToken | None = None,
    ) -> ChatResult:
        """`tools` are OpenAI-style function schemas; `constrained` asks for schema-guided decoding."""
        ...


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

