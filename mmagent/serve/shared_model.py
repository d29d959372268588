"""One ChatModel instance shared by every request of a server, behind one lock.

A local model is one set of weights, one KV cache, one active adapter: two generations at once
would interleave their state. `SharedChatModel` serialises `chat` (and adapter switching) with a
`threading.Lock`, so concurrent HTTP requests and agent turns queue for the model while their
tools, parsing and I/O run in parallel. Everything else is forwarded to the wrapped model, so the
Agent sees the same capabilities (`constrains_decoding`, `ServesSessions` ...) it would see bare.

The adapter a session runs with (`ServesSessions`) is re-activated inside the same critical
section as the generation, because another session's turn may have switched it in between: the
session is remembered in a context variable (LangGraph copies the context into its worker
threads), set by `serve_session`.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

from mmagent.protocol.chat import ChatModel, ChatModelProxy, ChatResult, Message, OnToken

_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("mmagent_serve_session", default=None)


class SharedChatModel(ChatModelProxy):
    """A `ChatModel` proxy whose `chat` holds the model's lock (see the module docstring)."""

    def __init__(self, model: ChatModel) -> None:
        super().__init__(model)
        object.__setattr__(self, "lock", threading.Lock())

    def serve_session(self, session: str) -> str | None:
        _SESSION.set(session)
        with self.lock:
            return self.inner.serve_session(session)  # type: ignore[attr-defined]

    def chat(self, messages: list[Message], tools: list[dict[str, Any]] | None = None, *, artifacts: Any = None,
             max_new_tokens: int = 256, constrained: bool = False, on_token: OnToken | None = None,
             temperature: float | None = None) -> ChatResult:
        """`temperature`, when given, applies to this call only, where the backend has a sampling
        temperature (`temperature` attribute); backends without one decode as they always do."""
        with self.lock:
            session = _SESSION.get()
            if session is not None and hasattr(self.inner, "serve_session"):
                self.inner.serve_session(session)
            restore = _set_temperature(self.inner, temperature)
            try:
                return self.inner.chat(messages, tools, artifacts=artifacts, max_new_tokens=max_new_tokens,
                                       constrained=constrained, on_token=on_token)
            finally:
                restore()


def _set_temperature(model: Any, temperature: float | None):
    if temperature is None or not hasattr(model, "temperature"):
        return lambda: None
    old = model.temperature
    model.temperature = temperature
    return lambda: setattr(model, "temperature", old)


def use_session(session: str | None) -> None:
    """Marks the calling context's requests as `session`'s (the OpenAI endpoint has one of its own)."""
    _SESSION.set(session)
