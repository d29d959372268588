"""The open-world training mix and its CLI: `python -m mmagent.recipes.open_world_mix --out data/open-world --seed 0`.

Writes under `--out`:
    train.jsonl, validation.jsonl   the mix the trainer reads (`data.dir`): open-world ~50%, built-in
                                    ~40% (`recipes/data.py` + natural phrasings, images under media/),
                                    self-distilled general chat ~10%; interleaved at random so any
                                    first n lines hold about the same shares
    open-world-train.jsonl          all generated open-world training conversations (--n-open-world)
    open-world-validation.jsonl
    test-heldout-families.jsonl     the held-out families' test split, eval-suite format (also to --suite)
    manifest.json                   counts by source and kind, the held-out families, the seeds
Records are `recipes/data.py` training lines; an open-world or chat record also holds its "tools"
(the trainer renders its system turn with them), a closing record `"whole": true` (never shortened).
Everything is deterministic from the seeds; only chat targets missing from the cache need the base
model (`general_chat.distill`; `--no-distill` leaves those prompts out instead).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from mmagent.recipes import data as builtin
from mmagent.recipes import general_chat, natural, open_world
from mmagent.recipes.data import Example, save_media, to_record, to_suite_line
from mmagent.recipes.open_world_domains import HELDOUT_DOMAINS
from mmagent.recipes.open_world_tools import catalog, tools_of
from mmagent.tools.builtins import BUILTIN_NAMES

SHARES = {"open_world": 0.5, "builtin": 0.4, "chat": 0.1}
SHIPPED_SHARES = {"open_world": 0.55, "builtin": 0.3, "chat": 0.15}  # the shipped open-world adapter's (v4) mix
NATURAL_SHARE = 0.35  # of the built-in part: natural phrasings; the rest is `recipes/data.py` as trained before
CHAT_WITH_OPEN_TOOLS = 0.6  # chat records offered open-world tools (else the built-ins)
# Of the open-world records: also offered 1-3 built-in tools beside their own, as an agent that has both offers
# them (tool retrieval lets a built-in through when it fits the request too). None of them serves an open-world
# request, so the target stays the same: the adapter learns to pass over a built-in (v4 called generate_image or
# remember on 82% of the held-out families' no-tool requests in that case).
BUILTIN_OFFER = 0.0
DEFAULT_SUITE = Path(__file__).resolve().parent / "suites" / "open-world-heldout-families.jsonl"


def _record(ex: Example, root: Path) -> dict[str, Any]:
    rec = to_record(ex, *save_media(ex, root)) if ex.images or ex.audio else to_record(ex, [], [])
    if ex.kind == "natural_closing":
        rec["whole"] = True
    return rec


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def _interleave(rng: random.Random, parts: dict[str, list[Example]]) -> list[tuple[str, Example]]:
    labels = [k for k, v in parts.items() for _ in v]
    rng.shuffle(labels)
    its = {k: iter(v) for k, v in parts.items()}
    return [(k, next(its[k])) for k in labels]


def _counts(n: int, shares: dict[str, float]) -> dict[str, int]:
    out = {k: round(n * s) for k, s in shares.items()}
    out["open_world"] += n - sum(out.values())
    return out


def check_shares(shares: dict[str, float], parts: dict[str, float] = SHARES) -> dict[str, float]:
    """Fractions of a whole: exactly the keys of `parts` (the mix's: SHARES), each in [0, 1], summing to 1."""
    if set(shares) != set(parts) or any(not 0 <= v <= 1 for v in shares.values()) or abs(sum(shares.values()) - 1) > 1e-6:
        raise ValueError(f"shares must give {sorted(parts)} as fractions summing to 1, got {shares}")
    return dict(shares)


def parse_fractions(text: str) -> dict[str, float]:
    """`a=0.35,b=0.65` -> {"a": 0.35, "b": 0.65} (unchecked)."""
    try:
        return {k.strip(): float(v) for k, v in (part.split("=", 1) for part in text.split(",") if part.strip())}
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected name=fraction,name=fraction...: {e}") from None


def parse_shares(text: str) -> dict[str, float]:
    """`open_world=0.35,builtin=0.55,chat=0.1` -> a checked shares dict."""
    try:
        return check_shares(parse_fractions(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def chat_tools(seed: int):
    pools = open_world.Pools("train", seed)

    def pick(rng: random.Random) -> list[dict] | None:
        if rng.random() >= CHAT_WITH_OPEN_TOOLS:
            return None
        tools = pools.distractors(rng, rng.randint(1, 5), rng.choice(pools.domains), set())
        return [t.schema for t in tools]

    return pick


def offer_builtins(examples: list[Example], share: float, seed: int) -> list[Example]:
    """A `share` of `examples` also offered 1-3 built-in tools, shuffled in among their own."""
    if share <= 0:
        return examples
    from mmagent.training.data import tool_schemas

    schemas = [s for s in tool_schemas() if s["function"]["name"] in BUILTIN_NAMES]
    rng = random.Random(f"builtin-offer/{seed}")
    out = []
    for ex in examples:
        if ex.tools is not None and rng.random() < share:
            tools = ex.tools + rng.sample(schemas, rng.randint(1, 3))
            rng.shuffle(tools)
            ex = replace(ex, tools=tools)
        out.append(ex)
    return out


def build(out: Path, seed: int = 0, *, n_open_world: int = 5000, n_train: int = 2400, n_validation: int = 64, n_test: int = 200,
          builtin_seed: int = 5, shares: dict[str, float] | None = None, natural_share: float = NATURAL_SHARE, chat_cache: Path = general_chat.DEFAULT_CACHE, chat_generator: general_chat.Generator | None = None,
          distill: bool = True, suite: Path | None = None, builtin_offer: float = BUILTIN_OFFER,
          kinds: dict[str, float] | None = None) -> dict[str, Any]:
    """Writes the folder described in the module docstring; returns the manifest. `kinds`: the
    open-world part's shares of each kind (default `open_world.MIX["train"]`)."""
    out = Path(out)
    shares = check_shares(shares or SHARES)
    kinds = check_shares(kinds, open_world.MIX["train"]) if kinds else None
    rng = random.Random(f"open-world-mix/{seed}")
    ow = {s: offer_builtins(open_world.generate(s, n, seed, kinds), builtin_offer, seed) for s, n in (("train", n_open_world), ("validation", max(n_validation, 64)))}
    test = open_world.generate("test-heldout-families", n_test, seed)
    _write(out / "open-world-train.jsonl", [to_record(e, [], []) for e in ow["train"]])
    _write(out / "open-world-validation.jsonl", [to_record(e, [], []) for e in ow["validation"]])
    suite_lines = [to_suite_line(e, [], []) for e in test]
    _write(out / "test-heldout-families.jsonl", suite_lines)
    if suite is not None:
        _write(Path(suite), suite_lines)

    prompts = general_chat.general_prompts()
    if distill:
        answers = general_chat.distill(prompts, chat_cache, chat_generator)
    else:  # only what the cache already holds
        answers = {}
        if Path(chat_cache).is_file():
            answers = {r["prompt"]: r["answer"] for r in map(json.loads, Path(chat_cache).read_text().splitlines()) if r.get("model") == general_chat.BASE_MODEL}
    pairs = general_chat.targets(prompts, answers)
    held = set(random.Random(f"chat-validation/{seed}").sample(range(len(pairs)), len(pairs) // 10)) if len(pairs) >= 10 else set()
    chat_pairs = {"train": [p for i, p in enumerate(pairs) if i not in held], "validation": [p for i, p in enumerate(pairs) if i in held] or pairs}

    manifest: dict[str, Any] = {"seed": seed, "builtin_seed": builtin_seed, "heldout_domains": list(HELDOUT_DOMAINS),
                                "tools_in_catalog": len(catalog(seed)), "training_tools": len(tools_of("train", seed)),
                                "heldout_tools": len(tools_of("test", seed)), "chat_prompts_kept": len(pairs), "chat_prompts": len(prompts),
                                "shares": shares, "natural_share": natural_share, "builtin_offer": builtin_offer,
                                "kinds": kinds or open_world.MIX["train"]}
    pick_tools = chat_tools(seed)
    for split, n in (("train", n_train), ("validation", n_validation)):
        c = _counts(n, shares)
        n_nat = round(c["builtin"] * natural_share)
        bseed = builtin_seed if split == "train" else builtin_seed + 1000
        parts = {"open_world": (ow[split])[: c["open_world"]],
                 "builtin": builtin.generate(split, c["builtin"] - n_nat, bseed) + natural.generate(n_nat, bseed),
                 "chat": general_chat.chat_examples(random.Random(f"chat/{seed}/{split}"), c["chat"], chat_pairs[split], pick_tools, f"chat-{split}")}
        if len(parts["open_world"]) < c["open_world"]:
            raise ValueError(f"--n-open-world {n_open_world} is below the {c['open_world']} open-world records {split} needs")
        rows = _interleave(rng, parts)
        _write(out / f"{split}.jsonl", [_record(e, out) for _, e in rows])
        manifest[split] = {"n": len(rows), "by_source": dict(Counter(k for k, _ in rows)), "by_kind": dict(sorted(Counter(e.kind for _, e in rows).items()))}
    manifest["open_world_train"] = dict(sorted(Counter(e.kind for e in ow["train"]).items()))
    manifest["test-heldout-families"] = {"n": len(test), "by_kind": dict(sorted(Counter(e.kind for e in test).items())),
                                         "domains": dict(sorted(Counter(e.template.split("/")[1] for e in test).items()))}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def replay_examples(split: str, n: int, seed: int = 0) -> list[Example]:
    """Base data of the open-world adapter for a learning round's replay buffer (`mmagent learn` on its slot,
    `continual/adapter_slots.py`): open-world and built-in examples in the shipped mix's proportions (0.55 : 0.3)."""
    n_ow = round(n * SHIPPED_SHARES["open_world"] / (SHIPPED_SHARES["open_world"] + SHIPPED_SHARES["builtin"]))
    parts = {"open_world": open_world.generate(split, n_ow, seed), "builtin": builtin.generate(split, n - n_ow, seed)}
    return [e for _, e in _interleave(random.Random(f"replay/{seed}/{split}"), parts)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the open-world tool-calling data, the training mix and the held-out-families suite.")
    ap.add_argument("--out", type=Path, default=Path("data/open-world"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-open-world", type=int, default=5000, help="open-world training conversations generated (open-world-train.jsonl)")
    ap.add_argument("--n-train", type=int, default=2400, help="records of the training mix (train.jsonl)")
    ap.add_argument("--n-validation", type=int, default=64)
    ap.add_argument("--n-test", type=int, default=200, help="items of the held-out-families suite")
    ap.add_argument("--builtin-seed", type=int, default=5, help="seed of the built-in part (stages 1-5 of the default used 0-4)")
    ap.add_argument("--shares", type=parse_shares, default=dict(SHARES), help="fractions of the mix, e.g. open_world=0.35,builtin=0.55,chat=0.1")
    ap.add_argument("--natural-share", type=float, default=NATURAL_SHARE, help="of the built-in part: natural phrasings (the rest is recipes/data.py)")
    ap.add_argument("--builtin-offer", type=float, default=BUILTIN_OFFER, help="of the open-world records: also offered 1-3 built-in tools")
    ap.add_argument("--chat-cache", type=Path, default=general_chat.DEFAULT_CACHE)
    ap.add_argument("--no-distill", action="store_true", help="never load the base model: leave out chat prompts missing from the cache")
    ap.add_argument("--kinds", type=parse_fractions, default=None, help="the open-world part's kinds, e.g. single=0.12,multiple=0.3,"
                    "irrelevance=0.22,parallel=0.22,followup=0.14 (default: recipes/open_world.py MIX)")
    ap.add_argument("--suite", type=Path, default=None, help="also write the held-out suite here (recipes/suites/open-world-heldout-families.jsonl)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    m = build(a.out, a.seed, n_open_world=a.n_open_world, n_train=a.n_train, n_validation=a.n_validation, n_test=a.n_test,
              builtin_seed=a.builtin_seed, shares=a.shares, natural_share=a.natural_share, chat_cache=a.chat_cache, distill=not a.no_distill, suite=a.suite,
              builtin_offer=a.builtin_offer, kinds=a.kinds)
    print(json.dumps({k: m[k] for k in ("train", "validation", "test-heldout-families", "heldout_domains")}, indent=1))


if __name__ == "__main__":
    main()
