"""The promotion gate: a candidate adapter serves only if it learnt and did not forget.

Two evaluations, each run on the serving version and on the candidate:
- the regression suite (what already worked; measures forgetting): >= 200 items across every
  tool and the no-tool cases for the embedded default (`suites.py`), so one item is 0.5 point;
- the held-out feedback items (kept out of training; measures learning).

Promote iff
- the regression drop <= `max_regression_drop` points (default 1),
- no tool (nor the no-tool items) lost more than `max_tool_drop` points, counting only a tool that
  lost at least `tool_min_lost` items (one item of a 5-item tool is 20 points: noise, not a trend),
- the learning gain >= `min_learning_gain` points.
Before any training, `poisoning_check` flags a batch whose targets contradict what the serving
model reliably does on the regression items of the same tool: such a batch is held for review,
not trained on. The report's `failed` names every condition that failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mmagent.continual.suites import NO_TOOL, ItemResult, by_group, percent

# (adapter folder or None for the base model, eval items) -> strict success in percent
Evaluator = Callable[[Path | None, Sequence[Any]], float]
_WORD = re.compile(r"[a-z0-9]+")


class GateConfig(BaseModel):
    max_regression_drop: float = Field(default=1.0, ge=0, description="Most the regression suite may fall, in points.")
    min_learning_gain: float = Field(default=5.0, description="Least the held-out feedback items must gain, in points.")
    max_tool_drop: float = Field(default=10.0, ge=0, description="Most one tool's regression items (or the no-tool ones) may fall, in points.")
    tool_min_lost: int = Field(default=2, ge=1, description="Items a tool must lose before its floor can fail.")
    min_regression_items: int = Field(default=200, ge=0, description="Below this the verdict says the suite is too coarse.")
    poison_reliable: float = Field(default=90.0, ge=0, le=100, description="Serving success on a tool's regression items that makes it reliable.")
    poison_min_tool_items: int = Field(default=5, ge=1, description="Regression items a tool needs to be judged reliable.")
    poison_sim: float = Field(default=0.3, gt=0, le=1, description="Word-Jaccard of a batch prompt to a regression item of that tool.")
    poison_share: float = Field(default=0.25, ge=0, le=1, description="Share of the batch contradicting a reliable tool that flags it.")
    poison_min_items: int = Field(default=3, ge=1, description="Fewest contradicting targets that flag a batch.")
    poison_probe: int = Field(default=32, ge=1, description="Most batch prompts the serving model is run on.")


class ToolDelta(BaseModel):
    tool: str
    n: int
    before: float
    after: float
    lost: int  # items right before and wrong after
    ok: bool


class PoisonReport(BaseModel):
    flagged: bool
    probed: int
    contradicting: list[dict[str, Any]] = Field(default_factory=list)  # turn, prompt, tool the serving calls, target
    reliable: dict[str, float] = Field(default_factory=dict)  # tool -> serving success on its regression items
    reason: str = ""


class GateReport(BaseModel):
    promote: bool
    reasons: list[str]
    regression_before: float
    regression_after: float
    learning_before: float
    learning_after: float
    n_regression: int = 0
    n_learning: int = 0
    failed: list[str] = Field(default_factory=list)  # "regression", "tool:NAME", "learning", "poisoning"
    tools: list[ToolDelta] = Field(default_factory=list)
    poisoning: PoisonReport | None = None

    @property
    def regression_drop(self) -> float:
        return self.regression_before - self.regression_after

    @property
    def learning_gain(self) -> float:
        return self.learning_after - self.learning_before

    @property
    def verdict(self) -> str:
        return "promote" if self.promote else "reject (" + ", ".join(self.failed) + ")"


def decide(
    regression_before: float, regression_after: float, learning_before: float, learning_after: float, cfg: GateConfig,
    tools: Sequence[ToolDelta] = (),
) -> GateReport:
    """The gate rule on given scores (and per-tool deltas); says why in words either way."""
    drop = regression_before - regression_after
    gain = learning_after - learning_before
    ok_reg = drop <= cfg.max_regression_drop + 1e-9
    ok_learn = gain >= cfg.min_learning_gain - 1e-9
    reasons = [
        f"regression suite {regression_before:.1f} -> {regression_after:.1f} "
        f"({'ok' if ok_reg else 'FAIL'}: drop {drop:.1f} vs allowed {cfg.max_regression_drop:.1f})",
        f"held-out feedback {learning_before:.1f} -> {learning_after:.1f} "
        f"({'ok' if ok_learn else 'FAIL'}: gain {gain:.1f} vs required {cfg.min_learning_gain:.1f})",
    ]
    bad_tools = [t for t in tools if not t.ok]
    if tools:
        reasons.append("per-tool floor " + ("ok" if not bad_tools else "FAIL: " + ", ".join(
            f"{t.tool} {t.before:.0f} -> {t.after:.0f} ({t.lost} of {t.n} items lost)" for t in bad_tools))
            + f" (no tool may lose more than {cfg.max_tool_drop:.0f} points)")
    failed = (["regression"] if not ok_reg else []) + [f"tool:{t.tool}" for t in bad_tools] + (["learning"] if not ok_learn else [])
    return GateReport(promote=not failed, reasons=reasons, failed=failed, tools=list(tools), regression_before=regression_before,
                      regression_after=regression_after, learning_before=learning_before, learning_after=learning_after)


def decide_results(reg_before: Sequence[ItemResult], reg_after: Sequence[ItemResult], learning_before: float,
                   learning_after: float, cfg: GateConfig) -> GateReport:
    """`decide` on per-item regression results: the overall score and every tool's floor."""
    rep = decide(percent(reg_before), percent(reg_after), learning_before, learning_after, cfg, tool_deltas(reg_before, reg_after, cfg))
    if len(reg_after) < cfg.min_regression_items:
        rep.reasons.append(f"note: {len(reg_after)} regression items (one item = {100 / max(1, len(reg_after)):.1f} points; "
                           f"{cfg.min_regression_items}+ keep it well under a point)")
    return rep.model_copy(update={"n_regression": len(reg_after)})


def tool_deltas(before: Sequence[ItemResult], after: Sequence[ItemResult], cfg: GateConfig) -> list[ToolDelta]:
    was = {r.id: r.ok for r in before}
    out = []
    for tool, rs in sorted(by_group(after).items()):
        b = [was.get(r.id, False) for r in rs]
        pb, pa = 100.0 * sum(b) / len(rs), percent(rs)
        lost = sum(ok_b and not r.ok for ok_b, r in zip(b, rs))
        out.append(ToolDelta(tool=tool, n=len(rs), before=pb, after=pa, lost=lost,
                             ok=pb - pa <= cfg.max_tool_drop + 1e-9 or lost < cfg.tool_min_lost))
    return out


def poisoning_check(examples: Sequence[Any], regression: Sequence[tuple[str, ItemResult]],
                    serving_calls: Callable[[list[Any]], list[list[str]]], cfg: GateConfig) -> PoisonReport:
    """Flags a batch whose targets contradict what the serving model reliably does.

    `regression`: (prompt, serving's result) per regression item. A target contradicts tool T when
    (1) the serving model is reliable on T (>= `poison_reliable` on >= `poison_min_tool_items` items),
    (2) the prompt is like T's regression items (word-Jaccard >= `poison_sim` to one of them),
    (3) the serving model calls T on that prompt (`serving_calls(examples)` -> the tools it calls on
        each; run on at most `poison_probe` of those that pass (1) and (2)), and
    (4) the target does not call T (a correction or thumbs-up elsewhere) or is a thumbs-down on a call of T.
    Learning a new tool does not trip it: its prompts are not like any reliable tool's items."""
    groups = by_group([r for _, r in regression])
    reliable = {t: percent(rs) for t, rs in groups.items()
                if t not in (NO_TOOL, "(avoid)") and len(rs) >= cfg.poison_min_tool_items and percent(rs) >= cfg.poison_reliable}
    items = [(set(_WORD.findall(p.lower())), t) for p, r in regression for t in r.groups if t in reliable]
    suspects = []
    for ex in examples:
        words = set(_WORD.findall(ex.prompt.lower()))
        near = {t for w, t in items if w and words and len(w & words) / len(w | words) >= cfg.poison_sim}
        target = {c.name for c in ex.calls}
        against = {t for t in near if (t in target) == (ex.label == "undesirable")}
        if against:
            suspects.append((ex, against))
    hits = []
    probe = suspects[: cfg.poison_probe]
    for (ex, against), called in zip(probe, serving_calls([ex for ex, _ in probe]) if probe else []):
        does = set(called) & against
        if does:
            hits.append({"turn_id": ex.turn_id, "prompt": ex.prompt, "serving_calls": sorted(does), "target": ex.target_text(), "label": ex.label})
    n = len(examples)
    flagged = len(hits) >= cfg.poison_min_items and len(hits) >= cfg.poison_share * n
    tools = sorted({t for h in hits for t in h["serving_calls"]})
    reason = (f"poisoning check {'FAIL' if flagged else 'ok'}: {len(hits)} of {n} targets contradict what the serving model does "
              f"on prompts like its regression items of {', '.join(tools) or 'any reliable tool'}"
              + (f" ({', '.join(f'{t} {reliable[t]:.0f}%' for t in tools)} right there)" if tools else "")
              + (" -> held for review, not trained on" if flagged else ""))
    return PoisonReport(flagged=flagged, probed=min(len(suspects), cfg.poison_probe), contradicting=hits, reliable=reliable, reason=reason)


def run_gate(
    evaluate: Evaluator,
    serving: Path | None,
    candidate: Path,
    regression_items: Sequence[Any],
    learning_items: Sequence[Any],
    cfg: GateConfig,
    serving_scores: tuple[float, float] | None = None,
) -> GateReport:
    """Evaluates serving (unless its scores are given) and candidate, then applies `decide`."""
    if not learning_items:
        raise ValueError("no held-out feedback items to measure learning on; log more corrections before learning")
    reg_b, learn_b = serving_scores or (evaluate(serving, regression_items), evaluate(serving, learning_items))
    reg_a, learn_a = evaluate(candidate, regression_items), evaluate(candidate, learning_items)
    rep = decide(reg_b, reg_a, learn_b, learn_a, cfg)
    return rep.model_copy(update={"n_regression": len(regression_items), "n_learning": len(learning_items)})
