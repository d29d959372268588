"""The agent's state: one `TypedDict` per session thread, checkpointed after every node.

Everything in it is plain JSON (str, int, lists, dicts) so that LangGraph's SQLite checkpointer
stores it without pickling, and another process can resume it. List fields carry reducers: a node
returns only what it adds. Turn-scoped lists (`turn_calls`, `trace`, `artifacts`) are reset at the
start of each turn with `langgraph.types.Overwrite`; `messages` spans the whole session.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

Status = Literal["running", "ok", "error", "interrupted", "step_limit", "abandoned"]
ApprovalDecision = Literal["approved", "denied"]


class CallRecord(TypedDict, total=False):
    """One tool call and its outcome (also what `RunResult.calls` and the log hold)."""

    id: str  # "s{step}c{i}": unique within the turn, stable across a crash and resume
    step: int
    name: str
    arguments: dict[str, Any]
    ok: bool
    output: dict[str, Any] | None
    error: str | None
    error_kind: str | None  # validation | unknown_tool | timeout | exception | denied | interrupted
    # (an external call's record carries the caller's result as its output)
    artifacts: list[str]
    latency_s: float
    approval: ApprovalDecision | None
    expected: dict[str, str]  # refused arguments only: the failing fields' expected types (the repair observation shows them)


class StepRecord(TypedDict, total=False):
    """One model call: what it said, what was parsed out of it, what it cost."""

    step: int
    raw_output: str
    calls: list[dict[str, Any]]  # parsed {"id", "name", "arguments"}
    parse_errors: list[str]
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    model: str
    adapter: str | None


class AgentState(TypedDict, total=False):
    session: str
    turn_id: str
    prompt: str
    media: list[dict[str, str]]  # perceive's input: {"kind": "image"|"audio", "path": ...} or {"kind", "id"}
    messages: Annotated[list[dict[str, Any]], operator.add]  # `mmagent.protocol.chat.Message` dumps, whole session
    steps: int  # model calls in this turn
    repairs: int  # invalid outputs / invalid calls sent back to the model in this turn
    pending: list[dict[str, Any]]  # calls parsed at the last plan step, waiting to run
    approvals: dict[str, ApprovalDecision]  # call id -> the user's decision
    supplied: dict[str, Any]  # call id -> the caller's result for an external call (schema-only tool)
    turn_calls: Annotated[list[CallRecord], operator.add]
    trace: Annotated[list[StepRecord], operator.add]
    artifacts: Annotated[list[str], operator.add]  # ids that entered the session in this turn
    answer: str | None
    status: Status
    error: str | None
