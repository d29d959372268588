"""The promotion gate: a candidate adapter serves only if it learnt and did not forget.

Two evaluations, each run on the serving version and on the candidate:
- the frozen regression suite (what already worked; measures forgetting),
- the held-out feedback items (corrected turns kept out of training; measures learning).

Promote iff `regression drop <= max_regression_drop` (points, default 1) and
`learning gain >= min_learning_gain` (points). Scores are strict success rates in percent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

# (adapter folder or None for the base model, eval items) -> strict success in percent
Evaluator = Callable[[Path | None, Sequence[Any]], float]


class GateConfig(BaseModel):
    max_regression_drop: float = Field(default=1.0, ge=0, description="Most the regression suite may fall, in points.")
    min_learning_gain: float = Field(default=5.0, description="Least the held-out feedback items must gain, in points.")


class GateReport(BaseModel):
    promote: bool
    reasons: list[str]
    regression_before: float
    regression_after: float
    learning_before: float
    learning_after: float
    n_regression: int = 0
    n_learning: int = 0

    @property
    def regression_drop(self) -> float:
        return self.regression_before - self.regression_after

    @property
    def learning_gain(self) -> float:
        return self.learning_after - self.learning_before


def decide(
    regression_before: float, regression_after: float, learning_before: float, learning_after: float, cfg: GateConfig
) -> GateReport:
    """The gate rule on given scores; says why in words either way."""
    drop = regression_before - regression_after
    gain = learning_after - learning_before
    reasons = []
    ok_reg = drop <= cfg.max_regression_drop + 1e-9
    ok_learn = gain >= cfg.min_learning_gain - 1e-9
    reasons.append(
        f"regression suite {regression_before:.1f} -> {regression_after:.1f} "
        f"({'ok' if ok_reg else 'FAIL'}: drop {drop:.1f} vs allowed {cfg.max_regression_drop:.1f})"
    )
    reasons.append(
        f"held-out feedback {learning_before:.1f} -> {learning_after:.1f} "
        f"({'ok' if ok_learn else 'FAIL'}: gain {gain:.1f} vs required {cfg.min_learning_gain:.1f})"
    )
    return GateReport(
        promote=ok_reg and ok_learn,
        reasons=reasons,
        regression_before=regression_before,
        regression_after=regression_after,
        learning_before=learning_before,
        learning_after=learning_after,
    )


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
