"""One learning round: feedback -> dataset -> candidate adapter -> gate -> promote or keep.

    unused feedback on turns served by this model + logged turns
      --build_dataset--> train / held-out examples (guards reported)
      --serving version scored on the regression set (cached) --poisoning check--> held for review, or
      --train (update.py: warm start + replay, or O-LoRA, or EWC, or DPO/KTO)--> candidate adapter folder
      --registry.add--> version vN (not serving)
      --gate: regression set (overall + per tool) + held-out feedback, serving vs candidate--> promote or keep

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mmagent.continual.adapter_slots import slot_of
from mmagent.continual.dataset import Build, DatasetConfig, Example, build_dataset
from mmagent.continual.gate import GateConfig, GateReport, decide_results, poisoning_check
from mmagent.continual.metrics import ContinualReport, RoundScores, continual_metrics
from mmagent.continual.registry import AdapterRegistry, Serving, atomic_write
from mmagent.continual.suites import ItemResult, ScoreCache, SuitePool, percent, run_suite, run_suites, suite_prompts, suite_tag
from mmagent.continual.update import TrainJob, UpdateConfig
from mmagent.errors import UserError
from mmagent.feedback import FeedbackStore, LoggedTurn, TurnLookup
from mmagent.protocol.chat import ChatModel

log = logging.getLogger(__name__)


class NoNewData(ValueError, UserError):
    """Nothing to learn from: the user should give feedback first."""


class LearnConfig(BaseModel):
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    update: UpdateConfig = Field(default_factory=UpdateConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    regression_limit: int | None = Field(default=None, description="Evaluate only the first N items of each frozen suite (speed).")
    regression_rounds: bool = Field(default=True, description="The promoted rounds' held-out items join the regression set (custom tools).")
    poisoning_check: bool = Field(default=True, description="Hold a batch that contradicts what the serving model reliably does.")
    eval_workers: int | None = Field(default=None, ge=1, description="Processes the gate's evaluations run on (None: one per "
                                     "usable core; 1: the round's own process). Only where the environment has an `eval_pool`.")


@dataclass
class LearnEnv:
    """Everything a round touches; `mmagent learn` builds the default one, tests build tiny ones."""

    feedback: FeedbackStore
    turns: TurnLookup
    tools: Any  # ToolRegistry: validates corrections, gives the eval its schemas
    registry: AdapterRegistry
    train: Callable[[TrainJob], Path]  # -> candidate adapter folder (update.train_candidate)
    chat_model: Callable[[Path | None], ChatModel]  # a model serving that adapter (None = base)
    regression_suite: Path | Sequence[Path]  # frozen eval suite(s) (recipes/eval.py format) of this model's tools
    media: Callable[[LoggedTurn, str], bytes] | None = None  # (turn, artifact id) -> file bytes, for held-out media
    load_backbone: Callable[[Any], Any] | None = None  # recipe cfg -> training Backbone; None: update.default_backbone
    on_step: Callable[[int], None] | None = None  # training progress
    model: str | None = None  # the model the round learns for: feedback on turns another model served waits for its round
    # The base instruction data's generator, (split, n, seed) -> examples, replayed when update.replay_data
    # is None: the entry layer passes the data recipe's (`mmagent.recipes.data.generate`); continual never imports it.
    base_data: Callable[..., Any] | None = None
    # The adapter slot the round learns for (`adapter_slots`): None, the model's own adapter; a routed slot
    # (`open-world`) learns from the turns it served and warm-starts from the folder's adapter of that name.
    slot: str | None = None
    routed: list[str] = field(default_factory=list)  # the model's routed slots: which one served a turn
    # (adapter folder | None, workers) -> a `SuitePool` scoring that version in worker processes (`eval_workers`);
    # None: every evaluation runs in this process with `chat_model`.
    eval_pool: Callable[[Path | None, int], SuitePool] | None = None

    @property
    def suites(self) -> list[Path]:
        return [Path(self.regression_suite)] if isinstance(self.regression_suite, (str, Path)) else [Path(p) for p in self.regression_suite]


class StageTimes(BaseModel):
    """Wall seconds per stage, and this process's CPU seconds (less sensitive to a busy machine)."""

    data_s: float = 0.0
    check_s: float = 0.0  # the serving version on the regression set (cached across rounds) + the poisoning check
    train_s: float = 0.0
    eval_s: float = 0.0
    promote_s: float = 0.0
    cpu: dict[str, float] = Field(default_factory=dict)

    def mark(self, stage: str, wall0: float, cpu0: float) -> tuple[float, float]:
        setattr(self, f"{stage}_s", time.perf_counter() - wall0)
        self.cpu[stage] = time.process_time() - cpu0
        log.info("round part %s: %.1f s wall, %.1f s CPU", stage, getattr(self, f"{stage}_s"), self.cpu[stage])
        return time.perf_counter(), time.process_time()


class RoundReport(BaseModel):
    round: str
    slot: str | None = None  # the adapter slot learnt for (`adapter_slots`; None: the model's own adapter)
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
    if cfg.update.method == "preference":  # thumbs-down and the model's own mistakes become training data
        cfg = cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"preference": True})})
    build = _build(env, cfg)
    serving = env.registry.serving()
    round_id = f"r{len(_history(env.registry)) + 1:04d}"
    # Same data + same settings -> same folder -> a killed round resumes; other settings start afresh.
    key = hashlib.sha256((build.data_hash + cfg.update.model_dump_json() + str(serving)).encode()).hexdigest()[:16]
    work = env.registry.root / "work" / key
    folder = env.registry.root / "rounds" / round_id
    heldout_suite = _write_suite(env, build.heldout, folder)
    _write_examples(build.train, folder / "train.jsonl")
    t0, c0 = times.mark("data", t0, c0)
    ev = _Evals(env, cfg)
    before = ev.results(serving, [*ev.regression(), (heldout_suite, None)])
    poison = _poisoning(env, cfg, ev, serving, build, before, folder) if cfg.poisoning_check else None
    t0, c0 = times.mark("check", t0, c0)
    parent = serving.version if serving else None
    if poison is not None and poison.flagged:
        gate, rec = _held_gate(ev, before, heldout_suite, poison), None
    else:
        rec = _unjudged(env.registry, parent, build.data_hash, cfg.update.method)  # a round killed during its gate
        if rec is None:
            job = TrainJob(serving=serving.path if serving else None, examples=build.train, earlier=_earlier_examples(env.registry),
                           tools=env.tools.schemas(), cfg=cfg.update, work_dir=work, data_hash=build.data_hash,
                           media=_image_loader(env), load_backbone=env.load_backbone, on_step=env.on_step,
                           base_data=env.base_data, start_adapter=env.slot)
            adapter = env.train(job)
            rec = env.registry.add(adapter, parent=parent, method=cfg.update.method, data_hash=build.data_hash,
                                   n_examples=len(build.train), note=_note(env))
        t0, c0 = times.mark("train", t0, c0)
        after = ev.results(rec.version, [*ev.regression(), (heldout_suite, None)])
        gate = _decide(cfg, ev, before, after, heldout_suite).model_copy(update={"poisoning": poison})
        t0, c0 = times.mark("eval", t0, c0)
    earlier = _earlier_scores(env.registry, after) if rec is not None else {}
    if gate.promote:
        env.registry.promote(rec.version)
    if rec is not None:
        env.registry.update_metrics(rec.version, {"gate": gate.model_dump(), "earlier_tasks": earlier, "round": round_id})
    env.feedback.mark_used(round_id, _roles(build, gate.promote, poison is not None and poison.flagged))
    shutil.rmtree(work, ignore_errors=True)  # the checkpoint is only needed to resume this round
    report = _report(env, cfg, build, round_id, serving, rec, gate, earlier, times)
    times.mark("promote", t0, c0)
    report.times = times
    _append_history(env.registry, report)
    return report


def _report(env: LearnEnv, cfg: LearnConfig, build: Build, round_id: str, serving: Serving | None, rec: Any,
            gate: GateReport, earlier: dict[str, float], times: StageTimes) -> RoundReport:
    keeper = serving.version if serving else f"the model's own {env.slot} adapter" if env.slot else "the base model"
    if rec is None:
        message = f"kept {keeper} serving; the batch is held for review, nothing trained"
    else:
        message = f"promoted {rec.version}" if gate.promote else f"kept {keeper} serving; candidate {rec.version} rejected"
    held = [d.model_dump() for d in build.decisions if d.action == "held_for_review"]
    if gate.poisoning is not None and gate.poisoning.flagged:
        held += [{"feedback_id": d.feedback_id, "turn_id": d.turn_id, "action": "held_for_review", "reason": gate.poisoning.reason}
                 for d in build.decisions if d.action in ("train", "heldout")]
    report = RoundReport(
        round=round_id, slot=env.slot, parent=serving.version if serving else None, candidate=rec.version if rec else None, promoted=gate.promote,
        method=cfg.update.method, data_hash=build.data_hash, counts=build.counts(), conflicts=[c.model_dump() for c in build.conflicts],
        held_for_review=held, gate=gate, earlier_tasks=earlier, times=times,
        message=f"{message} [{gate.verdict}]: " + "; ".join(gate.reasons))
    history = _history(env.registry) + [report.model_dump(mode="json")]
    report.continual = continual_metrics(_round_scores(history))
    return report


# -- stages ----------------------------------------------------------------------------------


def _build(env: LearnEnv, cfg: LearnConfig) -> Build:
    fresh = env.feedback.unused()
    if not fresh:
        used = len(env.feedback.used_ids())
        raise NoNewData(f"no new feedback to learn from ({used} item(s) already used by earlier rounds); "
                        "rate or correct turns with `mmagent feedback TURN_ID --rating up|down` first")
    pairs, missing, elsewhere = [], 0, 0
    for fb in fresh:
        turn = env.turns.get_turn(fb.turn_id)
        if turn is None:
            missing += 1
        elif _served_elsewhere(env, turn.id):
            elsewhere += 1  # not marked used: a round for the model that served it learns from it
        else:
            pairs.append((turn, fb))
    build = build_dataset(pairs, env.tools, cfg.dataset)
    if not build.train or not build.heldout:
        c = build.counts()
        other = f", {elsewhere} on turns another model or adapter slot served" if elsewhere else ""
        raise NoNewData(
            f"not enough usable feedback for a round: {len(build.train)} to train on and {len(build.heldout)} held out "
            f"(need >= 1 of each; decisions: {c}{f', {missing} turn(s) missing from the log' if missing else ''}{other}). "
            "Thumbs-down without a correction teach nothing to replay/ewc/olora; add corrections with "
            "--correct-call/--correct-answer, or learn from thumbs with --method preference"
        )
    return build


def _served_elsewhere(env: LearnEnv, turn_id: str) -> str | None:
    """The model (or the model's adapter slot) that served a turn when it is not the one this round learns
    for (None: ours, or unknown)."""
    full = env.turns.turn(turn_id) if hasattr(env.turns, "turn") else None  # the interaction log keeps model and adapter per turn
    served = getattr(full, "model", None)
    if env.model is not None and served and served != env.model:
        return served
    if env.routed and full is not None and (slot := slot_of(full.adapter, env.routed)) != env.slot:
        return f"{served or env.model} ({slot or 'its own'} adapter)"
    return None


def _note(env: LearnEnv) -> str:
    return "; ".join(f"{k}: {v}" for k, v in (("model", env.model), ("slot", env.slot)) if v)


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


def _write_suite(env: LearnEnv, examples: list[Example], folder: Path, name: str = "heldout.jsonl") -> Path:
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
        keep = {k: item[k] for k in ("kind", "avoid") if k in item}
        lines.append(json.dumps({"id": item["id"], "prompt": item["prompt"], "images": images, "expected": item["expected"], **keep}))
    suite = folder / name
    atomic_write(suite, "\n".join(lines) + "\n")
    return suite


def suite_score(model: ChatModel, suite: Path, tools: list[dict[str, Any]], limit: int | None = None,
                max_new_tokens: int = 96) -> float:
    """Strict success in percent (recipes/eval.py's definition and runner) of `model` on a suite."""
    return percent(run_suite(model, suite, tools, None, limit, max_new_tokens))


class _Evals:
    """The round's evaluations: which suites, which model, and the per-version result cache."""

    def __init__(self, env: LearnEnv, cfg: LearnConfig):
        self.env, self.cfg = env, cfg
        self.tools = env.tools.schemas()
        self.known = set(env.tools.names())
        self.cache = ScoreCache(env.registry.root)

    def regression(self) -> list[tuple[Path, int | None]]:
        """The frozen suites of this model's tools, then every promoted round's held-out items."""
        rounds = [self.env.registry.root / "rounds" / h["round"] / "heldout.jsonl" for h in _history(self.env.registry) if h.get("promoted")]
        return [(p, self.cfg.regression_limit) for p in self.env.suites] + [(p, None) for p in rounds if p.is_file()]

    def results(self, version: Serving | str | None, suites: list[tuple[Path, int | None]]) -> list[ItemResult]:
        name = version.version if isinstance(version, Serving) else version
        path = version.path if isinstance(version, Serving) else (self.env.registry.adapter_path(version) if version else None)
        tag = name or f"base-{self.env.model or 'model'}"
        return run_suites(lambda: self.env.chat_model(path), tag, suites, self.tools, self.known, self.cache, self._pool(path))

    def _pool(self, adapter: Path | None) -> SuitePool | None:
        from mmagent.model.cpu import usable_cores

        workers = self.cfg.eval_workers or usable_cores()
        return self.env.eval_pool(adapter, workers) if workers > 1 and self.env.eval_pool is not None else None

    def model(self, serving: Serving | None) -> ChatModel:
        return self.env.chat_model(serving.path if serving else None)


def _split(results: list[ItemResult], ev: _Evals, heldout: Path) -> tuple[list[ItemResult], list[ItemResult], list[ItemResult]]:
    """(frozen suites, promoted rounds' held-out, this round's held-out) results."""
    frozen = {suite_tag(p) for p in ev.env.suites}
    mine = suite_tag(heldout)
    tag = lambda r: r.id.rsplit("/", 1)[0]  # noqa: E731
    return ([r for r in results if tag(r) in frozen], [r for r in results if tag(r) not in frozen and tag(r) != mine],
            [r for r in results if tag(r) == mine])


def _decide(cfg: LearnConfig, ev: _Evals, before: list[ItemResult], after: list[ItemResult], heldout: Path) -> GateReport:
    fb, rb, lb = _split(before, ev, heldout)
    fa, ra, la = _split(after, ev, heldout)
    reg_b, reg_a = (fb + rb, fa + ra) if cfg.regression_rounds else (fb, fa)
    return decide_results(reg_b, reg_a, percent(lb), percent(la), cfg.gate).model_copy(update={"n_learning": len(la)})


def _held_gate(ev: _Evals, before: list[ItemResult], heldout: Path, poison: Any) -> GateReport:
    """The verdict of a batch the poisoning check held: nothing trained, the serving scores as they are."""
    frozen, rounds, mine = _split(before, ev, heldout)
    reg, learn_ = percent(frozen + rounds), percent(mine)
    return GateReport(promote=False, reasons=[poison.reason], failed=["poisoning"], poisoning=poison, regression_before=reg,
                      regression_after=reg, learning_before=learn_, learning_after=learn_, n_regression=len(frozen + rounds),
                      n_learning=len(mine))


def _poisoning(env: LearnEnv, cfg: LearnConfig, ev: _Evals, serving: Serving | None, build: Build,
               before: list[ItemResult], folder: Path) -> Any:
    """The gate's poisoning check on this batch, against the serving version's regression results."""
    suites = [p for p, _ in ev.regression()]
    prompts = suite_prompts(suites)
    regression = [(prompts[r.id], r) for r in before if r.id in prompts]

    def serving_calls(examples: list[Example]) -> list[list[str]]:
        probe = _write_suite(env, examples, folder / "probe", name="probe.jsonl")
        by_id = {r.id.rsplit("/", 1)[1]: r.called for r in run_suite(ev.model(serving), probe, ev.tools)}
        return [by_id.get(f"fb{ex.feedback_id}", []) for ex in examples]

    return poisoning_check(build.train + build.heldout, regression, serving_calls, cfg.gate)


def _earlier_scores(reg: AdapterRegistry, after: list[ItemResult]) -> dict[str, float]:
    """The candidate on each promoted round's held-out items: the R[i][j] for BWT / MFN."""
    out = {}
    for past in _history(reg):
        if past.get("promoted"):
            mine = [r for r in after if r.id.startswith(f"{past['round']}/heldout/")]
            if mine:
                out[past["round"]] = percent(mine)
    return out


def _unjudged(reg: AdapterRegistry, parent: str | None, data_hash: str, method: str):
    """A version trained from the same data, parent and method that never got a gate verdict."""
    for rec in reg.list():
        if rec.parent == parent and rec.data_hash == data_hash and rec.method == method and "gate" not in rec.metrics:
            return rec
    return None


def _roles(build: Build, promoted: bool, held: bool = False) -> dict[int, str]:
    roles = {}
    for d in build.decisions:
        if d.feedback_id is not None:
            used = d.action in ("train", "heldout")
            roles[d.feedback_id] = ("held_for_review-poisoning" if held and used else
                                    d.action if promoted or not used else f"{d.action}-rejected")
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
