"""The one streaming event type the CLI and the Python API both consume.

    token            a piece of model output, as it is generated (`text`)
    tool_call_start  a call is about to run (`call`: id, name, arguments)
    tool_call_end    it finished (`call` and `result`: ok, output | error, error_kind, latency_s)
    artifact         a new artifact entered the session (`artifact`: id, kind, mime, meta)
    interrupt        calls wait for the user's approval, or (`"external": true`) for the caller to run
                     them (`calls`); resume with `Agent.resume`
    answer           the final answer of the turn (`text`, `status`)
    error            the turn ended in an error (`text`, `status`)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

EventType = Literal["token", "tool_call_start", "tool_call_end", "artifact", "interrupt", "answer", "error"]


class AgentEvent(BaseModel):
    type: EventType
    session: str = ""
    turn_id: str = ""
    step: int | None = None
    text: str | None = None
    status: str | None = None
    call: dict[str, Any] | None = None  # {"id", "name", "arguments"}
    result: dict[str, Any] | None = None  # the call's outcome (see mmagent.agent.state.CallRecord)
    artifact: dict[str, Any] | None = None
    calls: list[dict[str, Any]] = Field(default_factory=list)  # interrupt: the calls awaiting approval or results

    def line(self) -> str:
        """A one-line human rendering (the CLI's non-JSON stream)."""
        if self.type == "token":
            return self.text or ""
        if self.type == "tool_call_start":
            return f"-> {self.call['name']}({_args(self.call['arguments'])})"
        if self.type == "tool_call_end":
            r = self.result or {}
            what = _short(r.get("output")) if r.get("ok") else f"{r.get('error_kind')}: {r.get('error')}"
            return f"<- {self.call['name']}: {what} ({r.get('latency_s', 0):.2f} s)"
        if self.type == "artifact":
            return f"[artifact {self.artifact['id']} ({self.artifact.get('mime', '')})]"
        if self.type == "interrupt":
            asks = [c for c in self.calls if not c.get("external")]
            runs = [c for c in self.calls if c.get("external")]
            parts = [("approval needed for: ", asks), ("for the caller to run: ", runs)]
            return "; ".join(head + ", ".join(f"{c['name']}({_args(c['arguments'])})" for c in cs) for head, cs in parts if cs)
        return self.text or ""


def _args(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_short(v, 40)}" for k, v in arguments.items())


def _short(value: Any, limit: int = 120) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
