"""Continual-learning metrics over rounds: MFT, MFN, BWT.

`R[i][j]` is the score (0-100) on task j's held-out items after training round i, for j <= i
(task j = the feedback batch learnt in round j). With T rounds:

- MFT, mean fine-tuned score: mean_j R[j][j] -- how well each batch is learnt right after training.
- MFN, mean final score: mean_j R[T-1][j] -- how much of every batch the latest version still knows.
- BWT, backward transfer (Lopez-Paz & Ranzato, GEM, 2017): mean_{j<T-1} (R[T-1][j] - R[j][j]);
  negative means forgetting.

MFT and MFN follow the continual instruction-tuning benchmarks for MLLMs (CoIN, He et al. 2023,
arXiv 2311.16206); MFT - MFN is the average forgetting.
"""

from __future__ import annotations

from pydantic import BaseModel


class RoundScores(BaseModel):
    """Scores after one round: task name -> score (0-100) for every task learnt so far."""

    round: int
    task: str  # the task learnt in this round
    scores: dict[str, float]


class ContinualReport(BaseModel):
    rounds: int
    mft: float | None
    mfn: float | None
    bwt: float | None


def continual_metrics(history: list[RoundScores]) -> ContinualReport:
    if not history:
        return ContinualReport(rounds=0, mft=None, mfn=None, bwt=None)
    tasks = [h.task for h in history]
    diag = [h.scores[t] for h, t in zip(history, tasks) if t in h.scores]
    last = history[-1].scores
    final = [last[t] for t in tasks if t in last]
    back = [last[t] - history[j].scores[t] for j, t in enumerate(tasks[:-1]) if t in last and t in history[j].scores]
    return ContinualReport(
        rounds=len(history),
        mft=_mean(diag),
        mfn=_mean(final),
        bwt=_mean(back) if len(history) > 1 else None,
    )


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None
