"""Thousands of procedurally generated tools from the hand-written concepts of `open_world_domains`.

Each concept is varied into many tools the way real APIs differ: the name's style (snake_case,
camelCase, PascalCase, kebab-case, dotted and prefixed namespaces: `travel.searchFlights`,
`acme_search_flights`), its verb (`get` / `fetch` / `lookup`...), the parameters' names (the
concept's alternates, camelCased with the tool), which optional parameters exist, and whether
their defaults are declared. `catalog(seed)` is a pure function of the seed; every tool has a
name unique in the catalog and an OpenAI-style schema (`Tool.schema`).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mmagent.recipes.open_world_domains import DOMAINS, HELDOUT_DOMAINS, C, split_specs
from mmagent.recipes.open_world_values import Kind, kind

VERBS = {"get": ["get", "fetch", "lookup", "retrieve", "query"], "search": ["search", "find", "lookup"], "find": ["find", "search", "locate"],
         "create": ["create", "add", "new"], "calculate": ["calculate", "calc", "compute", "estimate"], "compute": ["compute", "calculate", "calc"],
         "list": ["list", "get", "show"], "send": ["send", "post", "dispatch"], "book": ["book", "reserve", "schedule"], "set": ["set", "update", "configure"],
         "convert": ["convert", "transform"], "schedule": ["schedule", "plan", "book"], "track": ["track", "trace", "get"], "delete": ["delete", "remove"],
         "log": ["log", "record", "add"], "read": ["read", "open", "get"], "estimate": ["estimate", "calc", "predict"], "play": ["play", "start"]}
# Stems that name a thing rather than an action: their tools may be called `get_<stem>`.
NOUN_STEMS = {"stock", "league", "player", "upcoming", "price", "element", "planet", "device", "air", "sun", "weather", "match", "course",
              "tire", "energy", "solar", "vaccine", "nutrition", "frequency", "speed", "molar", "radioactive", "daily", "weighted", "shipping",
              "fuel", "file", "visa", "compound", "food", "mortgage", "top", "travel", "greatest", "percentage"}
VENDORS = ["acme", "my", "hub", "pro", "smart", "open", "quick", "api"]
MAX_PARAMS = 8


@dataclass(frozen=True)
class Param:
    """One parameter of a concept: names, kind, optional/default, and how a request states it."""

    names: tuple[str, ...]  # canonical first, then the alternates other tools use
    kind: Kind
    required: bool
    default: Any = None
    has_default: bool = False
    clause: str = "{v}"

    @property
    def name(self) -> str:
        return self.names[0]

    def say_clause(self, rng: random.Random, value: Any) -> str:
        """The phrase that states `value` (a boolean's clause is "if true|if false")."""
        if self.kind.schema.get("type") == "boolean":
            yes, _, no = self.clause.partition("|")
            return yes if value else no
        return self.clause.format(v=self.kind.say(rng, value))

    def say_slot(self, rng: random.Random, value: Any) -> str:
        """The value inside an ask's own `{slot}`."""
        if self.kind.schema.get("type") == "boolean":
            return self.say_clause(rng, value)
        return self.kind.say(rng, value)


def parse_param(spec: str) -> Param:
    head, _, clause = spec.partition("@")
    names, _, rest = head.partition(":")
    default: Any = None
    has_default = False
    if "?=" in rest:
        rest, raw = rest.split("?=", 1)
        rest += "?"
        try:
            default = json.loads(raw)
        except json.JSONDecodeError:
            default = raw
        has_default = True
    required = not rest.endswith("?")
    k = kind(rest.rstrip("?"))
    return Param(tuple(names.split("|")), k, required, default, has_default, clause or k.clause)


@dataclass(frozen=True)
class Concept:
    domain: str
    spec: C
    params: tuple[Param, ...]
    returns: tuple[tuple[str, Kind], ...]

    @property
    def key(self) -> str:
        return f"{self.domain}/{self.spec.stem}"

    @property
    def task(self) -> str:
        """What the concept does, for a reply that declines it ("convert an amount of money ...")."""
        d = self.spec.desc.rstrip(".")
        return d[0].lower() + d[1:]


@lru_cache(maxsize=None)
def concepts() -> tuple[Concept, ...]:
    out = []
    for domain, specs in DOMAINS.items():
        for s in specs:
            params = tuple(parse_param(p) for p in s.params)
            returns = tuple((f.split(":", 1)[0], kind(f.split(":", 1)[1])) for f in split_specs(s.returns))
            for a in s.asks:
                unknown = set(re.findall(r"\{(\w+)\}", a)) - {p.name for p in params}
                if unknown:
                    raise ValueError(f"{domain}/{s.stem}: ask {a!r} names no parameter {sorted(unknown)}")
            out.append(Concept(domain, s, params, returns))
    return tuple(out)


@dataclass(frozen=True)
class Tool:
    """A generated tool: its concept, name, and the parameters it has (concept param -> its name here)."""

    concept: Concept
    name: str
    params: tuple[tuple[Param, str, bool], ...]  # (param, name in this tool, default declared)

    @property
    def domain(self) -> str:
        return self.concept.domain

    def arg_name(self, canonical: str) -> str:
        return next(n for p, n, _ in self.params if p.name == canonical)

    def has(self, canonical: str) -> bool:
        return any(p.name == canonical for p, _, _ in self.params)

    @property
    def schema(self) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for p, n, with_default in self.params:
            prop = dict(p.kind.schema)
            prop["description"] = n.replace("_", " ") if not any(ch.isupper() for ch in n) else re.sub(r"(?<!^)([A-Z])", r" \1", n).lower()
            if with_default:
                prop["default"] = p.default
            props[n] = prop
        required = [n for p, n, _ in self.params if p.required]
        params: dict[str, Any] = {"type": "object", "properties": props, "required": required}
        return {"type": "function", "function": {"name": self.name, "description": self.concept.spec.desc, "parameters": params}}


def _camel(words: list[str], upper: bool = False) -> str:
    s = words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])
    return s[:1].upper() + s[1:] if upper else s


def _name(rng: random.Random, c: Concept) -> tuple[str, bool]:
    """A tool name in one of the styles real APIs use, and whether its parameters are camelCased."""
    words = c.spec.stem.split("_")
    if words[0] in VERBS and rng.random() < 0.5:
        words = [rng.choice(VERBS[words[0]])] + words[1:]
    elif words[0] in NOUN_STEMS and rng.random() < 0.4:
        words = ["get"] + words
    style = rng.choices(["snake", "camel", "dotted", "dotted_camel", "vendor", "pascal", "kebab"], [30, 18, 20, 12, 10, 5, 5])[0]
    ns = rng.choice([c.domain, c.domain[:4], c.domain.replace("_", ""), rng.choice(VENDORS) + "_" + c.domain])
    if style == "snake":
        return "_".join(words), False
    if style == "camel":
        return _camel(words), True
    if style == "pascal":
        return _camel(words, upper=True), True
    if style == "kebab":
        return "-".join(words), False
    if style == "vendor":
        return rng.choice(VENDORS) + "_" + "_".join(words), False
    if style == "dotted":
        return f"{ns}.{'_'.join(words)}", False
    return f"{ns.replace('_', '')}.{_camel(words)}", True


def make_tool(rng: random.Random, c: Concept) -> Tool:
    name, camel = _name(rng, c)
    chosen = []
    optional = [p for p in c.params if not p.required]
    keep = [p.name for p in optional if rng.random() < 0.7]  # lists: draws never follow hash order
    room = MAX_PARAMS - sum(p.required for p in c.params)
    keep = sorted(keep, key=lambda n: rng.random())[:room]
    for p in c.params:
        if not p.required and p.name not in keep:
            continue
        n = p.names[0] if rng.random() < 0.6 else rng.choice(p.names)
        if camel:
            n = _camel(n.split("_"))
        chosen.append((p, n, p.has_default and rng.random() < 0.85))
    if len({n for _, n, _ in chosen}) < len(chosen):  # two alternates collided: fall back to canonical names
        chosen = [(p, p.name, d) for p, _, d in chosen]
    return Tool(c, name[:64], tuple(chosen))


VARIANTS = 26  # tools per concept: ~2,900 in all


@lru_cache(maxsize=8)
def catalog(seed: int = 0) -> tuple[Tool, ...]:
    """Every generated tool (names unique), deterministic from the seed."""
    rng = random.Random(f"open-world-tools/{seed}")
    out: list[Tool] = []
    names: set[str] = set()
    for c in concepts():
        made = 0
        for _ in range(VARIANTS * 4):
            t = make_tool(rng, c)
            if t.name in names:
                continue
            names.add(t.name)
            out.append(t)
            made += 1
            if made == VARIANTS:
                break
    return tuple(out)


def split_of(domain: str) -> str:
    """'test' for a held-out family, else 'train'."""
    return "test" if domain in HELDOUT_DOMAINS else "train"


def tools_of(split: str, seed: int = 0) -> tuple[Tool, ...]:
    """The tools a split may use in any role: training never sees a held-out family's tool."""
    return tuple(t for t in catalog(seed) if split_of(t.domain) == split)
