"""The interaction log: every turn, every model step and every tool call, in SQLite.

This is the input of continual learning, so it is complete and crash-safe: the database is in WAL
mode and each node of the agent graph commits its rows before the graph moves on (and before the
graph's own checkpoint), so a process killed at any point loses nothing that already happened.
Rows are keyed so that a node re-run after a crash overwrites its own rows instead of adding
duplicates. `synchronous=NORMAL` survives process crashes; pass `durable=True` (FULL) to also
survive power loss, at the cost of an fsync per write.

Schema (version 1; stable — add columns, never rename them):

    turns       turn_id PK, session, prompt, images JSON [artifact ids], audio JSON, tools JSON
                [names offered], model, adapter, constrained 0/1, status (running | ok | error |
                interrupted | step_limit), answer, error, steps, repairs, prompt_tokens,
                completion_tokens, started_at, ended_at (ISO-8601 UTC), latency_s, schema_version
    steps       (turn_id, step) PK; input_messages JSON [Message dumps the model saw, system
                prompt included], raw_output, calls JSON [{id, name, arguments}], parse_errors
                JSON [str], latency_s, prompt_tokens, completion_tokens, model, adapter, created_at
    tool_calls  (turn_id, call_id) PK; step, name, arguments JSON, ok 0/1, output JSON, error,
                error_kind (validation | unknown_tool | timeout | exception | denied | running: started,
                not finished | interrupted: the process died while it ran), artifacts
                JSON, latency_s, approval (NULL | approved | denied), created_at

Feedback (rating, corrected calls or answer) lives in the `feedback` table of the same file,
owned by `mmagent.feedback.FeedbackStore`; this log is its `TurnLookup` (`get_turn`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mmagent.agent.state import CallRecord, StepRecord
from mmagent.protocol.chat import clean_text

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    turn_id TEXT PRIMARY KEY, session TEXT NOT NULL, prompt TEXT NOT NULL,
    images TEXT NOT NULL DEFAULT '[]', audio TEXT NOT NULL DEFAULT '[]', tools TEXT NOT NULL DEFAULT '[]',
    model TEXT, adapter TEXT, constrained INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL, answer TEXT, error TEXT, steps INTEGER NOT NULL DEFAULT 0,
    repairs INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL, ended_at TEXT,
    latency_s REAL, schema_version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_session ON turns(session, started_at);
CREATE TABLE IF NOT EXISTS steps (
    turn_id TEXT NOT NULL, step INTEGER NOT NULL, input_messages TEXT NOT NULL, raw_output TEXT NOT NULL,
    calls TEXT NOT NULL, parse_errors TEXT NOT NULL, latency_s REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
    model TEXT, adapter TEXT, created_at TEXT NOT NULL, PRIMARY KEY (turn_id, step)
);
CREATE TABLE IF NOT EXISTS tool_calls (
    turn_id TEXT NOT NULL, call_id TEXT NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL,
    arguments TEXT NOT NULL, ok INTEGER NOT NULL, output TEXT, error TEXT, error_kind TEXT,
    artifacts TEXT NOT NULL DEFAULT '[]', latency_s REAL NOT NULL DEFAULT 0, approval TEXT,
    created_at TEXT NOT NULL, PRIMARY KEY (turn_id, call_id)
);
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def default_log_path(settings: Any = None) -> Path:
    from mmagent.config import get_settings

    return (settings or get_settings()).home / "interactions.sqlite"


class StepLog(BaseModel):
    step: int
    input_messages: list[dict[str, Any]]
    raw_output: str
    calls: list[dict[str, Any]]
    parse_errors: list[str]
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    adapter: str | None = None
    created_at: str


class CallLog(BaseModel):
    call_id: str
    step: int
    name: str
    arguments: dict[str, Any]
    ok: bool
    output: dict[str, Any] | None = None
    error: str | None = None
    error_kind: str | None = None
    artifacts: list[str] = Field(default_factory=list)
    latency_s: float = 0.0
    approval: str | None = None
    created_at: str


class TurnLog(BaseModel):
    """One logged turn; `steps_log` and `calls` are filled by `InteractionLog.turn`."""

    turn_id: str
    session: str
    prompt: str
    images: list[str]
    audio: list[str]
    tools: list[str]
    model: str | None
    adapter: str | None
    constrained: bool
    status: str
    answer: str | None
    error: str | None
    steps: int
    repairs: int
    prompt_tokens: int
    completion_tokens: int
    started_at: str
    ended_at: str | None
    latency_s: float | None
    schema_version: int
    steps_log: list[StepLog] = Field(default_factory=list)
    calls: list[CallLog] = Field(default_factory=list)


class InteractionLog:
    """Thread-safe writer/reader of one log file; several processes may share the file."""

    def __init__(self, path: Path | str | None = None, *, durable: bool = False) -> None:
        self.path = Path(path) if path is not None else default_log_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        with self._lock:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, rows: Sequence[tuple]) -> None:
        rows = [tuple(clean_text(v) if isinstance(v, str) else v for v in r) for r in rows]  # SQLite refuses lone surrogates
        with self._lock:  # one transaction per write call: committed when this returns
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- writing (called by the graph's nodes) ---------------------------------------------------

    def start_turn(self, turn_id: str, session: str, prompt: str, images: list[str], audio: list[str],
                   tools: list[str], model: str | None, adapter: str | None, constrained: bool) -> None:
        # Upsert: perceive may run again after a crash; the first start time is kept.
        self._write(
            "INSERT INTO turns (turn_id, session, prompt, images, audio, tools, model, adapter, constrained, status,"
            " started_at, schema_version) VALUES (?,?,?,?,?,?,?,?,?, 'running', ?, ?)"
            " ON CONFLICT(turn_id) DO UPDATE SET images=excluded.images, audio=excluded.audio, status='running'",
            [(turn_id, session, prompt, _j(images), _j(audio), _j(tools), model, adapter, int(constrained), now(), SCHEMA_VERSION)],
        )

    def log_step(self, turn_id: str, record: StepRecord, input_messages: list[dict[str, Any]]) -> None:
        self._write(
            "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(turn_id, record["step"], _j(input_messages), record["raw_output"], _j(record["calls"]),
              _j(record["parse_errors"]), record["latency_s"], record.get("prompt_tokens", 0),
              record.get("completion_tokens", 0), record.get("model"), record.get("adapter"), now())],
        )

    def log_calls(self, turn_id: str, records: Sequence[CallRecord]) -> None:
        self._write(
            "INSERT OR REPLACE INTO tool_calls VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(turn_id, r["id"], r["step"], r["name"], _j(r["arguments"]), int(r["ok"]), _j(r.get("output")),
              r.get("error"), r.get("error_kind"), _j(r.get("artifacts", [])), r.get("latency_s", 0.0),
              r.get("approval"), now()) for r in records],
        )

    def call(self, turn_id: str, call_id: str) -> CallLog | None:
        """One logged call (a re-run `act` reuses it instead of running the tool again)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM tool_calls WHERE turn_id=? AND call_id=?", (turn_id, call_id)).fetchone()
        return _call(row) if row is not None else None

    def interrupt_running(self, turn_id: str, error: str) -> None:
        """Calls logged as started but never finished (the process died) become `interrupted`."""
        self._write("UPDATE tool_calls SET error_kind='interrupted', error=? WHERE turn_id=? AND error_kind='running'",
                    [(error, turn_id)])

    def set_status(self, turn_id: str, status: str) -> None:
        self._write("UPDATE turns SET status=? WHERE turn_id=?", [(status, turn_id)])

    def end_turn(self, turn_id: str, status: str, answer: str | None, error: str | None, steps: int, repairs: int) -> None:
        with self._lock:
            row = self._db.execute(
                "SELECT started_at, (SELECT COALESCE(SUM(prompt_tokens), 0) FROM steps WHERE turn_id=?),"
                " (SELECT COALESCE(SUM(completion_tokens), 0) FROM steps WHERE turn_id=?),"
                " (SELECT model FROM steps WHERE turn_id=? ORDER BY step DESC LIMIT 1),"
                " (SELECT adapter FROM steps WHERE turn_id=? ORDER BY step DESC LIMIT 1)"
                " FROM turns WHERE turn_id=?", (turn_id,) * 5,
            ).fetchone()
        ended = now()
        latency = (datetime.fromisoformat(ended) - datetime.fromisoformat(row[0])).total_seconds() if row else None
        self._write(
            "UPDATE turns SET status=?, answer=?, error=?, steps=?, repairs=?, prompt_tokens=?, completion_tokens=?,"
            " model=COALESCE(?, model), adapter=COALESCE(?, adapter), ended_at=?, latency_s=? WHERE turn_id=?",
            [(status, answer, error, steps, repairs, row[1] if row else 0, row[2] if row else 0,
              row[3] if row else None, row[4] if row else None, ended, latency, turn_id)],
        )

    # -- reading ------------------------------------------------------------------------------------

    def turn(self, turn_id: str) -> TurnLog | None:
        """The whole turn: its row, every step and every call."""
        with self._lock:
            row = self._db.execute("SELECT * FROM turns WHERE turn_id=?", (turn_id,)).fetchone()
            if row is None:
                return None
            steps = self._db.execute("SELECT * FROM steps WHERE turn_id=? ORDER BY step", (turn_id,)).fetchall()
            calls = self._db.execute("SELECT * FROM tool_calls WHERE turn_id=? ORDER BY step, call_id", (turn_id,)).fetchall()
        out = _turn(row)
        out.steps_log = [StepLog(**{**dict(s), **{k: json.loads(s[k]) for k in ("input_messages", "calls", "parse_errors")}}) for s in steps]
        out.calls = [_call(c) for c in calls]
        return out

    def turns(self, session: str | None = None, limit: int = 50) -> list[TurnLog]:
        """The latest turns (without steps and calls), newest first."""
        sql, args = "SELECT * FROM turns", ()
        if session is not None:
            sql, args = sql + " WHERE session=?", (session,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY started_at DESC LIMIT ?", (*args, limit)).fetchall()
        return [_turn(r) for r in rows]

    def calls_of(self, turn_ids: Sequence[str]) -> dict[str, list[CallLog]]:
        """The tool calls of these turns in order, by turn id (a turn without calls is absent)."""
        if not turn_ids:
            return {}
        marks = ",".join("?" * len(turn_ids))
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM tool_calls WHERE turn_id IN ({marks}) ORDER BY step, call_id", tuple(turn_ids)).fetchall()
        out: dict[str, list[CallLog]] = {}
        for r in rows:
            out.setdefault(r["turn_id"], []).append(_call(r))
        return out

    def get_turn(self, turn_id: str):  # -> mmagent.feedback.LoggedTurn | None
        """The continual-learning view of a turn (`mmagent.feedback.TurnLookup`)."""
        from mmagent.feedback import LoggedTurn
        from mmagent.protocol.chat import ToolCall

        t = self.turn(turn_id)
        if t is None:
            return None
        calls = [ToolCall(name=c.name, arguments=c.arguments, id=c.call_id) for c in t.calls if c.error_kind not in ("unknown_tool", "validation")]
        return LoggedTurn(id=t.turn_id, session=t.session, prompt=t.prompt, images=t.images, audio=t.audio,
                          tools=t.tools, calls=calls, answer=t.answer or "", adapter=t.adapter)


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _call(row: sqlite3.Row) -> CallLog:
    return CallLog(**{**dict(row), "ok": bool(row["ok"]), **{k: json.loads(row[k]) for k in ("arguments", "output", "artifacts")}})


def _turn(row: sqlite3.Row) -> TurnLog:
    d = dict(row)
    for k in ("images", "audio", "tools"):
        d[k] = json.loads(d[k])
    d["constrained"] = bool(d["constrained"])
    return TurnLog(**d)
