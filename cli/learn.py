"""`mmagent feedback`, `mmagent learn`, `mmagent adapters`: the continual-learning loop.

    mmagent feedback TURN_ID --rating down --correct-call '{"name": "read_text", "arguments": {"image": "image_1"}}'
    mmagent learn --json
    mmagent learn --review
    mmagent adapters list | promote VERSION | rollback
"""

from __future__ import annotations

import errno
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from mmagent.cli.common import EXIT_FAILED, console, err_console, fail, print_json, progress

adapters_app = typer.Typer(help="Adapter versions learnt from feedback: list, promote, roll back.", no_args_is_help=True)


class RatingChoice(str, Enum):
    """`--rating`: was the turn right?"""

    up = "up"
    down = "down"


class Method(str, Enum):
    """`--method`: how a learning round guards what already works (all mix in the replay buffer)."""

    replay = "replay"
    ewc = "ewc"
    olora = "olora"
    preference = "preference"


def feedback(
    turn_id: Annotated[str, typer.Argument(help="The turn to judge (see `mmagent turns list`; printed by `mmagent run` and in chat).")],
    rating: Annotated[RatingChoice, typer.Option("--rating", help="up: the turn was right; down: it was wrong.")],
    correct_call: Annotated[Optional[str], typer.Option("--correct-call", help='The right call(s) as JSON: {"name": ..., "arguments": {...}} or a list.')] = None,
    correct_answer: Annotated[Optional[str], typer.Option("--correct-answer", help="The right plain-text answer (no tool should have been called).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Rates a logged turn and optionally corrects it; the correction is validated against the tool's schema.

    Example: mmagent feedback 3f2a9c --rating down --correct-call '{"name": "read_text", "arguments": {"image": "image_1"}}'
    """
    from mmagent.agent.log import InteractionLog
    from mmagent.feedback import FeedbackError, FeedbackStore, parse_correct_call, record_feedback
    from mmagent.tools.registry import default_registry

    if correct_call is not None and correct_answer is not None:
        fail("give --correct-call or --correct-answer, not both")
    log = InteractionLog()
    try:
        calls = parse_correct_call(correct_call) if correct_call is not None else None
        fb = record_feedback(FeedbackStore(log.path), log, default_registry(), turn_id, rating.value, calls, correct_answer, source="cli")
    except FeedbackError as err:
        fail(str(err))
    if json_out:
        print_json(fb)
    else:
        what = "correction" if fb.corrected else "rating"
        console.print(f"[green]ok[/] {what} stored for turn {turn_id} (feedback #{fb.id}); `mmagent learn` uses it in the next round")


def learn(
    method: Annotated[Method, typer.Option("--method", help="replay (the replay buffer alone), ewc (a Fisher-weighted pull to the serving adapter), olora (a LoRA orthogonal to the earlier ones) or preference (DPO on corrections, KTO on thumbs up/down, the serving adapter as reference: learns from every rating); all mix in the replay buffer.")] = Method.replay,
    replay_ratio: Annotated[float, typer.Option("--replay-ratio", help="Base-data conversations per feedback conversation.")] = 2.0,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Training steps of the round (default 40).")] = None,
    min_gain: Annotated[float, typer.Option("--min-gain", help="Least gain on held-out feedback items to promote, in points.")] = 5.0,
    max_drop: Annotated[float, typer.Option("--max-drop", help="Most the regression suite may fall, in points.")] = 1.0,
    regression_suite: Annotated[Optional[list[Path]], typer.Option("--regression-suite", help="Frozen eval suite(s), repeatable (default: the generator's held-out splits in recipes/suites: unseen-phrasings, unseen-combinations, open-world-heldout-families, 350 items).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Processes for the gate's evaluations and threads for training (default: every usable core; 1: one).")] = None,
    model: Annotated[str, typer.Option("--model", help="The composed MM-LLM whose turns to learn from (catalog name or folder); each has its own adapter versions.")] = "mmagent-default",
    slot: Annotated[Optional[str], typer.Option("--slot", help="The adapter to learn for: 'own' (the model's own; the built-ins' for the default) or a routed one ('open-world': the user's tools). Default: the first, in that order, with enough new feedback on turns it served.")] = None,
    review: Annotated[bool, typer.Option("--review", help="Only list the feedback earlier rounds held for review (trains nothing).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the round report as JSON.")] = False,
) -> None:
    """Learns a new adapter version from new feedback; promotes it only if it passes the gate.

    Trains warm from the serving version (with a replay buffer of the base data), evaluates it on the
    frozen regression suites (overall and per tool) and on held-out feedback items, and promotes it
    atomically only if the regression drop <= --max-drop, no tool lost more than 10 points and the
    learning gain >= --min-gain. A batch that contradicts what the serving model reliably does is
    held for review, not trained on. A killed run resumes.

    Example: mmagent learn --method preference --json
    """
    from mmagent.continual.defaults import default_config, default_env, routed_slots
    from mmagent.continual.learn import NoNewData, learn as run_round
    from mmagent.errors import UserError
    from mmagent.recipes.data import generate  # the base instruction data the replay buffer regenerates
    from mmagent.recipes.open_world_mix import replay_examples

    if review:
        return _review(json_out)
    try:
        slots = [None if slot == "own" else slot] if slot is not None else [None, *routed_slots(model)]
        config = default_config(method.value, replay_ratio, steps, model, min_learning_gain=min_gain, max_regression_drop=max_drop)
        if workers is not None:
            config.eval_workers = workers
            config.update.recipe["threads"] = workers
        total = config.update.recipe_config(Path(".")).steps
        for i, s in enumerate(slots):
            # a routed slot replays its own base data (open-world and built-in examples), the own slot the built-ins'
            env = default_env(regression_suite=regression_suite or None, model=model, slot=s, base_data=replay_examples if s else generate)
            try:
                with progress(f"learn{f' ({s})' if s else ''}: training", total, enabled=not json_out) as update:
                    env.on_step = lambda step: update(step, "then eval + gate" if step == total else "")
                    report = run_round(env, config)
                break
            except NoNewData:
                if i == len(slots) - 1:
                    raise
    except (NoNewData, FileNotFoundError, UserError) as err:
        fail(str(err))
    except OSError as err:
        if err.errno == errno.ENOSPC:
            fail(str(err.strerror), EXIT_FAILED)
        raise
    if json_out:
        print_json(report)
        return
    where = f"[{report.slot} adapter] " if report.slot else ""
    console.print(where + ("[green]promoted[/] " if report.promoted else "[yellow]not promoted[/] ") + report.message, highlight=False)
    console.print(f"data: {report.counts}; conflicts: {len(report.conflicts)}; held for review: {len(report.held_for_review)}")
    t = report.times
    console.print(f"time: data {t.data_s:.1f} s, serving check {t.check_s:.1f} s, train {t.train_s:.1f} s, eval {t.eval_s:.1f} s, "
                  f"promote {t.promote_s:.2f} s")
    c = report.continual
    if c and c.rounds:
        console.print(f"across {c.rounds} promoted round(s): MFT {c.mft}, MFN {c.mfn}, BWT {c.bwt}")


SlotOption = Annotated[Optional[str], typer.Option("--slot", help="Which adapter's versions: 'own' (default) or a routed one of the default model ('open-world').")]


def _registry(slot: str | None):
    """The versions of one adapter slot of the default model (`mmagent/continual/adapter_slots.py`)."""
    from mmagent.continual.defaults import slot_registry
    from mmagent.errors import UserError

    try:
        return slot_registry(None if slot == "own" else slot)
    except UserError as err:
        fail(str(err))


def _review(json_out: bool) -> None:
    """Feedback that the dataset builder's guards held back (ties, outliers, over the per-session
    limit): a person decides, then re-rates or corrects the turn with `mmagent feedback`."""
    from mmagent.continual.defaults import routed_slots
    from mmagent.continual.learn import history

    held = [{"round": h["round"], **({"slot": s} if s else {}), **d} for s in (None, *routed_slots())
            for h in history(_registry(s)) for d in h.get("held_for_review", [])]
    if json_out:
        print_json({"held_for_review": held})
        return
    if not held:
        console.print("nothing held for review")
        return
    from rich.table import Table

    table = Table("round", "feedback", "turn", "reason")
    for d in held:
        table.add_row(str(d["round"]), str(d["feedback_id"]), d["turn_id"], d.get("reason") or "")
    console.print(table)
    console.print("re-rate or correct a turn with `mmagent feedback TURN_ID ...`; the next `mmagent learn` takes the newest feedback")


@adapters_app.command("list")
def list_adapters(json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False, slot: SlotOption = None) -> None:
    """Shows every adapter version: parent, method, data hash, gate scores, and which one serves.

    Example: mmagent adapters list --slot open-world --json
    """
    reg = _registry(slot)
    read = reg.read_pointer()  # a corrupt pointer is reported, never a crash
    serving = read.pointer
    rows = [{**r.model_dump(), "serving": bool(serving and serving.version == r.version)} for r in reg.list()]
    if json_out:
        print_json({"serving": serving.version if serving else None, "pointer_problem": read.problem, "versions": rows})
        return
    _warn_pointer(read.problem)
    if not rows:
        console.print("no adapter versions yet: give feedback (`mmagent feedback`) and run `mmagent learn`")
        return
    from rich.table import Table

    table = Table("version", "parent", "method", "examples", "data hash", "regression", "held-out", "serving")
    for r in rows:
        g = r["metrics"].get("gate") or {}
        score = lambda a, b: f"{g[a]:.1f} -> {g[b]:.1f}" if a in g else "-"  # noqa: E731
        table.add_row(r["version"], r["parent"] or "-", r["method"], str(r["n_examples"]), (r["data_hash"] or "-")[:12],
                      score("regression_before", "regression_after"), score("learning_before", "learning_after"), "[green]yes[/]" if r["serving"] else "")
    console.print(table)


@adapters_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="A version from `mmagent adapters list` (e.g. v0003).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    slot: SlotOption = None,
) -> None:
    """Makes VERSION serve new sessions (atomic; sessions already running keep theirs).

    Example: mmagent adapters promote v0002
    """
    from mmagent.continual.registry import RegistryError

    reg = _registry(slot)
    _warn_pointer(reg.read_pointer().problem)
    try:
        ptr = reg.promote(version)
    except RegistryError as err:
        fail(str(err))
    if json_out:
        print_json(ptr)
    else:
        console.print(f"[green]ok[/] {ptr.version} serves new sessions (rollback returns to {ptr.previous[0] if ptr.previous else 'the base'})")


@adapters_app.command("rollback")
def rollback(json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False, slot: SlotOption = None) -> None:
    """Serves the previously promoted version again (or the base model when there is none).

    Example: mmagent adapters rollback --slot open-world
    """
    from mmagent.continual.registry import RegistryError

    reg = _registry(slot)
    _warn_pointer(reg.read_pointer().problem)
    try:
        ptr = reg.rollback()
    except RegistryError as err:
        fail(str(err))
    if json_out:
        print_json({"serving": ptr.version if ptr else None})
    else:
        console.print(f"[green]ok[/] now serving {ptr.version if ptr else 'the base model (no adapter version)'}")


def _warn_pointer(problem: str | None) -> None:
    if problem:
        from rich.markup import escape

        err_console.print(f"[yellow]warning:[/] {escape(problem)}", highlight=False, soft_wrap=True)
