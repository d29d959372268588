"""One learning round: feedback -> dataset -> candidate adapter -> gate -> promote or keep.

    unused feedback + logged turns --build_dataset--> train / held-out examples (guards reported)
      --train (update.py: warm start + replay, or O-LoRA, or EWC)--> candidate adapter folder
      --registry.add--> version vN (not serving)
      --gate: regression suite + held-out feedback, serving vs candidate--> promote or keep

Nothing the round does touches the serving version until the final `promote`, one os.replace.
A round killed anywhere leaves the old version serving and the feedback unmarked; the next
`learn` rebuilds the same data (same hash), finds the same work folder and resumes training from
its last checkpoint. Feedback is marked as used only once the round has a verdict.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mmagent.chat import ChatModel
from mmagent.continual.dataset import Build, DatasetConfig, Example, build_dataset
from mmagent.continual.gate import GateConfig, GateReport, decide
from mmagent.continual.metrics import ContinualReport, RoundScores, continual_metrics
from mmagent.continual.registry import AdapterRegistry, Serving, atomic_write
from mmagent.continual.update import TrainJob, UpdateConfig
from mmagent.errors import UserError
from mmagent.feedback import FeedbackStore, LoggedTurn, TurnLookup

log = logging.getLogger(__name__)


class NoNewData(ValueError, UserError):
    """Nothing to learn from: the user should give feedback first."""


class LearnConfig(BaseModel):
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    update: UpdateConfig = Field(default_factory=UpdateConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    regression_limit: int | None = Field(default=None, description="Evaluate only the first N regression items (speed).")


@dataclass
class LearnEnv:
    """Everything a round touches; `mmagent learn` builds the default one, tests build tiny ones."""

    feedback: FeedbackStore
    turns: TurnLookup
    tools: Any  # ToolRegistry: validates corrections, gives the eval its schemas
    registry: AdapterRegistry
    train: Callable[[TrainJob], Path]  # -> candidate adapter folder (update.train_candidate)
    chat_model: Callable[[Path | None], ChatModel]  # a model serving that adapter (None = base)
    regression_suite: Path  # frozen eval suite (recipes/eval.py format)
    media: Callable[[LoggedTurn, str], bytes] | None = None  # (turn, artifact id) -> file bytes, for held-out media
    load_backbone: Callable[[Any], Any] | None = None  # recipe cfg -> recipes Backbone; None: update.default_backbone
    on_step: Callable[[int], None] | None = None  # training progress


class StageTimes(BaseModel):
    """Wall seconds per stage, and this process's CPU seconds (less sensitive to a busy machine)."""

    data_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    promote_s: float = 0.0
    cpu: dict[str, float] = Field(default_factory=dict)

    def mark(self, stage: str, wall0: float, cpu0: float) -> tuple[float, float]:
        setattr(self, f"{stage}_s", time.perf_counter() - wall0)
        self.cpu[stage] = time.process_time() - cpu0
        return time.perf_counter(), time.process_time()


class RoundReport(BaseModel):
    round: str
    parent: str | None
    candidate: str | None
    promoted: bool
    method: str
    data_hash: str
    counts: dict[str, int]
    conflicts: list[dict[str, Any]]
    held_for_review: list[dict[str, Any]]
    gate: GateReport | None
    earlier_tasks: dict[str, float] = Field(default_factory=dict)  # candidate score on earlier rounds' held-out
    continual: ContinualReport | None = None
    times: StageTimes = Field(default_factory=StageTimes)
    message: str = ""


def learn(env: LearnEnv, cfg: LearnConfig | None = None) -> RoundReport:
    """Runs one round; raises NoNewData when there is nothing new, OSError(ENOSPC) rewritten clearly."""
    cfg = cfg or LearnConfig()
    try:
        return _learn(env, cfg)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            serving = env.registry.serving()
            raise OSError(errno.ENOSPC, f"disk full under {env.registry.root} during learning; free space and run "
                          f"`mmagent learn` again (it resumes). Serving adapter {serving.version if serving else 'base'} "
                          "is untouched and no feedback was marked as learnt") from err
        raise


def _learn(env: LearnEnv, cfg: LearnConfig) -> RoundReport:
    times = StageTimes()
    t0, c0 = time.perf_counter(), time.process_time()
    env.registry.clean_partials()
    build = _build(env, cfg)
    serving = env.registry.serving()
    round_id = f"r{len(_history(env.registry)) + 1:04d}"
    # Same data + same settings -> same folder -> a killed round resumes; other settings start afresh.
    key = hashlib.sha256((build.data_hash + cfg.update.model_dump_json() + str(serving)).encode()).hexdigest()[:16]
    work = env.registry.root / "work" / key
    heldout_suite = _write_suite(env, build.heldout, env.registry.root / "rounds" / round_id)
    _write_examples(build.train, env.registry.root / "rounds" / round_id / "train.jsonl")
    t0, c0 = times.mark("data", t0, c0)
    parent = serving.version if serving else None
    rec = _unjudged(env.registry, parent, build.data_hash, cfg.update.method)  # a round killed during its gate
    if rec is None:
        job = TrainJob(serving=serving.path if serving else None, examples=build.train, earlier=_earlier_examples(env.registry),
                       tools=env.tools.schemas(),
                       cfg=cfg.update, work_dir=work, data_hash=build.data_hash, media=_image_loader(env),
                       load_backbone=env.load_backbone, on_step=env.on_step)
        adapter = env.train(job)
        rec = env.registry.add(adapter, parent=parent, method=cfg.update.method, data_hash=build.data_hash, n_examples=len(build.train))
    t0, c0 = times.mark("train", t0, c0)
    gate, earlier = _gate(env, cfg, serving, rec.version, heldout_suite)
    t0, c0 = times.mark("eval", t0, c0)
    if gate.promote:
        env.registry.promote(rec.version)
    env.registry.update_metrics(rec.version, {"gate": gate.model_dump(), "earlier_tasks": earlier, "round": round_id})
    env.feedback.mark_used(round_id, _roles(build, gate.promote))
    shutil.rmtree(work, ignore_errors=True)  # the checkpoint is only needed to resume this round
    history = _history(env.registry)
    report = RoundReport(
        round=round_id, parent=serving.version if serving else None, candidate=rec.version, promoted=gate.promote,
        method=cfg.update.method, data_hash=build.data_hash, counts=build.counts(),
        conflicts=[c.model_dump() for c in build.conflicts],
        held_for_review=[d.model_dump() for d in build.decisions if d.action == "held_for_review"],
        gate=gate, earlier_tasks=earlier, times=times,
        message=(f"promoted {rec.version}" if gate.promote else f"kept {serving.version if serving else 'the base model'} serving; "
                 f"candidate {rec.version} rejected") + ": " + "; ".join(gate.reasons),
    )
    history.append(report.model_dump(mode="json"))
    report.continual = continual_metrics(_round_scores(history))
    times.mark("promote", t0, c0)
    report.times = times
    _append_history(env.registry, report)
    return report


# -- stages ----------------------------------------------------------------------------------


def _build(env: LearnEnv, cfg: LearnConfig) -> Build:
    fresh = env.feedback.unused()
    if not fresh:
        used = len(env.feedback.used_ids())
        raise NoNewData(f"no new feedback to learn from ({used} item(s) already used by earlier rounds); "
                        "rate or correct turns with `mmagent feedback TURN_ID --rating up|down` first")
    pairs, missing = [], 0
    for fb in fresh:
        turn = env.turns.get_turn(fb.turn_id)
        if turn is None:
            missing += 1
            continue
        pairs.append((turn, fb))
    build = build_dataset(pairs, env.tools, cfg.dataset)
    if not build.train or not build.heldout:
        c = build.counts()
        raise NoNewData(
            f"not enough usable feedback for a round: {len(build.train)} to train on and {len(build.heldout)} held out "
            f"(need >= 1 of each; decisions: {c}{f', {missing} turn(s) missing from the log' if missing else ''}). "
            "Thumbs-down without a correction teach nothing; add corrections with --correct-call/--correct-answer"
        )
    return build


def _write_examples(examples: list[Example], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "".join(ex.model_dump_json() + "\n" for ex in examples))


def _earlier_examples(reg: AdapterRegistry) -> list[Example]:
    """Training examples of the promoted rounds so far (what the serving version was taught)."""
    out = []
    for past in _history(reg):
        f = reg.root / "rounds" / past["round"] / "train.jsonl"
        if past.get("promoted") and f.is_file():
            out += [Example.model_validate_json(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def _image_loader(env: LearnEnv) -> Callable[[Example, str], Any] | None:
    if env.media is None:
        return None

    def load(ex: Example, aid: str):
        from io import BytesIO

        from PIL import Image

        return Image.open(BytesIO(env.media(env.turns.get_turn(ex.turn_id), aid))).convert("RGB")

    return load


def _write_suite(env: LearnEnv, examples: list[Example], folder: Path) -> Path:
    """Held-out examples as an eval suite (+ copied media) so later rounds can score them again."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for ex in examples:
        item = ex.eval_item()
        images = []
        for aid in ex.images:
            if env.media is None:
                raise ValueError(f"held-out item {item['id']} has media but no media resolver was given")
            rel = f"media/{item['id']}-{aid}"
            (folder / "media").mkdir(exist_ok=True)
            (folder / rel).write_bytes(env.media(env.turns.get_turn(ex.turn_id), aid))
            images.append(rel)
        lines.append(json.dumps({"id": item["id"], "prompt": item["prompt"], "images": images, "expected": item["expected"]}))
    suite = folder / "heldout.jsonl"
    atomic_write(suite, "\n".join(lines) + "\n")
    return suite


def suite_score(model: ChatModel, suite: Path, tools: list[dict[str, Any]], limit: int | None = None,
                max_new_tokens: int = 96) -> float:
    """Strict success in percent (recipes/eval.py's definition and runner) of `model` on a suite.

    96 new tokens per step is room for a call or a short answer; a gate need not wait for a model
    that rambles (the recipes' own default is 160)."""
    from mmagent.recipes.eval import load_suite, run_item, score_item, summarize

    items = load_suite(suite)[:limit]
    preds = [run_item(model, it, tools, Path(suite).parent, max_new_tokens=max_new_tokens) for it in items]
    return 100.0 * summarize([score_item(it, p, tools) for it, p in zip(items, preds)]).strict_success


def _gate(env: LearnEnv, cfg: LearnConfig, serving: Serving | None, candidate: str, heldout: Path) -> tuple[GateReport, dict[str, float]]:
    tools = env.tools.schemas()
    lim = cfg.regression_limit
    base = env.chat_model(serving.path if serving else None)
    reg_b, learn_b = suite_score(base, env.regression_suite, tools, lim), suite_score(base, heldout, tools)
    del base
    cand = env.chat_model(env.registry.adapter_path(candidate))
    reg_a, learn_a = suite_score(cand, env.regression_suite, tools, lim), suite_score(cand, heldout, tools)
    earlier = {}
    for past in _history(env.registry):  # earlier rounds' held-out items: the R[i][j] for BWT / MFN
        suite = env.registry.root / "rounds" / past["round"] / "heldout.jsonl"
        if past.get("promoted") and suite.is_file():
            earlier[past["round"]] = suite_score(cand, suite, tools)
    gate = decide(reg_b, reg_a, learn_b, learn_a, cfg.gate)
    return gate, earlier


def _unjudged(reg: AdapterRegistry, parent: str | None, data_hash: str, method: str):
    """A version trained from the same data, parent and method that never got a gate verdict."""
    for rec in reg.list():
        if rec.parent == parent and rec.data_hash == data_hash and rec.method == method and "gate" not in rec.metrics:
            return rec
    return None


def _roles(build: Build, promoted: bool) -> dict[int, str]:
    roles = {}
    for d in build.decisions:
        if d.feedback_id is not None:
            roles[d.feedback_id] = d.action if promoted or d.action not in ("train", "heldout") else f"{d.action}-rejected"
    return roles


# -- history ---------------------------------------------------------------------------------


def _history_file(reg: AdapterRegistry) -> Path:
    return reg.root / "rounds.jsonl"


def _history(reg: AdapterRegistry) -> list[dict[str, Any]]:
    f = _history_file(reg)
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.is_file() else []


def _append_history(reg: AdapterRegistry, report: RoundReport) -> None:
    lines = [json.dumps(h) for h in _history(reg)] + [report.model_dump_json()]
    atomic_write(_history_file(reg), "\n".join(lines) + "\n")


def _round_scores(history: list[dict[str, Any]]) -> list[RoundScores]:
    """Promoted rounds as R-matrix rows: own held-out score after training + earlier tasks' scores."""
    rows = []
    for h in history:
        if not h.get("promoted") or not h.get("gate"):
            continue
        scores = {k: v for k, v in (h.get("earlier_tasks") or {}).items()}
        scores[h["round"]] = h["gate"]["learning_after"]
        rows.append(RoundScores(round=len(rows), task=h["round"], scores=scores))
    return rows


def history(reg: AdapterRegistry) -> list[dict[str, Any]]:
    """Every round so far (promoted or not), oldest first."""
    return _history(reg)
