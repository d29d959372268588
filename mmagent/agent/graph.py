"""The agent as a LangGraph state machine.

    START -> perceive -> plan -+-> approve -> act -> observe -+-> plan ...
                               +-> act ----------^            +-> finish -> END
                               +-> plan (repair)
                               +-> finish

perceive  the user's media (artifact ids) and prompt become the turn's user message; the turn is
          opened in the interaction log
plan      the model sees the system prompt, the session history and the tool schemas, and answers
          or calls tools; unparseable output goes back to it with the parser's error (bounded
          repairs)
approve   calls to tools marked as needing approval interrupt the graph (`interrupt`); the user's
          decision resumes it, in this process or another one. Valid calls to external tools
          (a schema-only `SchemaTool`) interrupt it the same way: the caller runs them and
          resumes with their results ({call id: result}); invalid ones go on to act, which
          reports the validation error to the model
act       the calls run through the tool registry (validation, timeout), independent calls of one
          step concurrently in a thread pool; nothing here raises for what the model did
observe   results become tool messages the model reads; invalid or unknown calls count as repair
          attempts; the step limit ends endless loops
finish    the turn's outcome is written to the log and announced

Nodes are plain functions `(state, runtime) -> partial state`; the run's resources (model, tools,
log, artifact stores) travel in the LangGraph runtime context, never in the checkpointed state.
Each node commits its log rows before it returns, so the log is never behind the checkpoint.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from mmagent.agent.log import InteractionLog
from mmagent.agent.state import AgentState, CallRecord, StepRecord
from mmagent.errors import UserError
from mmagent.protocol.chat import ChatModel, ChatResult, ContextOverflowError, Message, ToolCall
from mmagent.protocol.toolcall import format_tool_result, parse_tool_calls
from mmagent.tools.base import ToolContext

REPAIR_KINDS = ("validation", "unknown_tool")  # the model's mistakes, not the tools'


class AgentInputError(ValueError, UserError):
    """What the caller asked of the agent is wrong (an unknown session or tool, a bad decision ...)."""


@dataclass(frozen=True)
class AgentOptions:
    """How the agent plans and acts, one object from `Agent(...)` to every node."""

    system_prompt: str = ""
    max_steps: int = 6  # model steps per turn before status step_limit
    max_repairs: int = 2  # invalid outputs / calls sent back to the model before status error
    max_new_tokens: int = 256
    constrained: bool | None = None  # None: wherever the backend supports it (resolved per model)
    tool_timeout_s: float | None = None
    max_workers: int = 4  # independent calls of one step run concurrently
    history: int = 40  # messages of session history the model sees (the current turn always fits)


@dataclass
class AgentContext:
    """What the nodes use but the checkpoint must not hold (models, connections), and the options."""

    model: ChatModel
    registry: Any  # mmagent.tools.registry.ToolRegistry
    artifacts: Callable[[str], Any]  # session -> mmagent.media.artifacts.ArtifactStore
    options: AgentOptions = field(default_factory=AgentOptions)  # `constrained` already resolved to a bool
    log: InteractionLog | None = None
    memory: Callable[[], Any] | None = None  # opens the memory store on a memory tool's first call
    approval: frozenset[str] = frozenset()
    schemas: list[dict[str, Any]] = field(default_factory=list)


def _emit(state: AgentState, type_: str, **fields: Any) -> None:
    """Writes an `AgentEvent` (as a plain dict: the API validates it) to LangGraph's custom stream."""
    get_stream_writer()({"type": type_, "session": state["session"], "turn_id": state["turn_id"], **fields})


# -- nodes -----------------------------------------------------------------------------------------


def perceive(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    store = ctx.artifacts(state["session"])
    images, audio = [], []
    for item in state.get("media", []):
        art = store.get(item["id"])  # ids were checked when the API stored the media
        (images if art.kind == "image" else audio).append(art.id)
        _emit(state, "artifact", artifact=art.model_dump(include={"id", "kind", "mime", "meta"}))
    if ctx.log:
        ctx.log.start_turn(state["turn_id"], state["session"], state["prompt"], images, audio,
                           [s["function"]["name"] for s in ctx.schemas], getattr(ctx.model, "name", None),
                           getattr(ctx.model, "adapter", None), ctx.options.constrained)
    _warm_tools(ctx, ({"image"} if images else set()) | ({"audio"} if audio else set()))
    user = Message(role="user", content=state["prompt"], images=images, audio=audio)
    # `supplied` is keyed by call ids, which repeat across turns: a result left by an abandoned turn must not answer a new call.
    return {"messages": [user.model_dump()], "artifacts": images + audio, "status": "running", "supplied": {}}


def _warm_tools(ctx: AgentContext, kinds: set[str]) -> None:
    """Tools that declared these media kinds (`Tool.warm_for`) start loading while the model plans."""
    for name in ctx.registry.names():
        tool = ctx.registry.get(name)
        if kinds & set(getattr(tool, "warm_for", ())):
            tool.warm()


def plan(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    step = state.get("steps", 0) + 1
    t0 = time.perf_counter()
    try:
        messages, result = _chat_fitted(state, ctx, step)
    except Exception as err:  # noqa: BLE001 - a failing model ends the turn with its message, logged
        return {"steps": step, "status": "error", "error": f"the model failed at step {step}: {type(err).__name__}: {err}"}
    calls = [CallRecord(id=f"s{step}c{i}", step=step, name=c.name, arguments=c.arguments, needs_approval=c.name in ctx.approval,
                        external=_external(ctx.registry, c.name)) for i, c in enumerate(result.tool_calls, 1)]
    record = StepRecord(step=step, raw_output=result.text, calls=calls, parse_errors=list(result.parse_errors),
                        latency_s=time.perf_counter() - t0, prompt_tokens=result.prompt_tokens,
                        completion_tokens=result.completion_tokens, model=result.model, adapter=result.adapter)
    if ctx.log:
        ctx.log.log_step(state["turn_id"], record, [m.model_dump(exclude_defaults=True) for m in messages])
    update: dict[str, Any] = {"steps": step, "trace": [record]}
    prose = _prose(result)
    if calls:  # the calls run; parse errors beside them go back to the model with the results
        said = Message(role="assistant", content=prose, tool_calls=[ToolCall(**_public(c)) for c in calls])
        feedback = [_repair_message(result.parse_errors)] if result.parse_errors else []
        return update | {"messages": [said.model_dump(), *feedback], "pending": calls}
    if result.parse_errors or not result.text.strip():
        return update | _repair(state, ctx, step, result.text, list(result.parse_errors) or ["the reply was empty"])
    said = Message(role="assistant", content=prose or result.text)
    return update | {"messages": [said.model_dump()], "answer": prose or result.text.strip(), "status": "ok"}


def _chat_fitted(state: AgentState, ctx: AgentContext, step: int) -> tuple[list[Message], ChatResult]:
    """The model's reply to the longest window of history that fits its context: the oldest
    turns are left out first, the current turn never (if it alone does not fit, that is the error)."""
    skip = 0
    while True:
        messages, earlier = _model_messages(state, ctx, skip_turns=skip)
        try:
            return messages, ctx.model.chat(
                messages, ctx.schemas or None, artifacts=ctx.artifacts(state["session"]), max_new_tokens=ctx.options.max_new_tokens,
                constrained=ctx.options.constrained, on_token=lambda piece: _emit(state, "token", step=step, text=piece),
            )
        except ContextOverflowError:
            if not earlier:
                raise
            skip += 1


def _repair(state: AgentState, ctx: AgentContext, step: int, text: str, problems: list[str]) -> dict[str, Any]:
    """Output with no usable call: show the model its problems, within the repair and step limits."""
    repairs = state.get("repairs", 0) + 1
    said = Message(role="assistant", content=text)
    update: dict[str, Any] = {"messages": [said.model_dump(), _repair_message(problems)], "repairs": repairs}
    if repairs > ctx.options.max_repairs:
        update |= {"status": "error", "error": f"no valid reply after {repairs} attempts: {problems[0]}"}
    elif step >= ctx.options.max_steps:
        update |= {"status": "step_limit", "answer": _step_limit_answer(ctx.options.max_steps, []),
                   "error": f"step limit reached ({ctx.options.max_steps} model steps) without a final answer"}
    return update


def approve(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    asks = [_public(c) for c in state["pending"] if c.get("needs_approval") and not c.get("external")]
    waiting = asks + _handed_over(state, runtime.context)
    if not waiting:  # only invalid external calls: act reports them to the model
        return {}
    log = runtime.context.log
    if log:
        log.set_status(state["turn_id"], "interrupted")
    # Re-runs from the top on resume: everything above is idempotent, nothing below runs twice.
    decision = interrupt({"calls": waiting})
    if log:
        log.set_status(state["turn_id"], "running")
    decided = normalize_decision(decision, waiting)
    return {"approvals": {c["id"]: decided[c["id"]] for c in asks},
            "supplied": {c["id"]: decided[c["id"]] for c in waiting if c.get("external")}}


def _handed_over(state: AgentState, ctx: AgentContext) -> list[dict[str, Any]]:
    """The external calls whose arguments validate, as the caller gets them (validated, defaults
    filled, `"external": True`); approval is moot for them: the caller decides by running them."""
    tool_ctx = ToolContext(artifacts=ctx.artifacts(state["session"]), open_memory=ctx.memory, session=state["session"])
    out = []
    for c in state["pending"]:
        if c.get("external"):
            args = ctx.registry.validate(c["name"], c["arguments"], tool_ctx)
            if isinstance(args, dict):
                out.append({**_public(c), "arguments": args, "external": True})
    return out


def _external(registry: Any, name: str) -> bool:
    return name in registry and registry.get(name).external


def act(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    tool_ctx = ToolContext(artifacts=ctx.artifacts(state["session"]), open_memory=ctx.memory, session=state["session"])
    approvals = state.get("approvals", {})
    supplied = state.get("supplied", {})
    pending = state.get("pending", [])
    records: dict[str, CallRecord] = {}
    runnable = []
    for c in pending:
        if approvals.get(c["id"]) == "denied":
            records[c["id"]] = _record(c, step=state["steps"], ok=False, error=f"the user denied the call to {c['name']}",
                                       error_kind="denied", approval="denied")
        elif c["id"] in supplied:  # an external call: its result is what the caller said
            records[c["id"]] = _record(c, step=state["steps"], ok=True, output=_as_output(supplied[c["id"]]))
        elif (prior := _logged(ctx, state["turn_id"], c)) is not None:
            records[c["id"]] = prior  # act re-runs after a crash: a call runs at most once
        else:
            runnable.append(c)
    # One commit before anything runs: the calls decided without running (denied, supplied, reused or
    # interrupted) and the others marked started; each result then commits as soon as it exists.
    started = [_record(c, step=state["steps"], ok=False, error="started", error_kind="running") for c in runnable]
    _log_calls(ctx, state, [*records.values(), *started])
    for c in runnable:
        _emit(state, "tool_call_start", step=state["steps"], call=_public(c))
    for c, r in zip(runnable, _run_calls(runnable, ctx, tool_ctx)):
        records[c["id"]] = _record(c, step=state["steps"], ok=r.ok, output=r.output, error=r.error, error_kind=r.error_kind,
                                   artifacts=list(r.artifacts), latency_s=r.latency_s, approval=approvals.get(c["id"]),
                                   **({"expected": r.expected} if r.expected else {}))
        _log_calls(ctx, state, [records[c["id"]]])
        _emit(state, "tool_call_end", step=state["steps"], call=_public(c), result=dict(records[c["id"]]))
    return {"turn_calls": [records[c["id"]] for c in pending], "pending": [], "approvals": {}, "supplied": {}}


INTERRUPTED = ("the process stopped while this call was running, so it may or may not have taken effect; "
               "it was not run again: check its effect before calling it again")


def _logged(ctx: AgentContext, turn_id: str, call: dict[str, Any]) -> CallRecord | None:
    """The outcome the log already holds for this call: finished, or started and cut off."""
    prior = ctx.log.call(turn_id, call["id"]) if ctx.log else None
    if prior is None:
        return None
    if prior.error_kind == "running":
        return _record(call, step=prior.step, ok=False, error=INTERRUPTED, error_kind="interrupted")
    return _record(call, step=prior.step, ok=prior.ok, output=prior.output, error=prior.error, error_kind=prior.error_kind,
                   artifacts=prior.artifacts, latency_s=prior.latency_s, approval=prior.approval)


def _log_calls(ctx: AgentContext, state: AgentState, records: list[CallRecord]) -> None:
    if ctx.log and records:
        ctx.log.log_calls(state["turn_id"], records)


def not_run_messages(pending: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    """Tool messages for calls a turn ended before running (so no call is left without a result)."""
    return [Message(role="tool", name=c["name"], tool_call_id=c["id"],
                    content=format_tool_result(c["name"], error=f"not run: {reason}")).model_dump() for c in pending]


def _run_calls(calls: list[dict[str, Any]], ctx: AgentContext, tool_ctx: Any) -> Iterator[Any]:
    """Yields each call's ToolResult in call order; independent calls of one step run concurrently
    (each already runs in the registry's own timeout thread: one call needs no pool)."""
    if len(calls) <= 1:
        yield from (ctx.registry.call(c["name"], c["arguments"], tool_ctx, ctx.options.tool_timeout_s) for c in calls)
        return
    with ThreadPoolExecutor(max_workers=max(1, min(ctx.options.max_workers, len(calls)))) as pool:
        futures = [pool.submit(ctx.registry.call, c["name"], c["arguments"], tool_ctx, ctx.options.tool_timeout_s) for c in calls]
        yield from (f.result() for f in futures)


def observe(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    step = state["steps"]
    done = [r for r in state.get("turn_calls", []) if r["step"] == step]
    messages = [Message(role="tool", name=r["name"], tool_call_id=r["id"], content=observation(r)).model_dump() for r in done]
    new_ids = [a for r in done for a in r.get("artifacts", []) if a not in state.get("artifacts", [])]
    store = ctx.artifacts(state["session"]) if new_ids else None
    for aid in new_ids:
        _emit(state, "artifact", step=step, artifact=store.get(aid).model_dump(include={"id", "kind", "mime", "meta"}))
    update: dict[str, Any] = {"messages": messages, "artifacts": new_ids}
    if done and all(not r["ok"] and r.get("error_kind") in REPAIR_KINDS for r in done):
        repairs = state.get("repairs", 0) + 1
        update["repairs"] = repairs
        if repairs > ctx.options.max_repairs:
            update |= {"status": "error", "error": f"no valid tool call after {repairs} attempts: {done[0]['error']}"}
            return update
    if step >= ctx.options.max_steps:
        update |= {"status": "step_limit", "answer": _step_limit_answer(ctx.options.max_steps, done),
                   "error": f"step limit reached ({ctx.options.max_steps} model steps) without a final answer"}
    return update


def finish(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    status = state.get("status") or "ok"
    status = "ok" if status == "running" else status
    answer = state.get("answer")
    if runtime.context.log:
        runtime.context.log.end_turn(state["turn_id"], status, answer, state.get("error"), state.get("steps", 0), state.get("repairs", 0))
    if status in ("ok", "step_limit"):
        _emit(state, "answer", text=answer or "", status=status)
    else:
        _emit(state, "error", text=state.get("error") or "the turn failed", status=status)
    return {"status": status}


# -- routing ---------------------------------------------------------------------------------------


def after_plan(state: AgentState) -> Literal["approve", "act", "plan", "finish"]:
    if state.get("status") != "running":
        return "finish"
    if state.get("pending"):
        return "approve" if any(c.get("needs_approval") or c.get("external") for c in state["pending"]) else "act"
    return "plan"  # a repair: the model gets its parse errors back


def after_observe(state: AgentState) -> Literal["plan", "finish"]:
    return "plan" if state.get("status") == "running" else "finish"


def build_graph() -> StateGraph:
    g = StateGraph(AgentState, context_schema=AgentContext)
    for name, fn in [("perceive", perceive), ("plan", plan), ("approve", approve), ("act", act),
                     ("observe", observe), ("finish", finish)]:
        g.add_node(name, fn)
    g.add_edge(START, "perceive")
    g.add_edge("perceive", "plan")
    g.add_conditional_edges("plan", after_plan, ["approve", "act", "plan", "finish"])
    g.add_edge("approve", "act")
    g.add_edge("act", "observe")
    g.add_conditional_edges("observe", after_observe, ["plan", "finish"])
    g.add_edge("finish", END)
    return g


def open_checkpointer(path: Path | str, durable: bool = False):
    """LangGraph's SQLite checkpointer on `path` (WAL: readers never block the writer).

    `":memory:"` gives LangGraph's in-memory saver (one process only, nothing survives it).
    """
    if str(path) == ":memory:":
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL: commits survive a killed process (the WAL is in the OS cache); FULL adds an fsync per
    # commit to also survive power loss. See log.py.
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


# -- helpers ---------------------------------------------------------------------------------------


def normalize_decision(decision: Any, waiting: list[dict[str, Any]]) -> dict[str, Any]:
    """'approve' / 'deny' / bool for all waiting calls, or {call id or tool name: decision} per call;
    an external call's entry is its result (any JSON value), so external calls need the dict form."""
    if isinstance(decision, dict):
        out = {}
        for c in waiting:
            key = c["id"] if c["id"] in decision else c["name"] if c["name"] in decision else None
            if key is None or (decision[key] is None and not c.get("external")):
                what = "result" if c.get("external") else "decision"
                raise AgentInputError(f"no {what} for call {c['id']} ({c['name']}); give one for every waiting call")
            out[c["id"]] = _tool_result(c, decision[key]) if c.get("external") else _one_decision(decision[key])
        return out
    external = [f"{c['id']} ({c['name']})" for c in waiting if c.get("external")]
    if external:
        raise AgentInputError(f"calls {', '.join(external)} are run by the caller: resume with their results, "
                              "{call id: result}, beside any approval decision")
    return {c["id"]: _one_decision(decision) for c in waiting}


def _tool_result(call: dict[str, Any], value: Any) -> Any:
    """An external call's result, checked to be JSON (it goes into the checkpoint and the model's context)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise AgentInputError(f"the result for call {call['id']} ({call['name']}) is not JSON: {err}") from None
    return value


def _as_output(value: Any) -> dict[str, Any]:
    """A result as a call's output object: a dict as it is, any other value as {"result": value} (as @tool)."""
    return value if isinstance(value, dict) else {"result": value}


def _one_decision(value: Any) -> str:
    if value is True or (isinstance(value, str) and value.lower() in ("approve", "approved", "yes", "y")):
        return "approved"
    if value is False or (isinstance(value, str) and value.lower() in ("deny", "denied", "no", "n")):
        return "denied"
    raise AgentInputError(f"approval decision must be 'approve' or 'deny' (or a dict of them per call id), got {value!r}")


def _model_messages(state: AgentState, ctx: AgentContext, skip_turns: int = 0) -> tuple[list[Message], bool]:
    """The system prompt + the history window, leaving out its `skip_turns` oldest turns; and
    whether an earlier turn is still in it (one more could be left out)."""
    history = state.get("messages", [])[-ctx.options.history :]
    # Start at a user message: a window opening on a tool result without its call misleads.
    turns = [i for i, m in enumerate(history) if m["role"] == "user"] or [0]
    kept = min(skip_turns, len(turns) - 1)
    history = history[turns[kept]:]
    system = [Message(role="system", content=ctx.options.system_prompt)] if ctx.options.system_prompt else []
    return system + [Message.model_validate(m) for m in history], kept < len(turns) - 1


def _prose(result: ChatResult) -> str:
    """The reply's text outside its calls: the backend's parse, or one here for a ChatModel that gives none."""
    return result.prose if result.prose is not None else parse_tool_calls(result.text)[2]


def _repair_message(problems: list[str]) -> dict[str, Any]:
    hint = ("Reply with valid <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call> blocks, "
            "or answer in plain text. Problems: " + " | ".join(problems))
    return Message(role="tool", name="invalid_call", content=format_tool_result("invalid_call", error=hint)).model_dump()


def observation(record: CallRecord) -> str:
    """What the model reads of a call (the one renderer, `format_tool_result`, as `ToolResult.observation`):
    the output, or the error and, for refused arguments, the failing fields' expected types."""
    if record["ok"]:
        return format_tool_result(record["name"], record.get("output"))
    return format_tool_result(record["name"], error=record["error"], expected=record.get("expected"))


def _record(call: CallRecord, **outcome: Any) -> CallRecord:
    """The pending call's record with its outcome added (the record itself is never rebuilt from parts)."""
    return CallRecord(**{**call, "output": None, "error": None, "error_kind": None, "artifacts": [], "latency_s": 0.0,
                         "approval": None, **outcome})


def _public(call: CallRecord) -> dict[str, Any]:
    """What a caller and the events see of a call before it runs."""
    return {k: call[k] for k in ("id", "name", "arguments")}


def _step_limit_answer(max_steps: int, done: list[CallRecord]) -> str:
    last = ", ".join(f"{r['name']} ({'ok' if r['ok'] else r.get('error_kind')})" for r in done) or "none"
    return (f"I stopped after {max_steps} steps without reaching a final answer (last calls: {last}). "
            "Ask again more specifically, or allow more steps.")
