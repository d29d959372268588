# Launch: .venv/bin/python -m mmagent.recipes.open_world_mix --out data/open-world --seed 0
"""Open-world tool calling data: requests for tools the model has never seen, each conversation with its own tools.

Every example offers its own tool schemas (`Example.tools`; the trainer renders them as the
system prompt's one-line signatures, as serving does) drawn from `open_world_tools.catalog`:
- single: one tool, one call; multiple: 2-6 candidates with near-miss distractors (mostly other
  tools of the same family), one call; parallel: two calls in one reply (the same tool twice, or
  two tools) where the request asks for two things; followup (training only): a second user turn
  whose call uses the first call's result ("book that one"), or asks the same for another value;
- irrelevance: no offered tool serves the request: nothing is called and the reply says so,
  without a digit (a model must never invent a numeric answer).
Requests state values in many ways (`open_world_values`), sometimes leave optional parameters out
(the call omits them too), sometimes open with a sentence of context or carry a typo.

Splits, deterministic from the seed: train / validation use the training families only;
test-heldout-families uses only `HELDOUT_DOMAINS`, whose tools never appear in training in any
role; it is written as an eval suite (`recipes/eval.py` format). `python -m mmagent.recipes.open_world`
also builds the training mix (`open_world_mix`): open-world, built-in and self-distilled chat.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from mmagent.recipes.data import Example, call_turns
from mmagent.recipes.open_world_domains import CONTEXT, HELDOUT_DOMAINS
from mmagent.recipes.open_world_tools import Concept, Tool, concepts, tools_of
from mmagent.recipes.open_world_values import expected, map_numbers, plain
from mmagent.recipes.phrasings import slip

from mmagent.protocol.chat import Message, ToolCall

SPLITS = ("train", "validation", "test-heldout-families")
# Shares of each kind: training favours the hard decisions (which tool, or none).
MIX = {"train": {"single": 0.16, "multiple": 0.34, "irrelevance": 0.16, "parallel": 0.16, "followup": 0.18},
       "test": {"single": 0.25, "multiple": 0.30, "irrelevance": 0.22, "parallel": 0.23}}
OPEN_IMPERATIVE = ["", "", "Please ", "Can you ", "Could you ", "I need to ", "I'd like to ", "Go ahead and ", "Hey, "]
OPEN_STATEMENT = ["", "", "Hey, ", "So, ", "Hi! "]  # asks that are not imperatives ("{pet} weighs 4 kg today", "I'd like ...")
OPEN_QUESTION = ["", "", "Hey, ", "Quick question: ", "Hi! ", "So, "]
CLOSERS = ["", "", "", " please", ", thanks", ", thank you", "!"]
DECLINES = ["I can't {task} with the tools available here.", "None of the tools I have can {task}, so I can't help with that one.",
            "Sorry, the tools offered here don't let me {task}.", "That needs a tool that can {task}, and I don't have one here."]
FOLLOW_LEADS = ["Now ", "Great, now ", "OK, ", "Thanks. Now ", "Then ", "Perfect. Next, "]
ELLIPSIS = ["What about {v}?", "And for {v}?", "Same for {v}, please.", "Now do {v}.", "How about {v}?"]


def _slots(text: str) -> list[str]:
    """The slots of an ask in order (a list, not a set: the draws must not follow hash order)."""
    return list(dict.fromkeys(re.findall(r"\{(\w+)\}", text)))


def emit(schema: dict[str, Any], value: Any) -> Any:
    """A value as the call writes it: whole numbers without `.0`."""
    return map_numbers(schema, value, lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)


@dataclass
class Filled:
    """A request for one tool: its text, the call's arguments and the eval's allowed values."""

    tool: Tool
    text: str
    values: dict[str, Any]  # canonical parameter -> value
    ask: int
    said: list[str]  # how the values were written in `text` (a typo never touches them)

    @property
    def args(self) -> dict[str, Any]:
        return {self.tool.arg_name(k): emit(p.kind.schema, self.values[k]) for p, _, _ in self.tool.params if (k := p.name) in self.values}

    @property
    def allowed(self) -> dict[str, list[Any]]:
        out = {}
        for p, n, declared in self.tool.params:
            if p.name in self.values:
                v = self.values[p.name]
                out[n] = [expected(p.kind.schema, v)] + ([""] if declared and v == p.default else [])
            else:
                out[n] = [""]
        return out

    def call(self, k: int) -> ToolCall:
        return ToolCall(name=self.tool.name, arguments=self.args, id=f"call_{k}")


def usable_asks(tool: Tool) -> list[int]:
    """Asks whose slots this tool has (an ask may name an optional parameter some tools lack)."""
    return [i for i, a in enumerate(tool.concept.spec.asks) if all(tool.has(s) for s in _slots(a))]


def _add_clause(text: str, clause: str, rng: random.Random) -> str:
    clause = clause.strip()
    if not clause:
        return text
    end = "?" if text.endswith("?") else ""
    body = text[:-1] if end else text
    sep = "" if clause.startswith(",") else (", " if rng.random() < 0.15 else " ")
    return f"{body}{sep}{clause}{end}"


def fill(rng: random.Random, tool: Tool, fixed: dict[str, Any] | None = None, only: set[str] | None = None,
         ask: int | None = None, refs: dict[str, str] | None = None) -> Filled:
    """A request for `tool`: required values always, optional ones sometimes (`only`: exactly these),
    `fixed` values as given, `refs` said as a reference to an earlier result ("that one")."""
    fixed, refs = fixed or {}, refs or {}
    i = ask if ask is not None else rng.choice(usable_asks(tool))
    template = tool.concept.spec.asks[i]
    in_ask = _slots(template)
    values: dict[str, Any] = {}
    for p, _, _ in tool.params:
        wanted = p.name in only if only is not None else (p.required or p.name in in_ask or p.name in fixed or rng.random() < 0.4)
        if wanted or p.name in in_ask:
            values[p.name] = fixed[p.name] if p.name in fixed else p.kind.gen(rng)
    params = {p.name: p for p, _, _ in tool.params}

    spoken: list[str] = []

    def said(name: str, slot: bool) -> str:
        if name in refs:
            return refs[name] if slot else params[name].clause.format(v=refs[name]) if "{v}" in params[name].clause else refs[name]
        text = params[name].say_slot(rng, values[name]) if slot else params[name].say_clause(rng, values[name])
        spoken.append(text)
        return text

    text = template.format(**{s: said(s, True) for s in in_ask})
    extra = [n for n in values if n not in in_ask]
    rng.shuffle(extra)
    for n in extra:
        text = _add_clause(text, said(n, False), rng)
    return Filled(tool, text, values, i, spoken)


def wrap(rng: random.Random, text: str, domain: str, protect: list[str] = ()) -> str:
    """Opener and closer, sometimes a sentence of context first, sometimes a typo (never in `protect`)."""
    question = text.endswith("?")
    statement = not question and (text[:1] == "{" or text[:1].isupper() or re.match(r"(i|i'd|i'm|my)\b", text) is not None)
    opener = rng.choice(OPEN_QUESTION if question else OPEN_STATEMENT if statement else OPEN_IMPERATIVE)
    body = text[:-1] if question else text
    asks = opener in ("Can you ", "Could you ")
    closer = rng.choice(CLOSERS[:-1] if question or asks else CLOSERS)
    out = opener + body + closer + ("?" if question or asks else "" if closer == "!" else "." if rng.random() < 0.5 else "")
    out = out[0].upper() + out[1:]
    if rng.random() < 0.18:
        out = rng.choice(CONTEXT[domain]) + " " + out
    if rng.random() < 0.1:
        out = typo(rng, out, protect)
    return out


def typo(rng: random.Random, text: str, protect: list[str] = ()) -> str:
    """One slip of the keyboard in a plain lowercase word outside every `protect` span (the values)."""
    spans = [(m.start(), m.end()) for p in protect if p for m in re.finditer(re.escape(p), text)]
    words = [m for m in re.finditer(r"\b[a-z]{5,}\b", text) if not any(a < m.end() and m.start() < b for a, b in spans)]
    return slip(rng, text, words)


SUCCESS_FIELDS = {"ok", "cancelled", "deleted", "subscribed", "locked", "playing"}  # an action's flag: it worked


def simulate(rng: random.Random, c: Concept) -> dict[str, Any]:
    return {f: True if f in SUCCESS_FIELDS else emit(k.schema, k.gen(rng)) for f, k in c.returns}


def answer(rng: random.Random, f: Filled, result: dict[str, Any]) -> str:
    """A final answer that reports the result (the concept's template, else the fields as they came)."""
    tpl = f.tool.concept.spec.answer
    if tpl:
        try:
            return tpl.format(**({k: plain(v) for k, v in f.values.items()} | {k: plain(v) for k, v in result.items()}))
        except KeyError:
            pass
    fields = ", ".join(f"{k.replace('_', ' ')}: {plain(v)}" for k, v in result.items())
    return rng.choice(["Here's what I got: {}.", "Done. Result: {}.", "The tool returned {}."]).format(fields)


class Pools:
    """The tools of a split by family and concept."""

    def __init__(self, split: str, seed: int) -> None:
        self.tools = tools_of("test" if split.startswith("test") else "train", seed)
        self.by_concept: dict[str, list[Tool]] = {}
        for t in self.tools:
            self.by_concept.setdefault(t.concept.key, []).append(t)
        self.domains = sorted({t.domain for t in self.tools})
        self.concepts_of = {d: sorted({t.concept.key for t in self.tools if t.domain == d}) for d in self.domains}

    def tool(self, rng: random.Random, domain: str | None = None, concept: str | None = None) -> Tool:
        domain = domain or rng.choice(self.domains)
        concept = concept or rng.choice(self.concepts_of[domain])
        return rng.choice(self.by_concept[concept])

    def distractors(self, rng: random.Random, n: int, domain: str, avoid: set[str]) -> list[Tool]:
        """`n` tools of distinct concepts not in `avoid`: near misses from the same family first."""
        out: list[Tool] = []
        for _ in range(n * 6):
            if len(out) == n:
                break
            same = [k for k in self.concepts_of[domain] if k not in avoid]
            d = domain if same and rng.random() < 0.65 else rng.choice(self.domains)
            pool = [k for k in self.concepts_of[d] if k not in avoid]
            if not pool:
                continue
            k = rng.choice(pool)
            out.append(rng.choice(self.by_concept[k]))
            avoid = avoid | {k}
        return out


def _offer(rng: random.Random, tools: list[Tool]) -> list[dict[str, Any]]:
    tools = list(tools)
    rng.shuffle(tools)
    return [t.schema for t in tools]


def _links() -> dict[str, list[tuple[str, Concept, str]]]:
    """Concept -> (result field, concept, parameter) where the field's kind fits the parameter (a
    follow-up can pass the value on: a flight id to book, a city to get weather for)."""
    generic = ("count", "int:", "float:", "bool", "enum:", "amount", "percent", "level", "rating", "minutes", "year", "month")
    out: dict[str, list[tuple[str, Concept, str]]] = {}
    for a in concepts():
        for field, k in a.returns:
            if k.name.startswith(generic):
                continue
            for b in concepts():
                for p in b.params:
                    if p.required and p.kind.name == k.name and (b.domain == a.domain or not k.name.startswith("id:")):
                        out.setdefault(a.key, []).append((field, b, p.name))
    return out


LINKS = _links()


def example(rng: random.Random, pools: Pools, kind: str, idx: str) -> Example:
    domain = rng.choice(pools.domains)
    target = pools.tool(rng, domain)
    if kind == "irrelevance":
        f = fill(rng, target)
        offered = pools.distractors(rng, rng.randint(1, 6), domain, {target.concept.key})
        reply = rng.choice(DECLINES).format(task=target.concept.task)
        if rng.random() < 0.4:
            reply += f" I can {offered[0].concept.task} if that helps."
        msgs = [Message(role="user", content=wrap(rng, f.text, domain, f.said)), Message(role="assistant", content=reply)]
        return Example(idx, kind, f"{kind}/{target.concept.key}/{f.ask}", msgs, tools=_offer(rng, offered))
    if kind == "parallel":
        return _parallel(rng, pools, target, idx)
    f = fill(rng, target)
    n_more = 0 if kind == "single" else rng.randint(1, 5)
    others = pools.distractors(rng, n_more, domain, {target.concept.key})
    result = simulate(rng, target.concept)
    msgs = [Message(role="user", content=wrap(rng, f.text, domain, f.said)), *call_turns([f.call(1)], [result]),
            Message(role="assistant", content=answer(rng, f, result))]
    expected_calls = [{"name": target.name, "arguments": f.allowed}]
    if kind == "followup":
        return _followup(rng, pools, f, result, msgs, others, idx)
    return Example(idx, kind, f"{kind}/{target.concept.key}/{f.ask}", msgs, expected=expected_calls, results=[result],
                   tools=_offer(rng, [target, *others]))


def _variable(tool: Tool, f: Filled) -> list[Any]:
    """Parameters a second request may change: those its ask names, else the required ones."""
    slots = _slots(tool.concept.spec.asks[f.ask])
    named = [p for p, _, _ in tool.params if p.name in slots and p.name in f.values]
    return named or [p for p, _, _ in tool.params if p.required]


def _parallel(rng: random.Random, pools: Pools, target: Tool, idx: str) -> Example:
    domain = target.domain
    if rng.random() < 0.55 and target.params and _variable(target, fill(random.Random(0), target)):  # the same tool for two values
        a = fill(rng, target)
        vary = rng.choice(_variable(target, a))
        other = vary.kind.gen(rng)
        for _ in range(10):
            if other != a.values[vary.name]:
                break
            other = vary.kind.gen(rng)
        b = fill(rng, target, fixed={**a.values, vary.name: other}, only=set(a.values), ask=a.ask)
        slot_said = f"{vary.say_slot(rng, a.values[vary.name])} and {vary.say_slot(rng, other)}"
        template = target.concept.spec.asks[a.ask]
        if f"{{{vary.name}}}" in template and vary.kind.schema.get("type") != "boolean" and rng.random() < 0.6:
            text = fill(rng, target, fixed=a.values, only=set(a.values), ask=a.ask, refs={vary.name: slot_said}).text
        elif rng.random() < 0.5 and vary.kind.schema.get("type") != "boolean":
            text = f"{a.text.rstrip('?')}, and the same for {vary.say_slot(rng, other)}" + ("?" if a.text.endswith("?") else "")
        else:
            text = f"{a.text.rstrip('?')}, and also {b.text}"
        fills, tools = [a, b], [target]
    else:  # two tools
        second = pools.tool(rng, domain if rng.random() < 0.5 else None)
        if second.concept.key == target.concept.key:
            second = pools.distractors(rng, 1, domain, {target.concept.key})[0]
        a, b = fill(rng, target), fill(rng, second)
        joins = ["{x}, and {y}", "{x}. Also, {y}", "{x} and {y}", "{x}; then {y}", "Two things: {x}, and {y}"]
        text = rng.choice(joins).format(x=a.text.rstrip("?").rstrip("."), y=b.text)
        fills, tools = [a, b], [target, second]
    others = pools.distractors(rng, rng.randint(0, 3), domain, {t.concept.key for t in tools})
    results = [simulate(rng, f.tool.concept) for f in fills]
    calls = [f.call(k) for k, f in enumerate(fills, start=1)]
    reply = " ".join(answer(rng, f, r) for f, r in zip(fills, results))
    msgs = [Message(role="user", content=wrap(rng, text, domain, [x for f in fills for x in f.said])), *call_turns(calls, results),
            Message(role="assistant", content=reply)]
    expected_calls = [{"name": f.tool.name, "arguments": f.allowed} for f in fills]
    return Example(idx, "parallel", f"parallel/{target.concept.key}/{a.ask}", msgs, expected=expected_calls, results=results,
                   tools=_offer(rng, [*tools, *others]))


def _followup(rng: random.Random, pools: Pools, f: Filled, result: dict[str, Any], msgs: list[Message], others: list[Tool],
              idx: str) -> Example:
    links = [(fld, b, p) for fld, b, p in LINKS.get(f.tool.concept.key, []) if b.key in pools.by_concept]
    if links and rng.random() < 0.75:  # pass a value of the result on
        fld, concept, pname = rng.choice(links)
        nxt = f.tool if concept.key == f.tool.concept.key else rng.choice(pools.by_concept[concept.key])  # one tool per concept offered
        ref = next(p for p, _, _ in nxt.params if p.name == pname).kind.ref
        ref = rng.choice(["the one you found", "that one", "it"]) if ref == "that one" else ref
        g = fill(rng, nxt, fixed={pname: result[fld]}, refs={pname: ref})
        text = rng.choice(FOLLOW_LEADS) + g.text[0].lower() + g.text[1:]
    else:  # the same again for another value: the earlier turn says which tool and the rest
        vary = rng.choice(_variable(f.tool, f) or [None])
        if vary is None:
            g, text = f, rng.choice(["Check that again, please.", "Can you run that once more?"])
        else:
            other = vary.kind.gen(rng)
            g = fill(rng, f.tool, fixed={**f.values, vary.name: other}, only=set(f.values), ask=f.ask)
            text = rng.choice(ELLIPSIS).format(v=vary.say_slot(rng, other)) if vary.kind.schema.get("type") != "boolean" else g.text
        nxt = f.tool
    r2 = simulate(rng, nxt.concept)
    text = text[0].upper() + text[1:]
    msgs = [*msgs, Message(role="user", content=text), *call_turns([g.call(2)], [r2]), Message(role="assistant", content=answer(rng, g, r2))]
    tools = [f.tool] + ([nxt] if nxt.name != f.tool.name else [])
    others = [t for t in others if t.concept.key not in {x.concept.key for x in tools}][:3]
    expected_calls = [{"name": f.tool.name, "arguments": f.allowed}, {"name": nxt.name, "arguments": g.allowed}]
    return Example(idx, "followup", f"followup/{f.tool.concept.key}>{nxt.concept.key}", msgs, expected=expected_calls, results=[result, r2],
                   tools=_offer(rng, [*tools, *others]))


def generate(split: str, n: int, seed: int = 0, kinds: dict[str, float] | None = None) -> list[Example]:
    """`n` open-world examples of a split; the same (split, n, seed, kinds) always gives the same ones.
    `kinds`: the shares of each kind (default `MIX`: the training one for train / validation)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    rng = random.Random(f"open-world/{seed}/{split}")
    pools = Pools(split, seed)
    mix = kinds or MIX["test" if split.startswith("test") else "train"]
    if unknown := set(mix) - set(MIX["train"]):
        raise ValueError(f"unknown example kinds {sorted(unknown)}; known: {', '.join(MIX['train'])}")
    kinds = rng.choices(list(mix), list(mix.values()), k=n)
    return [example(rng, pools, k, f"ow-{split}-{i:05d}") for i, k in enumerate(kinds)]


__all__ = ["HELDOUT_DOMAINS", "SPLITS", "generate", "fill", "Filled", "Pools", "typo"]

