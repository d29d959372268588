"""Feedback on logged turns: a rating and, optionally, a correction (the right calls or answer).

Feedback lives in a `feedback` table of the interaction log's own SQLite file, keyed by turn id,
so a turn and what the user said about it sit side by side and survive together. The table is
created here if missing (the log's other tables belong to the agent's log module). Every row is
kept; the latest row for a turn is the one that counts, so a user can change their mind.

A correction is checked before it is stored: every corrected call must name a known tool and its
arguments must validate against that tool's pydantic input model (the same check the agent runs
before a call). A bad correction is refused with the reason and nothing is written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, ValidationError, model_validator

from mmagent.errors import UserError
from mmagent.protocol.chat import ToolCall

Rating = Literal["up", "down"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id TEXT NOT NULL,
    session TEXT,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    correct_calls TEXT,          -- JSON list of {"name", "arguments"} or NULL
    correct_answer TEXT,
    created TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'api'
);
CREATE INDEX IF NOT EXISTS feedback_turn ON feedback(turn_id);
CREATE TABLE IF NOT EXISTS feedback_use (
    feedback_id INTEGER NOT NULL REFERENCES feedback(id),
    round TEXT NOT NULL,         -- the learning round that consumed it (see continual.update)
    role TEXT NOT NULL,          -- train | heldout | rejected | held_for_review
    PRIMARY KEY (feedback_id, round)
);
"""


class LoggedTurn(BaseModel):
    """What continual learning needs from one logged turn (a view of the interaction log)."""

    id: str
    session: str = ""
    prompt: str
    images: list[str] = Field(default_factory=list)
    audio: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)  # tool names offered to the model in this turn
    calls: list[ToolCall] = Field(default_factory=list)  # what the model called
    answer: str = ""
    adapter: str | None = None


class TurnLookup(Protocol):
    """Anything that finds logged turns by id (the interaction log, or a test fake)."""

    def get_turn(self, turn_id: str) -> LoggedTurn | None: ...


class Feedback(BaseModel):
    """One user judgement of a turn. A correction implies the turn was wrong (rating 'down')."""

    id: int | None = None
    turn_id: str
    session: str = ""
    rating: Rating
    correct_calls: list[ToolCall] | None = None
    correct_answer: str | None = None
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    source: str = "api"

    @model_validator(mode="after")
    def _one_correction(self) -> Feedback:
        if self.correct_calls is not None and self.correct_answer is not None:
            raise ValueError("give either a corrected call list or a corrected answer, not both")
        if self.correct_answer is not None and not self.correct_answer.strip():
            raise ValueError("the corrected answer is empty; write the answer the agent should have given")
        return self

    @property
    def corrected(self) -> bool:
        return self.correct_calls is not None or self.correct_answer is not None


class FeedbackError(ValueError, UserError):
    """Feedback that cannot be stored: unknown turn, invalid correction. Nothing was written."""


def validate_calls(calls: Sequence[ToolCall], registry: Any, allowed: Iterable[str] | None = None) -> list[str]:
    """Problems with corrected calls against the tools' pydantic input models ([] when valid).

    `registry` is a `ToolRegistry` (or anything with `__contains__` and `get(name).input_model`);
    `allowed` restricts the names to the tools the turn offered, when the log records them.
    """
    allowed_set = set(allowed) if allowed else None
    problems = []
    for i, call in enumerate(calls, start=1):
        if call.name not in registry:
            problems.append(f"call {i}: unknown tool {call.name!r} (known: {', '.join(registry.names())})")
            continue
        if allowed_set is not None and call.name not in allowed_set:
            problems.append(f"call {i}: {call.name} was not offered in this turn (offered: {', '.join(sorted(allowed_set))})")
        try:
            registry.get(call.name).input_model.model_validate(call.arguments)
        except ValidationError as err:
            detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in err.errors())
            problems.append(f"call {i} ({call.name}): {detail}")
    return problems


def parse_correct_call(text: str) -> list[ToolCall]:
    """`--correct-call` JSON: one call object or a list of them -> ToolCalls (clear error otherwise)."""
    from mmagent.protocol.toolcall import loads_json

    try:
        obj = loads_json(text)
    except json.JSONDecodeError as err:
        raise FeedbackError(
            f'--correct-call is not valid JSON ({err.msg} at char {err.pos}); '
            'expected e.g. {"name": "read_text", "arguments": {"image": "image_1"}}'
        ) from None
    except ValueError as err:  # nested too deep, or a number too long to read
        raise FeedbackError(f"--correct-call: {err}") from None
    items = obj if isinstance(obj, list) else [obj]
    try:
        return [ToolCall.model_validate(c) for c in items]
    except ValidationError as err:
        raise FeedbackError(f"--correct-call must be {{'name': str, 'arguments': {{...}}}} (or a list of them): {err.errors()[0]['msg']}") from None


class FeedbackStore:
    """The `feedback` table in the interaction log's SQLite file."""

    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    def add(self, fb: Feedback) -> Feedback:
        calls = json.dumps([c.model_dump(exclude_none=True) for c in fb.correct_calls]) if fb.correct_calls is not None else None
        with closing(self._connect()) as con, con:
            cur = con.execute(
                "INSERT INTO feedback (turn_id, session, rating, correct_calls, correct_answer, created, source) VALUES (?,?,?,?,?,?,?)",
                (fb.turn_id, fb.session, fb.rating, calls, fb.correct_answer, fb.created, fb.source),
            )
        return fb.model_copy(update={"id": cur.lastrowid})

    def latest(self) -> list[Feedback]:
        """The latest feedback per turn, oldest turn first."""
        sql = "SELECT * FROM feedback WHERE id IN (SELECT MAX(id) FROM feedback GROUP BY turn_id) ORDER BY id"
        with closing(self._connect()) as con:
            return [_row(r) for r in con.execute(sql)]

    def unused(self) -> list[Feedback]:
        """Latest feedback per turn that no learning round has consumed yet."""
        used = self.used_ids()
        return [f for f in self.latest() if f.id not in used]

    def used_ids(self) -> set[int]:
        with closing(self._connect()) as con:
            return {r[0] for r in con.execute("SELECT feedback_id FROM feedback_use")}

    def mark_used(self, round_id: str, roles: dict[int, str]) -> None:
        with closing(self._connect()) as con, con:
            con.executemany("INSERT OR REPLACE INTO feedback_use VALUES (?,?,?)", [(i, round_id, r) for i, r in roles.items()])

    def latest_for(self, turn_ids: Sequence[str]) -> dict[str, Feedback]:
        """The latest feedback of each of these turns, by turn id (turns without feedback are absent)."""
        if not turn_ids:
            return {}
        marks = ",".join("?" * len(turn_ids))
        sql = f"SELECT * FROM feedback WHERE id IN (SELECT MAX(id) FROM feedback WHERE turn_id IN ({marks}) GROUP BY turn_id)"
        with closing(self._connect()) as con:
            return {r["turn_id"]: _row(r) for r in con.execute(sql, tuple(turn_ids))}

    def for_turn(self, turn_id: str) -> list[Feedback]:
        with closing(self._connect()) as con:
            return [_row(r) for r in con.execute("SELECT * FROM feedback WHERE turn_id = ? ORDER BY id", (turn_id,))]


def _row(r: sqlite3.Row) -> Feedback:
    calls = [ToolCall.model_validate(c) for c in json.loads(r["correct_calls"])] if r["correct_calls"] is not None else None
    return Feedback(
        id=r["id"], turn_id=r["turn_id"], session=r["session"] or "", rating=r["rating"], correct_calls=calls,
        correct_answer=r["correct_answer"], created=r["created"], source=r["source"],
    )


def record_feedback(
    store: FeedbackStore,
    turns: TurnLookup,
    registry: Any,
    turn_id: str,
    rating: Rating,
    correct_calls: list[ToolCall] | None = None,
    correct_answer: str | None = None,
    source: str = "api",
) -> Feedback:
    """Checks the turn exists and the correction validates, then stores the feedback."""
    turn = turns.get_turn(turn_id)
    if turn is None:
        raise FeedbackError(f"no logged turn {turn_id!r}; `mmagent turns list` shows the latest turn ids")
    if (correct_calls is not None or correct_answer is not None) and rating == "up":
        raise FeedbackError("a correction says the turn was wrong: use --rating down with --correct-call/--correct-answer")
    if correct_calls is not None:
        problems = validate_calls(correct_calls, registry, turn.tools or None)
        if problems:
            raise FeedbackError("correction refused, nothing stored: " + " | ".join(problems))
    try:
        fb = Feedback(turn_id=turn_id, session=turn.session, rating=rating, correct_calls=correct_calls,
                      correct_answer=correct_answer, source=source)
    except ValidationError as err:
        raise FeedbackError(err.errors()[0]["msg"].removeprefix("Value error, ")) from None
    return store.add(fb)
