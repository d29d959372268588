"""Eval suites for the gate: per-item results grouped by tool, the regression set of a model and
its tools, and a cache of the serving version's results.

A result per item (not a percentage) is what lets the gate hold a per-tool floor and the
poisoning check ask "how reliably does the serving model already handle this tool?". Groups: each
tool an item expects, or `NO_TOOL` for items that expect none.

Held-out thumbs (`Example.eval_item`) are the model's own outputs, judged by a user who wrote none
of it, so they are scored on what a thumb can judge (`same_calls`): the tools called and their
arguments, where a free-text argument (a string the schema leaves open, e.g. a ticket's summary: the
model's own wording) matches any value sharing a word with the rated one.
- `keep` items (thumbs-up): success is a valid output with the same calls in that sense.
- `avoid` items (thumbs-down of a preference round): success is a valid output other than the one
  rated down (parsed, only offered tools, or a non-empty answer), in that sense too: the same wrong
  enum value under a reworded summary is the same mistake.

The regression set of a round: the frozen suites (the shipped ones for the built-ins) keeping the
items whose tools the round's registry has, plus the held-out items of every promoted round (the
only labelled data for the user's custom tools the model has learnt).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mmagent.protocol.chat import ChatModel

NO_TOOL = "(no tool)"
# Part of every cached result's key: results decoded another way (before: always unconstrained) are not reused.
SCORING = "decoded as served"
_ARTIFACT_ID = re.compile(r"(image|audio|text)_\d+")  # an artifact argument: never free text
_WORD = re.compile(r"[a-z0-9]+")


class ItemResult(BaseModel):
    id: str
    groups: list[str]
    ok: bool
    called: list[str] = []


def groups_of(item: Any) -> list[str]:
    names = list(dict.fromkeys(e.name for e in item.expected))
    if getattr(item, "kind", "") == "avoid":
        return ["(avoid)"]
    return names or [NO_TOOL]


def run_suite(model: ChatModel, suite: Path, tools: list[dict[str, Any]], known: set[str] | None = None,
              limit: int | None = None, max_new_tokens: int = 96, shard: tuple[int, int] = (0, 1)) -> list[ItemResult]:
    """Every item's strict success (`mmagent.training.scoring`, as recipes/eval.py), `avoid` items as above. Items expecting a
    tool outside `known` (the round's registry) are left out: they belong to another tool set.
    `shard=(k, n)` answers only items k, k + n, k + 2n ... (one of n workers: `eval_workers`).

    96 new tokens per step is room for a call or a short answer; a gate need not wait for a model
    that rambles (the recipes' own default is 160).

    Decoding is the one the model serves with (`resolve_constrained(model, None)`: schema-guided
    wherever the backend supports it, as `Agent` does): a held-out thumb judged a constrained reply,
    and an unconstrained one of the same prompt often differs, which made almost every thumbs-down
    "avoided" by the serving model itself."""
    from mmagent.protocol.chat import resolve_constrained
    from mmagent.training.scoring import load_suite, run_item, score_item

    k, n = shard
    items = [it for it in load_suite(suite) if known is None or all(e.name in known for e in it.expected)][:limit][k::n]
    avoid = _avoided(suite)
    constrained = resolve_constrained(model, None)
    out = []
    for it in items:
        pred = run_item(model, it, tools, Path(suite).parent, constrained=constrained, max_new_tokens=max_new_tokens)
        if it.id in avoid:
            ok = _avoids(pred, avoid[it.id], tools)
        elif it.kind == "keep":
            ok = _keeps(pred, it, tools)
        else:
            ok = score_item(it, pred, tools).strict
        out.append(ItemResult(id=f"{suite_tag(suite)}/{it.id}", groups=groups_of(it), ok=ok, called=[c.name for c in pred.calls]))
    return out


def suite_prompts(suites: Sequence[Path]) -> dict[str, str]:
    """Result id -> the item's prompt, over several suites."""
    from mmagent.training.scoring import load_suite

    return {f"{suite_tag(s)}/{it.id}": it.prompt for s in suites for it in load_suite(s)}


def suite_tag(suite: Path) -> str:
    """`rounds/r0002/heldout.jsonl` -> `r0002/heldout`: unique across the shipped suites and the rounds'."""
    return f"{Path(suite).parent.name}/{Path(suite).stem}"


def _avoided(suite: Path) -> dict[str, str]:
    """id -> the rated-down output, for the suite's `avoid` items (SuiteItem does not keep the field)."""
    out = {}
    for line in Path(suite).read_text().splitlines():
        if line.strip() and '"avoid"' in line:
            rec = json.loads(line)
            if rec.get("kind") == "avoid":
                out[rec["id"]] = rec.get("avoid", "")
    return out


def _avoids(pred: Any, rated_down: str, tools: list[dict[str, Any]]) -> bool:
    from mmagent.protocol.toolcall import format_calls, parse_tool_calls

    text = format_calls(pred.calls) if pred.calls else "".join(pred.texts).strip()
    if not _valid(pred, tools) or not text:
        return False
    down, errors, _ = parse_tool_calls(rated_down)
    if down and not errors and pred.calls:  # a call rated down: the same calls reworded are the same mistake
        return not same_calls(pred.calls, down, tools)
    return text != rated_down.strip()


def _keeps(pred: Any, item: Any, tools: list[dict[str, Any]]) -> bool:
    """A held-out thumbs-up: the rated calls again (`same_calls`), or again an answer where it answered."""
    from mmagent.protocol.chat import ToolCall

    if not _valid(pred, tools):
        return False
    if not item.expected:
        return not pred.calls and bool("".join(pred.texts).strip())
    rated = [ToolCall(name=e.name, arguments={k: v[0] for k, v in e.arguments.items()}) for e in item.expected]
    return same_calls(pred.calls, rated, tools)


def _valid(pred: Any, tools: list[dict[str, Any]]) -> bool:
    from mmagent.protocol.toolcall import function_of

    offered = {function_of(t)["name"] for t in tools}
    return not pred.parse_errors and all(c.name in offered for c in pred.calls)


def same_calls(calls: Sequence[Any], rated: Sequence[Any], tools: list[dict[str, Any]]) -> bool:
    """The same tools in the same order with the same arguments, a free-text one (a string without enum,
    const, format or pattern in its tool's schema, not an artifact id) matching any value that shares a
    word or a 4-letter stem with the rated value: "what a thumb judged" (the module docstring)."""
    from mmagent.protocol.toolcall import function_of
    from mmagent.training.scoring import value_matches

    props = {function_of(t)["name"]: (function_of(t).get("parameters") or {}).get("properties") or {} for t in tools}
    if [c.name for c in calls] != [c.name for c in rated]:
        return False
    for c, r in zip(calls, rated):
        if c.arguments.keys() != r.arguments.keys():
            return False
        for k, want in r.arguments.items():
            got, schema = c.arguments[k], props.get(c.name, {}).get(k, {})
            if not (_shares_a_word(got, want) if _free_text(schema, want) else value_matches(got, want)):
                return False
    return True


def _free_text(schema: Any, value: Any) -> bool:
    if not isinstance(value, str) or _ARTIFACT_ID.fullmatch(value):
        return False
    return isinstance(schema, dict) and schema.get("type", "string") == "string" and not {"enum", "const", "format", "pattern"} & schema.keys()


def _shares_a_word(got: Any, want: str) -> bool:
    words = lambda text: {w for w in _WORD.findall(text.lower()) if len(w) >= 3}  # noqa: E731
    a, b = words(got) if isinstance(got, str) else set(), words(want)
    return bool(a & b) or bool({w[:4] for w in a} & {w[:4] for w in b}) or (not b and isinstance(got, str))


def percent(results: Sequence[ItemResult]) -> float:
    return 100.0 * sum(r.ok for r in results) / len(results) if results else 0.0


def by_group(results: Sequence[ItemResult]) -> dict[str, list[ItemResult]]:
    out: dict[str, list[ItemResult]] = defaultdict(list)
    for r in results:
        for g in r.groups:
            out[g].append(r)
    return dict(out)


def suite_hash(suite: Path, tools: list[dict[str, Any]], known: set[str] | None, limit: int | None) -> str:
    """What a cached result depends on: the suite's bytes, the tools offered and known, the item limit,
    and how items are decoded (`SCORING`)."""
    head = json.dumps([SCORING, tools, sorted(known or []), limit], sort_keys=True, default=str).encode()
    return hashlib.sha256(head + Path(suite).read_bytes()).hexdigest()[:16]


class ScoreCache:
    """Per-item results of a version on a regression set, under `<registry>/scores/`.

    The serving version was the candidate of the round that promoted it and was scored then on
    the same set (same suites, tools, limit -> same hash): a round evaluates only its candidate."""

    def __init__(self, root: Path):
        self.root = Path(root) / "scores"

    def _file(self, version: str | None, key: str) -> Path:
        return self.root / f"{version or 'base'}-{key}.json"

    def get(self, version: str | None, key: str) -> list[ItemResult] | None:
        f = self._file(version, key)
        if not f.is_file():
            return None
        try:
            return [ItemResult.model_validate(r) for r in json.loads(f.read_text())]
        except (ValueError, OSError):
            return None  # a torn or foreign file: evaluate again

    def put(self, version: str | None, key: str, results: Sequence[ItemResult]) -> None:
        from mmagent.atomic import atomic_write_text

        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._file(version, key), json.dumps([r.model_dump() for r in results]))


# (suites to evaluate, tools, known) -> each suite's results: the same version answered on several cores (`eval_workers`)
SuitePool = Callable[[Sequence[tuple[Path, int | None]], list[dict[str, Any]], set[str] | None], list[list[ItemResult]]]


def run_suites(model: Callable[[], ChatModel], version: str | None, suites: Sequence[tuple[Path, int | None]],
               tools: list[dict[str, Any]], known: set[str] | None, cache: ScoreCache | None,
               pool: SuitePool | None = None) -> list[ItemResult]:
    """Results of `version` on each (suite, item limit), from the cache where it has them; `model`
    is called (to load the version) only when something must be evaluated, unless `pool` answers
    the missing suites (in worker processes, all at once)."""
    keys = [suite_hash(suite, tools, known, limit) for suite, limit in suites]
    got = [cache.get(version, key) if cache is not None else None for key in keys]
    todo = [i for i, g in enumerate(got) if g is None]
    if pool is not None and todo:
        for i, res in zip(todo, pool([suites[i] for i in todo], tools, known), strict=True):
            got[i] = res
    for i in todo:
        if got[i] is None:
            suite, limit = suites[i]
            got[i] = run_suite(model(), suite, tools, known, limit)
        if cache is not None:
            cache.put(version, keys[i], got[i])
    return [r for g in got for r in g]
