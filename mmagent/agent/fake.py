"""`ScriptedChatModel`: a `ChatModel` that replies with given outputs, in order.

It is public: users test their own agents, tools and approval flows with it, without any LLM (as
smolagents' tests script the model). Outputs are raw model text in the one tool-call format, so
parsing, repair and validation run exactly as they do with a real model:

    model = ScriptedChatModel([
        '<tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>',
        "The sign says STOP.",
    ])

An output may also be a function of the messages the model sees (to answer from tool results).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mmagent.errors import UserError
from mmagent.protocol.chat import ChatResult, Message, OnToken
from mmagent.protocol.toolcall import parse_tool_calls


class ScriptError(ValueError, UserError):
    """A scripted-outputs file that is not a JSON list of strings."""

Output = str | Callable[[list[Message]], str]


class ScriptedChatModel:
    """Replies with `outputs[0]`, `outputs[1]`, ...; raises a clear error when it runs out."""

    def __init__(self, outputs: Sequence[Output], name: str = "scripted", adapter: str | None = None) -> None:
        self.outputs = list(outputs)
        self.name = name
        self.adapter = adapter
        self.seen: list[list[Message]] = []  # the messages of every call (for assertions)
        self.seen_tools: list[list[dict[str, Any]] | None] = []
        self.seen_constrained: list[bool] = []
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedChatModel:
        """Outputs from a JSON file holding a list of strings (`mmagent run --model scripted:FILE`)."""
        path = Path(path)
        try:
            outputs = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"no scripted outputs file {path}") from None
        except json.JSONDecodeError as err:
            raise ScriptError(f"{path} is not JSON ({err.msg} at line {err.lineno}); it must hold a list of strings") from None
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise ScriptError(f"{path} must hold a JSON list of strings (one model output per step)")
        return cls(outputs, name=f"scripted:{path.name}")

    @property
    def calls(self) -> int:
        return len(self.seen)

    def chat(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
        *,
        artifacts: Any = None,
        max_new_tokens: int = 256,
        constrained: bool = False,
        on_token: OnToken | None = None,
    ) -> ChatResult:
        with self._lock:
            i = len(self.seen)
            if i >= len(self.outputs):
                raise RuntimeError(
                    f"ScriptedChatModel ran out of outputs after {i} calls; give it one output per model step"
                )
            self.seen.append(list(messages))
            self.seen_tools.append(tools)
            self.seen_constrained.append(constrained)
        out = self.outputs[i]
        text = out(list(messages)) if callable(out) else out
        if on_token is not None:
            for piece in _pieces(text):
                on_token(piece)
        calls, errors, prose = parse_tool_calls(text)
        prompt_tokens = sum(len(m.content.split()) for m in messages)
        return ChatResult(text=text, tool_calls=calls, parse_errors=errors, prose=prose, prompt_tokens=prompt_tokens,
                          completion_tokens=len(_pieces(text)), model=self.name, adapter=self.adapter)


def _pieces(text: str) -> list[str]:
    """Word-ish 'tokens' (whitespace kept) so that streaming consumers see several events."""
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch.isspace():
            out.append(cur)
            cur = ""
    return out + ([cur] if cur else [])
