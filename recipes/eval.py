# Launch: .venv/bin/mmagent eval recipes/suites/unseen-phrasings.jsonl --json
"""Tool-calling evaluation: suites, a runner over any `ChatModel`, and the metrics.

The suite format, the runner and the per-item score are library code (`mmagent.training.scoring`,
shared with the learning loop's gate); this recipe aggregates the scores into the metrics below,
writes the report and backs `mmagent eval`.

The suite format and how the runner replays recorded tool results: `mmagent/training/scoring.py`.

Metrics (per item unless said otherwise):
- parse rate: every generation of the item parsed (no `<tool_call>` fragment failed to parse);
- decision accuracy: called some tool iff the item expects one;
- tool-name accuracy: over items that expect calls, the called names equal the expected names in order;
- argument accuracy: over items whose names were right, every call's arguments match (BFCL-style
  AST match: each expected argument's value is one of the allowed values with the same JSON type,
  strings compared case- and whitespace-insensitively; a missing argument only if `""` is allowed;
  an argument not in the expected set fails unless it equals the schema default);
- strict success: parsed, right decision, right names, right arguments (no-tool items: parsed, no call);
- hallucinated-tool rate: share of all emitted calls naming a tool that was not offered;
- node / edge F1 (multi-step items, >= 2 expected calls, not parallel): F1 of the multiset of tool
  names and of the ordered consecutive pairs (TaskBench, arXiv 2311.18760), averaged over those items;
- abstention rate: over the items that expect no call, the share where none was made;
- parallel rate: strict success over the `kind: "parallel"` items.
The report also holds these metrics per kind (`by_kind`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mmagent.protocol.chat import ChatModel
from mmagent.training.scoring import (
    ItemScore,
    SuiteItem,
    load_suite,
    run_item,
    score_item,
)

log = logging.getLogger(__name__)
# SuiteItem and load_suite stay importable here: recipes/transfer_eval.py and the held-out suites' checker read them from the recipe.
__all__ = ["EvalReport", "Metrics", "SuiteItem", "by_kind", "evaluate", "load_suite", "markdown_table", "save_report", "summarize"]


class Metrics(BaseModel):
    n: int
    parse_rate: float
    decision_accuracy: float
    tool_name_accuracy: float | None
    argument_accuracy: float | None
    strict_success: float
    hallucinated_tool_rate: float
    node_f1: float | None
    edge_f1: float | None
    abstention_rate: float | None = None  # items that expect no call: share with none made
    parallel_rate: float | None = None  # kind "parallel" items: strict success


def _mean(xs: list[float | bool]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def summarize(scores: list[ItemScore]) -> Metrics:
    multi = [s for s in scores if s.node_f1 is not None]
    n_calls = sum(s.n_calls for s in scores)
    return Metrics(
        n=len(scores),
        parse_rate=_mean([s.parsed for s in scores]) or 0.0,
        decision_accuracy=_mean([s.decision for s in scores]) or 0.0,
        tool_name_accuracy=_mean([s.names for s in scores if s.names is not None]),
        argument_accuracy=_mean([s.arguments for s in scores if s.arguments is not None]),
        strict_success=_mean([s.strict for s in scores]) or 0.0,
        hallucinated_tool_rate=sum(s.n_hallucinated for s in scores) / n_calls if n_calls else 0.0,
        node_f1=_mean([s.node_f1 for s in multi]),
        edge_f1=_mean([s.edge_f1 for s in multi]),
        abstention_rate=_mean([s.n_calls == 0 for s in scores if s.names is None]),
        parallel_rate=_mean([s.strict for s in scores if s.kind == "parallel"]),
    )


def by_kind(scores: list[ItemScore]) -> dict[str, Metrics]:
    """The metrics of each kind of item (`kind` "" is reported as "unlabeled"), kinds sorted."""
    kinds = sorted({s.kind or "unlabeled" for s in scores})
    return {k: summarize([s for s in scores if (s.kind or "unlabeled") == k]) for k in kinds}


def markdown_table(rows: dict[str, Metrics]) -> str:
    """One row per (model, suite) label; percentages."""
    cols = ["n", "parse_rate", "decision_accuracy", "tool_name_accuracy", "argument_accuracy", "strict_success", "hallucinated_tool_rate",
            "node_f1", "edge_f1", "abstention_rate", "parallel_rate"]
    head = "| run | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols)
    def cell(v: Any) -> str:
        return "-" if v is None else str(v) if isinstance(v, int) else f"{100 * v:.1f}"
    body = ["| " + label + " | " + " | ".join(cell(getattr(m, c)) for c in cols) + " |" for label, m in rows.items()]
    return "\n".join([head, *body])


class EvalReport(BaseModel):
    suite: str
    model: str
    constrained: bool
    tool_retrieval: bool = False  # the model saw only the item's tools that fit the request (mmagent.backends.tool_retrieval)
    with_builtins: bool = False  # items that bring their own tools were offered the built-ins beside them (the agent's case)
    metrics: Metrics
    by_kind: dict[str, Metrics] = Field(default_factory=dict)
    items: list[ItemScore]
    seconds: float


def evaluate(model: ChatModel, suite: Path, tools: list[dict[str, Any]] | None = None, *, constrained: bool = False,
             limit: int | None = None, max_new_tokens: int = 128, on_item: Any = None, with_builtins: bool = False) -> EvalReport:
    """Runs a suite against a model; `tools` default to the built-in registry's schemas (an item
    with its own `tools` uses those; `with_builtins` offers the built-ins beside them, as `Agent(tools=[...])`
    does: the OpenAI endpoint offers only the item's)."""
    items = load_suite(suite)[:limit]
    if with_builtins or (tools is None and any(item.tools is None for item in items)):  # a suite that brings all its tools loads none
        from mmagent.tools.registry import default_registry

        builtins = default_registry().schemas()
        tools = builtins if tools is None else tools
        if with_builtins:
            items = [it if it.tools is None else it.model_copy(update={"tools": [*it.tools, *builtins]}) for it in items]
    t0 = time.perf_counter()
    scores = []
    for item in items:
        pred = run_item(model, item, tools, Path(suite).parent, constrained=constrained, max_new_tokens=max_new_tokens)
        scores.append(score_item(item, pred, tools))
        log.info("%s: %s -> %s", item.id, [e.name for e in item.expected], scores[-1].called)
        if on_item:
            on_item(scores[-1])
    from mmagent.backends.tool_retrieval import RetrievingChatModel

    return EvalReport(suite=str(suite), model=getattr(model, "name", type(model).__name__), constrained=constrained,
                      tool_retrieval=isinstance(model, RetrievingChatModel), with_builtins=with_builtins,
                      metrics=summarize(scores), by_kind=by_kind(scores), items=scores, seconds=time.perf_counter() - t0)


def save_report(report: EvalReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.model_dump(mode="json"), indent=1))
