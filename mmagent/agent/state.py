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
    """One tool call, the one record of it from the model's reply to `RunResult.calls` and the log.

    `plan` writes the call as parsed and how it will run (`needs_approval`, `external`): that is a
    pending call (`AgentState.pending`, `StepRecord.calls`); `act` adds the outcome (`ok` onwards)
    to the same record, which `turn_calls` then holds.
    """

    id: str  # "s{step}c{i}": unique within the turn, stable across a crash and resume
    step: int
    name: str
    arguments: dict[str, Any]
    needs_approval: bool  # the user approves it before it runs (AgentOptions.approval)
    external: bool  # a schema-only tool: the caller runs it and resumes the turn with its result
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
    calls: list[CallRecord]  # the reply's calls as parsed (pending: no outcome yet)
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
    pending: list[CallRecord]  # calls parsed at the last plan step, waiting to run (no outcome yet)
    approvals: dict[str, ApprovalDecision]  # call id -> the user's decision
    supplied: dict[str, Any]  # call id -> the caller's result for an external call (schema-only tool)
    turn_calls: Annotated[list[CallRecord], operator.add]
    trace: Annotated[list[StepRecord], operator.add]
    artifacts: Annotated[list[str], operator.add]  # ids that entered the session in this turn
    answer: str | None
    status: Status
    error: str | None
