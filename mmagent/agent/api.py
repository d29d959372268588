"""The Python API: `Agent` and `RunResult`.

    from mmagent import Agent, tool

    @tool
    def add(a: int, b: int) -> int:
        '''Adds two integers.

        Args:
            a: First addend.
            b: Second addend.
        '''
        return a + b

    agent = Agent(model="mmagent-default", tools=["read_text", add], approval={"generate_image"})
    result = agent.run("What does the sign say?", images=["sign.png"])
    result.answer, result.calls, result.artifacts, result.trace, result.turn_id

A session (LangGraph thread) keeps its history and artifacts across turns and processes:
`run(..., session="s1")` continues it; `resume("s1", "approve")` answers an approval interrupt;
`resume("s1")` finishes a turn whose process died mid-way.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mmagent.agent.events import AgentEvent
from mmagent.agent.graph import AgentContext, AgentInputError, AgentOptions, build_graph, normalize_decision, open_checkpointer
from mmagent.agent.log import InteractionLog
from mmagent.backends.tool_retrieval import DEFAULT_RETRIEVAL, RetrievingChatModel, ToolRetrieval, ToolRetriever
from mmagent.protocol.chat import ChatModel, Message, clean_text, resolve_constrained

DEFAULT_SYSTEM_PROMPT = (
    "You are mmagent, a helpful assistant. You see images and hear audio only through tools: "
    "call a tool when it helps, then answer briefly from its results."
)
# Longer prompts are refused before they enter the history: at ~4 characters a token, 32k
# characters is four times the embedded default's 2k-token context (a pasted document, not a request).
MAX_PROMPT_CHARS = 32_000
_ARTIFACT_ID = re.compile(r"^(image|audio|text)_[1-9][0-9]*$")


class CallResult(BaseModel):
    """One tool call of a turn and its outcome."""

    id: str
    name: str
    arguments: dict[str, Any]
    ok: bool
    result: dict[str, Any] | None = None  # the tool's typed output, as JSON
    error: str | None = None
    error_kind: str | None = None  # validation | unknown_tool | timeout | exception | denied
    artifacts: list[str] = Field(default_factory=list)
    latency_s: float = 0.0
    approval: str | None = None


class RunResult(BaseModel):
    answer: str
    status: str  # ok | error | interrupted | step_limit | abandoned
    error: str | None = None
    calls: list[CallResult] = Field(default_factory=list)
    artifacts: list[str] = Field(default_factory=list)  # media attached or produced in this turn
    trace: list[dict[str, Any]] = Field(default_factory=list)  # per model step: raw output, parsed calls, errors, latency
    pending: list[dict[str, Any]] = Field(default_factory=list)  # calls waiting for approval (status interrupted)
    session: str
    turn_id: str


def default_checkpoint_path(settings: Any = None) -> Path:
    from mmagent.config import get_settings

    return (settings or get_settings()).home / "sessions.sqlite"


class Agent:
    """An MM-LLM that plans in a LangGraph state machine and calls typed tools.

    Args:
        model: a `ChatModel`, or a catalog spec loaded with `mmagent.backends.load_chat_model`.
        tools: built-in tool names, `Tool` objects, `@tool` functions, JSON tool schemas (OpenAI
            or MCP style, or `SchemaTool(schema, handler)`), or a `ToolRegistry` (default: every
            built-in tool). A call to a schema without a handler is not run: once validated, it
            ends the turn as `interrupted` with the call in `result.pending` (`"external": True`,
            arguments validated with defaults filled in); `resume(session, {call_id: result})`
            feeds the results back and the turn goes on.
        memory: the store of the remember / search_memory tools: a `MemoryStore`, or the folder
            of one (default `<home>/memory`), opened on the first memory call of the agent's life.
        memory_namespace: whose memories the tools read and write when the agent opens the store:
            "default" (the local user: every session, and `mmagent memory add`, share it), a
            user's name (a server gives each user their own), or None (each session its own).
        approval: names of tools that must be approved by the user before they run.
        max_steps: model steps per turn before the turn ends with status `step_limit`.
        max_repairs: invalid outputs or invalid calls sent back to the model before giving up.
        log: an `InteractionLog`, a path for one, or None for `<home>/interactions.sqlite`.
        checkpoint: the SQLite checkpoint file (default `<home>/sessions.sqlite`; ":memory:" for
            a throwaway in-process one).
        constrained: schema-guided decoding of tool calls; None (default) = wherever the backend
            supports it (every local backend; a remote endpoint with native tool calls).
        durable: fsync every log and checkpoint commit (survives power loss, not only crashes).
        max_prompt_chars: longer prompts are refused before they enter the session's history
            (a history that outgrows the model's context is fitted by leaving out the oldest turns).
        adapters: the `AdapterRegistry` whose promoted version a composed model serves to new
            sessions (default `<home>/adapters`; see `mmagent learn`), given to the registered
            default adapter hook (`mmagent.protocol.adapter_hook`) of a model that has none.
        mcp_servers: MCP servers whose tools join `tools` (command lines run over stdio, or
            http(s) URLs; see `mmagent.interop.mcp_client`); connected now, closed by `close()`.
        tool_retrieval: which of the tools the model sees at each turn: those a sentence encoder
            finds relevant to the request, among the tools the model was not tuned on (the
            built-ins are always offered; see `mmagent.backends.tool_retrieval`; a `ToolRetriever`
            brings its own encoder); None offers every tool every time.
    """

    def __init__(
        self,
        model: ChatModel | str = "mmagent-default",
        tools: Sequence[str | Any | Callable[..., Any]] | Any | None = None,
        memory: Any | Path | str | None = None,
        approval: Iterable[str] = (),
        max_steps: int = 6,
        *,
        max_repairs: int = 2,
        log: InteractionLog | Path | str | None = None,
        checkpoint: Path | str | None = None,
        artifacts_root: Path | str | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        constrained: bool | None = None,
        max_new_tokens: int = 256,
        tool_timeout_s: float | None = None,
        max_workers: int = 4,
        durable: bool = False,
        adapters: Any = None,
        max_prompt_chars: int = MAX_PROMPT_CHARS,
        memory_namespace: str | None = "default",
        mcp_servers: Sequence[Any] = (),
        tool_retrieval: ToolRetrieval | ToolRetriever | None = DEFAULT_RETRIEVAL,
    ) -> None:
        if max_steps < 1 or max_repairs < 0:
            raise AgentInputError(f"max_steps must be >= 1 and max_repairs >= 0, got {max_steps} and {max_repairs}")
        self.registry = _registry(tools)
        self._mcp: list[Any] = []
        if mcp_servers:  # into a copy: a registry the caller passed is not changed
            from mmagent.interop.mcp_client import as_servers, import_mcp_tools

            self.registry = self.registry.subset(self.registry.names())
            self._mcp = import_mcp_tools(self.registry, as_servers(mcp_servers))
        self._schemas = self.registry.schemas()  # fixed for the agent's life; rebuilt per turn it cost ~1 ms
        unknown = sorted(set(approval) - set(self.registry.names()))
        if unknown:
            for conn in self._mcp:
                conn.close()
            raise AgentInputError(f"approval names tools this agent does not have: {unknown}; its tools: {self.registry.names()}")
        self._model = model
        self.tool_retrieval = tool_retrieval
        self.memory = memory if memory is None or not isinstance(memory, (str, Path)) else None
        self._memory_path = Path(memory) if isinstance(memory, (str, Path)) else None
        self._owns_memory = False
        self.memory_namespace = memory_namespace
        self._memory_lock = threading.Lock()  # two memory calls of one step run in parallel
        self.approval = frozenset(approval)
        self.settings = _settings()
        self.log = log if isinstance(log, InteractionLog) else InteractionLog(log, durable=durable)
        self.checkpoint_path = Path(checkpoint) if checkpoint else default_checkpoint_path(self.settings)
        self._saver = open_checkpointer(self.checkpoint_path, durable=durable)
        self.graph = build_graph().compile(checkpointer=self._saver)
        self.artifacts_root = Path(artifacts_root) if artifacts_root else self.settings.artifacts_dir
        self._stores: dict[str, Any] = {}
        self.adapters = adapters  # an AdapterRegistry; None = <home>/adapters
        self.max_prompt_chars = max_prompt_chars
        self.options = AgentOptions(system_prompt=system_prompt, max_steps=max_steps, max_repairs=max_repairs,
                                    constrained=constrained, max_new_tokens=max_new_tokens, tool_timeout_s=tool_timeout_s,
                                    max_workers=max_workers)

    # -- public ------------------------------------------------------------------------------------

    @property
    def model(self) -> ChatModel:
        """The chat model, loaded on first use when given as a spec (behind tool retrieval, unless it is off)."""
        if isinstance(self._model, str) or (self.tool_retrieval is not None and not isinstance(self._model, RetrievingChatModel)):
            self._model = self._prepared(self._model)
        return self._model

    def _prepared(self, model: ChatModel | str) -> ChatModel:
        """`model` loaded (a spec) and put behind tool retrieval; the encoder then loads in the background
        (overlapping the turn's set-up) when the agent has a tool it would filter. Not during the model's
        load: both may import transformers, whose lazy module raises "cannot import name" to one of two
        threads importing it at once (seen on a fresh home, where the LLM is converted on first use)."""
        r = self.tool_retrieval
        retriever = None if r is None else r if isinstance(r, ToolRetriever) else ToolRetriever(r)
        if isinstance(model, str):
            try:
                from mmagent.backends import load_chat_model
            except ImportError as err:
                raise RuntimeError(f"cannot load model {model!r}: the backends are not available ({err})") from err
            model = load_chat_model(model)
        if retriever is not None and retriever.needed(self._schemas):
            retriever.warm(self._schemas)
        return model if retriever is None else RetrievingChatModel(model, retriever)

    def run(self, prompt: str, images: Sequence[Any] = (), audio: Sequence[Any] = (), session: str | None = None) -> RunResult:
        """One turn: returns the answer, the calls with their results, the artifacts and the trace."""
        session, inp = self._start(prompt, images, audio, session)
        self._serve_adapter(session)
        for _ in self._drive(inp, session):
            pass
        return self.result(session)

    def stream(self, prompt: str, images: Sequence[Any] = (), audio: Sequence[Any] = (), session: str | None = None) -> Iterator[AgentEvent]:
        """One turn as events (tokens, tool calls, artifacts, the answer); see `mmagent.agent.events`."""
        session, inp = self._start(prompt, images, audio, session)
        self._serve_adapter(session)
        yield from self._drive(inp, session)

    def prefill_prompt(self) -> None:
        """Runs the system prompt and this agent's tool signatures through the model once (one token,
        nothing logged), so that their KV is computed before the first turn; a model served from the
        decoder cache also saves it for the next process (`mmagent models pull --all` does this for the
        default agent: the first `mmagent run` after it does not prefill ~1,000 prompt tokens, ~3 s on
        one core). A turn reuses it up to where its own messages begin."""
        system = [Message(role="system", content=self.options.system_prompt)] if self.options.system_prompt else []
        self.model.chat([*system, Message(role="user", content="")], self._schemas or None, max_new_tokens=1)

    def resume(self, session: str, decision: Any = None) -> RunResult:
        """Continues an unfinished turn: an approval interrupt (`decision` 'approve' / 'deny' / per
        call id) or a turn whose process died (no decision)."""
        for _ in self.resume_stream(session, decision):
            pass
        return self.result(session)

    def resume_stream(self, session: str, decision: Any = None) -> Iterator[AgentEvent]:
        from langgraph.types import Command

        snap = self._snapshot(session)
        if not snap.next:
            status = snap.values.get("status")
            raise AgentInputError(f"session {session!r} has no unfinished turn to resume (its last turn ended: {status})")
        self._serve_adapter(session)  # after the checks: a refused resume loads no model
        waiting = _waiting(snap)
        if waiting:
            if decision is None:
                names = ", ".join(f"{c['id']} {c['name']}" for c in waiting)
                raise AgentInputError(f"session {session!r} waits for approval of: {names}; resume with decision 'approve' or 'deny'")
            normalize_decision(decision, waiting)  # a bad decision fails here, before the graph moves
            yield from self._drive(Command(resume=decision), session)
        else:
            if decision is not None:
                raise AgentInputError(f"session {session!r} is not waiting for an approval; resume it without a decision")
            yield from self._drive(None, session)

    def abandon(self, session: str, reason: str = "abandoned by the user") -> RunResult:
        """Ends a session's unfinished turn without running more of it (status `abandoned`, in
        the checkpoint and the log); the session takes new turns again. Calls that had not run
        are answered in the history as not run, so no model sees a call without its result."""
        snap = self._snapshot(session)
        if not snap.next:
            raise AgentInputError(f"session {session!r} has no unfinished turn to abandon (its last turn ended: {snap.values.get('status')})")
        self._end_turn(session, "abandoned", reason)
        return self.result(session)

    def unfinished(self, session: str) -> str | None:
        """Where the session's last turn stopped ("approve" when it waits for approval, else the
        node a killed process did not finish), or None when it ended (or the session is new)."""
        snap = self._snapshot(session, must_exist=False)
        return ("approve" if _waiting(snap) else snap.next[0]) if snap.next else None

    def pending(self, session: str) -> list[dict[str, Any]]:
        """Calls waiting for approval in this session ([] when none)."""
        return _waiting(self._snapshot(session))

    def history(self, session: str) -> list[Message]:
        """The session's conversation so far (user, assistant and tool messages)."""
        return [Message.model_validate(m) for m in self._snapshot(session).values.get("messages", [])]

    def result(self, session: str) -> RunResult:
        """The latest turn of a session as a `RunResult` (finished or not)."""
        snap = self._snapshot(session)
        v = snap.values
        waiting = _waiting(snap)
        status = "interrupted" if waiting else (v.get("status") if not snap.next else "interrupted")
        calls = [CallResult(id=r["id"], name=r["name"], arguments=r["arguments"], ok=r["ok"], result=r.get("output"),
                            error=r.get("error"), error_kind=r.get("error_kind"), artifacts=r.get("artifacts", []),
                            latency_s=r.get("latency_s", 0.0), approval=r.get("approval")) for r in v.get("turn_calls", [])]
        return RunResult(answer=v.get("answer") or "", status=status or "error", error=v.get("error"), calls=calls,
                         artifacts=list(dict.fromkeys(v.get("artifacts", []))), trace=list(v.get("trace", [])),
                         pending=waiting, session=session, turn_id=v.get("turn_id", ""))

    def artifacts(self, session: str):
        """The session's artifact store (`mmagent.media.artifacts.ArtifactStore`)."""
        if session not in self._stores:
            from mmagent.media.artifacts import ArtifactStore

            self._stores[session] = ArtifactStore(self.artifacts_root, session)
        return self._stores[session]

    def open_memory(self) -> Any:
        """The memory store, opened now if it was given as a folder or not at all."""
        with self._memory_lock:
            if self.memory is None:
                from mmagent.memory.store import MemoryStore

                self.memory = MemoryStore(self._memory_path or self.settings.home / "memory", namespace=self.memory_namespace)
                self._owns_memory = True
            return self.memory

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        if self._owns_memory:
            self.memory.close()
        self.log.close()
        if hasattr(self._saver, "conn"):
            self._saver.conn.close()
        for conn in self._mcp:
            conn.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------------

    def _start(self, prompt: str, images: Sequence[Any], audio: Sequence[Any], session: str | None) -> tuple[str, dict[str, Any]]:
        from langgraph.types import Overwrite

        if not isinstance(prompt, str) or not prompt.strip():
            raise AgentInputError("the prompt is empty; say what the agent should do")
        if len(prompt) > self.max_prompt_chars:
            raise AgentInputError(f"the prompt is {len(prompt):,} characters, over the limit of {self.max_prompt_chars:,}; "
                                  "shorten it, or put long text in memory (remember) and ask about it")
        prompt = clean_text(prompt)
        session = session or f"s-{uuid.uuid4().hex[:12]}"
        snap = self._snapshot(session, must_exist=False)
        if snap.next:
            waits = _waiting(snap)
            raise AgentInputError(
                f"session {session!r} has an unfinished turn {snap.values.get('turn_id')!r} "
                f"({'waiting for approval' if waits else 'stopped at ' + snap.next[0]}); finish it with "
                f"`mmagent resume {session}{' --approve|--deny' if waits else ''}` (Agent.resume) or drop it with "
                f"`mmagent abandon {session}` (Agent.abandon)"
            )
        media = self._ingest(session, images, "image") + self._ingest(session, audio, "audio")
        inp = {
            "session": session, "turn_id": f"t-{uuid.uuid4().hex[:16]}", "prompt": prompt, "media": media,
            "steps": 0, "repairs": 0, "pending": [], "approvals": {}, "answer": None, "status": "running", "error": None,
            "turn_calls": Overwrite([]), "trace": Overwrite([]), "artifacts": Overwrite([]),
        }
        return session, inp

    def _serve_adapter(self, session: str) -> None:
        """The adapter a session runs with is the model's business (`mmagent.protocol.chat.ServesSessions`):
        a model without a hook gets the registered default for `self.adapters`
        (`mmagent.protocol.adapter_hook`; the entry layer registers the learning loop's: the version
        `mmagent learn` promoted, read when the session first runs in this process, no restart
        needed, and kept for that session). The model is resolved first, so one given by name is
        served like one passed in."""
        from mmagent.protocol import adapter_hook
        from mmagent.protocol.chat import ServesSessions

        model = self.model  # loads a spec now, before the turn
        if not isinstance(model, ServesSessions):
            return
        adapter_hook.install(model, self.adapters)
        model.serve_session(session)

    def _ingest(self, session: str, items: Sequence[Any], kind: str) -> list[dict[str, str]]:
        """Paths, bytes, PIL images or existing artifact ids -> artifact ids (bad media fail here,
        before the turn starts, with the store's message)."""
        if isinstance(items, (str, Path, bytes)):
            items = [items]
        store = self.artifacts(session)
        out = []
        for item in items:
            if isinstance(item, str) and _ARTIFACT_ID.match(item) and not Path(item).exists():
                art = store.get(item)
                if art.kind != kind:
                    raise AgentInputError(f"{item} is a {art.kind} artifact, passed as {kind}")
            elif kind == "image":
                art = store.add_image(item)
            else:
                art = store.add_audio(item)
            out.append({"kind": kind, "id": art.id})
        return out

    def _drive(self, inp: Any, session: str) -> Iterator[AgentEvent]:
        config = {"configurable": {"thread_id": session}}
        try:
            for part in self.graph.stream(inp, config, context=self._context(), stream_mode="custom", durability="sync"):
                yield AgentEvent.model_validate(part)
        except Exception as err:
            # A node that raised (a bug, a full disk) must not leave the session stuck mid-turn.
            if self.graph.get_state(config).next:
                self._end_turn(session, "error", f"the turn failed: {type(err).__name__}: {err}")
            raise
        snap = self.graph.get_state(config)
        waiting = _waiting(snap)
        if waiting:
            yield AgentEvent(type="interrupt", session=session, turn_id=snap.values.get("turn_id", ""), calls=waiting,
                             status="interrupted")

    def _end_turn(self, session: str, status: str, reason: str) -> None:
        """Closes an unfinished turn as if `finish` had run: state, history and log agree."""
        from mmagent.agent.graph import INTERRUPTED, not_run_messages

        config = {"configurable": {"thread_id": session}}
        v = self.graph.get_state(config).values
        update = {"status": status, "error": reason, "pending": [], "approvals": {},
                  "messages": not_run_messages(v.get("pending", []), reason)}
        self.graph.update_state(config, update, as_node="finish")
        if v.get("turn_id"):
            self.log.interrupt_running(v["turn_id"], INTERRUPTED)
            self.log.end_turn(v["turn_id"], status, None, reason, v.get("steps", 0), v.get("repairs", 0))

    def _context(self) -> AgentContext:
        options = replace(self.options, constrained=resolve_constrained(self.model, self.options.constrained))
        return AgentContext(
            model=self.model, registry=self.registry, artifacts=self.artifacts, log=self.log, memory=self.open_memory,
            approval=self.approval, schemas=self._schemas, options=options,
        )

    def _snapshot(self, session: str, must_exist: bool = True):
        snap = self.graph.get_state({"configurable": {"thread_id": session}})
        if must_exist and not snap.values:
            raise AgentInputError(f"unknown session {session!r}: nothing was checkpointed for it in {self.checkpoint_path}")
        return snap


def _waiting(snap: Any) -> list[dict[str, Any]]:
    return [c for i in snap.interrupts for c in (i.value or {}).get("calls", [])]


def _registry(tools: Any):
    from mmagent.tools.base import Tool
    from mmagent.tools.registry import ToolRegistry, default_registry

    if isinstance(tools, ToolRegistry):
        return tools
    if tools is None:
        return default_registry()
    reg = ToolRegistry()
    builtins = None
    for t in tools:
        if isinstance(t, str):
            builtins = builtins or default_registry()
            if t not in builtins:
                raise AgentInputError(f"unknown tool {t!r}; built-in tools: {', '.join(builtins.names())}")
            reg.register(builtins.get(t))
        elif isinstance(t, (Tool, dict)) or callable(t):  # a dict is a JSON schema: a handler-less SchemaTool
            reg.register(t)
        else:
            raise AgentInputError(f"tools must be names, Tool objects, @tool functions or JSON tool schemas, got {type(t).__name__}")
    return reg


def _settings():
    from mmagent.config import get_settings

    return get_settings()
