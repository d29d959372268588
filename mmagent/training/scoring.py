"""Eval suites as a library: the suite format, the runner that replays recorded tool results, and
the per-item score. The eval recipe (`recipes/eval.py`: aggregate metrics, reports, `mmagent eval`)
and the learning loop's gate (`mmagent/continual/suites.py`) both score with it.

Why here and not in its own package: it is what the recipes and the learning loop share, like the
rest of `mmagent.training`, and it sits at the same level (protocol, media, tools below it; never the
backends or the agent: it drives any `ChatModel` it is given).

Suite format (one JSON object per line):

    {"id": str, "prompt": str, "images": [paths relative to the suite file],
     "expected": [{"name": str, "arguments": {arg: [allowed values]}}, ...],
     "results": [tool output per expected call]   # optional: replayed for multi-step items
     "audio": [paths]                               # optional
     "kind": str                                    # optional: single, chain, parallel, no_tool ...
     "tools": [tool schemas]                        # optional: OpenAI or MCP style; default: the built-ins
     "answers": [str]}                              # optional: acceptable final answers (not scored here)

`expected: []` means no tool should be called; `""` among an argument's allowed values means it
may be left out; attached images are `image_1`, `image_2`... in attachment order; calls are matched
in order, except on `kind: "parallel"` items, whose calls may come in any order (each expected
call matched by a different emitted call). An item's `tools` are what the model is offered and
what it is scored against (names, defaults, hallucinations); without them, the run's tools (the
built-in registry's schemas by default). The runner drives the model through `ChatModel.chat`
step by step: after each step that calls tools, the recorded result of the matching expected
call is fed back as the tool message (a replay, so no real tool runs and every model sees the
same observations); a call with no recorded result gets an error observation. It stops once
the model has made as many calls as expected, answers in text, or hits `max_steps`.

Per item (`score_item`): parsed (no `<tool_call>` fragment failed to parse), the decision (called
some tool iff the item expects one), the names (in order; as a multiset on parallel items), the
arguments (BFCL-style AST match: each expected argument's value is one of the allowed values with
the same JSON type, strings compared case- and whitespace-insensitively; a missing argument only
if `""` is allowed; an argument not in the expected set fails unless it equals the schema default),
strict success (all of those), hallucinated calls, and node / edge F1 on multi-step items (TaskBench,
arXiv 2311.18760).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib.util import find_spec
from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from mmagent.protocol.chat import ChatModel, Message, ToolCall


def shipped_suites() -> Path:
    """The folder of the shipped suites (`recipes/suites/`), found without importing the recipes: a
    data location, like a wheel's package data, not a code dependency."""
    spec = find_spec("mmagent.recipes")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("mmagent.recipes is not installed: the shipped eval suites live in recipes/suites/")
    return Path(next(iter(spec.submodule_search_locations))) / "suites"


class ExpectedCall(BaseModel):
    name: str
    arguments: dict[str, list[Any]] = Field(default_factory=dict)


class SuiteItem(BaseModel):
    id: str
    prompt: str
    images: list[str] = Field(default_factory=list)
    audio: list[str] = Field(default_factory=list)
    expected: list[ExpectedCall]
    results: list[Any] | None = None
    kind: str = ""
    tools: list[dict[str, Any]] | None = None  # None: the run's tools (the built-ins)
    answers: list[str] = Field(default_factory=list)  # acceptable final answers; no tool metric reads them

    @field_validator("tools")
    @classmethod
    def _openai_tools(cls, tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        """Any accepted schema style becomes the OpenAI form every backend takes; names unique."""
        if tools is None:
            return None
        from mmagent.tools.schema_tool import ToolSchemaError, openai_schema

        try:
            out = [openai_schema(t) for t in tools]
        except ToolSchemaError as err:  # a TypeError: pydantic reports only ValueErrors as the line's error
            raise ValueError(str(err)) from None
        names = [t["function"]["name"] for t in out]
        if len(set(names)) < len(names):
            raise ValueError(f"tool names repeat: {sorted(n for n in set(names) if names.count(n) > 1)}")
        return out


def item_tools(item: SuiteItem, tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The tools an item is run and scored with: its own, else the run's."""
    return (tools or []) if item.tools is None else item.tools


def load_suite(path: Path) -> list[SuiteItem]:
    """Reads and checks a suite; a bad line or a missing media file is a `ValueError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"suite {path} does not exist (suites ship in recipes/suites/)")
    items: list[SuiteItem] = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = SuiteItem.model_validate_json(line)
        except ValidationError as err:
            first = err.errors()[0]
            raise ValueError(f"{path}:{n}: {'.'.join(map(str, first['loc']))}: {first['msg']} (see the suite format in `mmagent eval --help`)") from None
        for rel in [*item.images, *item.audio]:
            if not (path.parent / rel).is_file():
                raise ValueError(f"{path}:{n}: media file {rel} not found next to the suite")
        items.append(item)
    if not items:
        raise ValueError(f"suite {path} has no items")
    return items


# --------------------------------------------------------------------------- matching


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().lower()).rstrip(".!?")


def value_matches(pred: Any, allowed: Any) -> bool:
    """JSON-type-aware equality (bool is not int; an int may stand for a float; strings normalized)."""
    if isinstance(allowed, bool) or isinstance(pred, bool):
        return type(pred) is type(allowed) and pred == allowed
    if isinstance(allowed, str):
        return isinstance(pred, str) and _norm(pred) == _norm(allowed)
    if isinstance(allowed, float):
        return isinstance(pred, (int, float)) and abs(pred - allowed) < 1e-6
    if isinstance(allowed, int):
        return isinstance(pred, int) and pred == allowed
    if isinstance(allowed, list):
        return isinstance(pred, list) and len(pred) == len(allowed) and all(map(value_matches, pred, allowed))
    if isinstance(allowed, dict):
        return isinstance(pred, dict) and pred.keys() == allowed.keys() and all(value_matches(pred[k], allowed[k]) for k in allowed)
    return pred == allowed


def arguments_match(pred: dict[str, Any], expected: dict[str, list[Any]], defaults: dict[str, Any]) -> bool:
    """BFCL-style AST match of one call's arguments against the allowed values."""
    for name, value in pred.items():
        if name not in expected and not (name in defaults and value_matches(value, defaults[name])):
            return False  # an argument nobody asked for
    for name, allowed in expected.items():
        if name not in pred:
            if "" not in allowed:
                return False
            continue
        value = pred[name]
        omitted_ok = "" in allowed and name in defaults and value_matches(value, defaults[name])
        if not omitted_ok and not any(value_matches(value, a) for a in allowed if a != ""):
            return False
    return True


def _f1(pred: Counter, gold: Counter) -> float:
    tp = sum((pred & gold).values())
    if tp == 0:
        return 0.0
    p, r = tp / sum(pred.values()), tp / sum(gold.values())
    return 2 * p * r / (p + r)


# --------------------------------------------------------------------------- scoring


@dataclass
class Prediction:
    """What a model did on one item: all calls over all steps, and its raw generations."""

    id: str
    calls: list[ToolCall] = field(default_factory=list)
    parse_errors: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    latency_s: float = 0.0


class ItemScore(BaseModel):
    id: str
    kind: str = ""
    parsed: bool
    decision: bool
    names: bool | None  # None: the item expects no call
    arguments: bool | None  # None: names were wrong (argument accuracy is conditional) or no call expected
    strict: bool
    n_calls: int
    n_hallucinated: int
    node_f1: float | None = None  # multi-step items only
    edge_f1: float | None = None
    called: list[str] = Field(default_factory=list)
    arguments_called: list[dict[str, Any]] = Field(default_factory=list)  # each call's arguments, in `called`'s order (for reading misses)


def score_item(item: SuiteItem, pred: Prediction, tools: list[dict[str, Any]]) -> ItemScore:
    from mmagent.protocol.toolcall import function_of

    fns = {function_of(t)["name"]: function_of(t) for t in item_tools(item, tools)}
    names = [c.name for c in pred.calls]
    gold = [e.name for e in item.expected]
    parsed = not pred.parse_errors
    decision = bool(names) == bool(gold)
    parallel = item.kind == "parallel"
    names_ok = (Counter(names) == Counter(gold) if parallel else names == gold) if gold else None
    args_ok = None
    if names_ok:
        args_ok = _unordered_match(pred.calls, item.expected, fns) if parallel else all(
            arguments_match(c.arguments, e.arguments, _defaults(fns.get(e.name, {}))) for c, e in zip(pred.calls, item.expected)
        )
    strict = parsed and decision and (not gold or bool(names_ok and args_ok))
    node = edge = None
    if len(gold) >= 2 and not parallel:  # no plan order to score in independent calls
        node = _f1(Counter(names), Counter(gold))
        edge = _f1(Counter(pairwise(names)), Counter(pairwise(gold)))
    return ItemScore(id=item.id, kind=item.kind, parsed=parsed, decision=decision, names=names_ok, arguments=args_ok, strict=strict,
                     n_calls=len(names), n_hallucinated=sum(n not in fns for n in names), node_f1=node, edge_f1=edge, called=names,
                     arguments_called=[c.arguments for c in pred.calls])


def _unordered_match(calls: list[ToolCall], expected: list[ExpectedCall], fns: dict[str, Any]) -> bool:
    """Whether each expected call can be paired with a different emitted call of the same name whose
    arguments match (backtracking; parallel items hold a handful of calls)."""

    def fits(c: ToolCall, e: ExpectedCall) -> bool:
        return c.name == e.name and arguments_match(c.arguments, e.arguments, _defaults(fns.get(e.name, {})))

    def pair(i: int, free: frozenset[int]) -> bool:
        return i == len(expected) or any(fits(calls[k], expected[i]) and pair(i + 1, free - {k}) for k in free)

    return len(calls) == len(expected) and pair(0, frozenset(range(len(calls))))


def _defaults(fn: dict[str, Any]) -> dict[str, Any]:
    props = (fn.get("parameters") or {}).get("properties", {})
    return {k: v["default"] for k, v in props.items() if "default" in v}


# --------------------------------------------------------------------------- running


def _observation(item: SuiteItem, j: int, call: ToolCall, used: set[int]) -> str:
    """The recorded result for the `j`-th call: expected call `j`'s when the names agree; on a
    parallel item, the first unused expected call of that name (the calls come in any order)."""
    from mmagent.protocol.toolcall import format_tool_result

    if item.kind == "parallel":
        j = next((k for k, e in enumerate(item.expected) if e.name == call.name and k not in used), len(item.expected))
    if item.results is not None and j < len(item.expected) and j < len(item.results) and call.name == item.expected[j].name:
        used.add(j)
        return format_tool_result(call.name, item.results[j])
    return format_tool_result(call.name, error="no recorded result for this call in the eval suite")


def run_item(model: ChatModel, item: SuiteItem, tools: list[dict[str, Any]], root: Path, *, constrained: bool = False,
             max_steps: int = 4, max_new_tokens: int = 160) -> Prediction:
    """Drives the model on one item with replayed tool results (see the module docstring)."""
    from mmagent.media.artifacts import ArtifactStore

    tools = item_tools(item, tools)
    used: set[int] = set()  # expected calls whose recorded result was replayed

    with tempfile.TemporaryDirectory(prefix="mmagent-eval-") as tmp:
        store = ArtifactStore(Path(tmp), session=item.id)
        images = [store.add_image(root / p).id for p in item.images]
        audio = [store.add_audio(root / p).id for p in item.audio]
        messages = [Message(role="user", content=item.prompt, images=images, audio=audio)]
        pred = Prediction(item.id)
        t0 = time.perf_counter()
        for _ in range(max_steps):
            res = model.chat(messages, tools, artifacts=store, max_new_tokens=max_new_tokens, constrained=constrained)
            pred.texts.append(res.text)
            pred.parse_errors += res.parse_errors
            if not res.tool_calls:
                break
            calls = [c if c.id else c.model_copy(update={"id": f"call_{len(pred.calls) + k + 1}"}) for k, c in enumerate(res.tool_calls)]
            messages.append(Message(role="assistant", content="", tool_calls=calls))
            for c in calls:
                messages.append(Message(role="tool", name=c.name, tool_call_id=c.id, content=_observation(item, len(pred.calls), c, used)))
                pred.calls.append(c)
            if len(pred.calls) >= len(item.expected):
                break
        pred.latency_s = time.perf_counter() - t0
    return pred

