"""`mmagent turns`: the logged turns, so that a TURN_ID for `mmagent feedback` is at hand.

    mmagent turns list [--limit 20] [--session ID] [--json]
    mmagent turns show TURN_ID [--json]

Reads the interaction log (`<home>/interactions.sqlite`) through `InteractionLog` and the
ratings through `FeedbackStore`; it changes no rows. Times are shown in local time.
"""

from __future__ import annotations

import json
from contextlib import closing
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from pydantic import BaseModel

from mmagent.cli.common import console, fail, print_json

if TYPE_CHECKING:
    from mmagent.agent.log import CallLog, InteractionLog, TurnLog
    from mmagent.feedback import Feedback

app = typer.Typer(help="The logged turns (prompt, calls, answer, rating): find the TURN_ID to give feedback on.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


class CallBrief(BaseModel):
    name: str
    arguments: dict[str, Any]
    ok: bool
    error_kind: str | None = None


class TurnRow(BaseModel):
    """One line of `mmagent turns list --json`."""

    turn_id: str
    session: str
    started_at: str
    status: str
    prompt: str
    calls: list[CallBrief]
    answer: str | None
    error: str | None
    rating: str | None  # the latest feedback's rating: up | down | None (not rated)
    corrected: bool


def open_log() -> InteractionLog | None:
    """The interaction log, or None when no turn was ever logged (nothing is created)."""
    from mmagent.agent.log import InteractionLog, default_log_path

    path = default_log_path()
    return InteractionLog(path) if path.is_file() else None


@app.command("list")
def list_turns(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many turns, newest first.")] = 20,
    session: Annotated[Optional[str], typer.Option("--session", "-s", help="Only this session's turns.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Lists the latest logged turns, newest first: id, time, status, rating, calls, prompt and answer.

    Example: mmagent turns list --limit 5 --session s-1a2b3c
    """
    log = open_log()
    rows = _rows(log, session, limit) if log else []
    if json_out:
        print_json([r.model_dump(mode="json") for r in rows])
    elif not rows:
        _say(f"no logged turns in session {session}" if session else 'no turns logged yet: try `mmagent run "..."`')
    else:
        _print_rows(rows)


def _rows(log: InteractionLog, session: str | None, limit: int) -> list[TurnRow]:
    from mmagent.feedback import FeedbackStore

    with closing(log):
        turns = log.turns(session=session, limit=limit)
        ids = [t.turn_id for t in turns]
        calls, ratings = log.calls_of(ids), FeedbackStore(log.path).latest_for(ids)
    return [_row(t, calls.get(t.turn_id, []), ratings.get(t.turn_id)) for t in turns]


def _row(t: TurnLog, calls: list[CallLog], fb: Feedback | None) -> TurnRow:
    return TurnRow(
        turn_id=t.turn_id, session=t.session, started_at=t.started_at, status=t.status, prompt=t.prompt,
        calls=[CallBrief(name=c.name, arguments=c.arguments, ok=c.ok, error_kind=c.error_kind) for c in calls],
        answer=t.answer, error=t.error, rating=fb.rating if fb else None, corrected=bool(fb and fb.corrected),
    )


def _print_rows(rows: list[TurnRow]) -> None:
    """Two lines a turn (readable at 80 columns): id, time, status, rating, calls; then prompt -> answer."""
    for r in rows:
        rating = (r.rating or "-") + (" (corrected)" if r.corrected else "")
        _say(f"{r.turn_id}  {_when(r.started_at)}  {r.status}  rating: {rating}  calls: {_call_names(r.calls)}")
        _say(f"    {_clip(r.prompt)}  ->  {_clip(r.answer or r.error or '')}")
    _say("rate one: mmagent feedback TURN_ID --rating up|down ; all of it: mmagent turns show TURN_ID")


def _call_names(calls: list[CallBrief]) -> str:
    names = [c.name + ("" if c.ok else f" ({c.error_kind})") for c in calls]
    counted = {n: names.count(n) for n in names}  # in first-call order
    return ", ".join(n + (f" x{k}" if k > 1 else "") for n, k in counted.items()) or "none"


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@app.command("show")
def show(
    turn_id: Annotated[str, typer.Argument(help="A turn id (see `mmagent turns list`).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole logged turn (model steps included) and its feedback as JSON.")] = False,
) -> None:
    """Shows one logged turn: prompt, media, every tool call and its outcome, answer, and its feedback.

    Example: mmagent turns show t-3f2a9c0d1e2b4a5c --json
    """
    from mmagent.feedback import FeedbackStore

    log = open_log()
    turn = _turn(log, turn_id) if log else None
    if log is None or turn is None:
        fail(f"no logged turn {turn_id!r}; `mmagent turns list` shows the latest turn ids")
    history = FeedbackStore(log.path).for_turn(turn_id)
    if json_out:
        print_json({**turn.model_dump(mode="json"), "rating": history[-1].rating if history else None, "feedback": history})
    else:
        _details(turn, history[-1] if history else None)


def _turn(log: InteractionLog, turn_id: str) -> TurnLog | None:
    with closing(log):
        return log.turn(turn_id)


def _details(t: TurnLog, fb: Feedback | None) -> None:
    _say(f"turn {t.turn_id}  session {t.session}  status {t.status}  started {_when(t.started_at)}"
        + (f"  {t.latency_s:.2f} s" if t.latency_s is not None else "") + f"  model {t.model or '-'}  adapter {t.adapter or '-'}")
    _say(f"prompt: {t.prompt}")
    if t.images or t.audio:
        _say(f"media: {', '.join(t.images + t.audio)}")
    for i, c in enumerate(t.calls, start=1):
        outcome = "ok" if c.ok else f"{c.error_kind}: {c.error}"
        _say(f"call {i}: {c.name} {json.dumps(c.arguments, ensure_ascii=False)} -> {outcome}")
    _say(f"answer: {t.answer}" if t.answer is not None else f"error: {t.error}")
    _say(f"rating: {_rating(fb)}")
    _say(f"rate it: mmagent feedback {t.turn_id} --rating up|down")


def _rating(fb: Feedback | None) -> str:
    if fb is None:
        return "none yet"
    if fb.correct_calls is not None:
        return f"{fb.rating}, corrected to " + "; ".join(f"{c.name} {json.dumps(c.arguments, ensure_ascii=False)}" for c in fb.correct_calls)
    return fb.rating + (f", corrected answer: {fb.correct_answer}" if fb.correct_answer is not None else "")


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"

