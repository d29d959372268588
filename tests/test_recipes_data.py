"""The data generator: deterministic, splits that do not leak, calls that the real tools accept."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mmagent.recipes.data import CHAINS, COMPOSED_PAIRS, HELDOUT_PAIRS, composed_chain, generate, heldout_phrasings, to_record, write_split
from mmagent.training.scoring import load_suite

SUITES = Path(__file__).resolve().parents[1] / "recipes" / "suites"


def _dump(exs):
    return [[m.model_dump() for m in e.messages] for e in exs]


def test_generator_is_deterministic_from_its_seed():
    a, b = generate("train", 40, seed=3), generate("train", 40, seed=3)
    assert _dump(a) == _dump(b)
    assert [e.images[0].image.tobytes() for e in a if e.images] == [e.images[0].image.tobytes() for e in b if e.images]
    assert _dump(generate("train", 40, seed=4)) != _dump(a)


def test_unseen_phrasings_never_appear_in_train_or_validation():
    seen = {e.template for split in ("train", "validation") for e in generate(split, 300)}
    unseen = {e.template for e in generate("test-unseen-phrasings", 150)}
    assert unseen and not (seen & unseen)
    for intent in ("read_text", "generate_image+seed", "search_memory"):
        held = {f"{intent}/{i}" for i in heldout_phrasings(intent)}
        assert not (held & seen)


def test_training_only_phrasings_are_new_and_leave_the_test_splits_alone():
    from mmagent.recipes import phrasings as P

    for intent, extra in P.EXTRA_PHRASINGS.items():
        assert intent in P.PHRASINGS and not (set(extra) & set(P.PHRASINGS[intent])), intent
    assert not ({q for q, _ in P.EXTRA_UNSERVABLE} & {q for q, _ in P.UNSERVABLE})
    seen = {e.template for e in generate("train", 600)}
    assert any("/x" in t for t in seen) and any(t.startswith("unservable/x") for t in seen)
    assert not any("/x" in e.template for e in generate("test-unseen-phrasings", 150))


def test_unseen_combinations_are_tool_pairs_never_combined_in_training():
    def pairs(exs):
        return {tuple(c["name"] for c in e.expected) for e in exs if len(e.expected) >= 2}

    train, test = pairs(generate("train", 400)), pairs(generate("test-unseen-combinations", 60))
    assert test and not (train & test) and not ({p[::-1] for p in train} & test)
    assert test <= HELDOUT_PAIRS | {p[::-1] for p in HELDOUT_PAIRS}
    assert all(p in CHAINS for p in HELDOUT_PAIRS)


def test_composed_chains_use_the_first_result_and_never_a_held_out_pair():
    rng = random.Random(3)
    for pair in COMPOSED_PAIRS:
        ex = composed_chain(rng, pair, "x")
        assert [c["name"] for c in ex.expected] == list(pair) and ex.template.startswith("composed/")
        calls = [c for m in ex.messages for c in m.tool_calls]
        assert [m.role for m in ex.messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
        if "image" in ex.results[0]:  # a new image: the second call works on it, not on the attachment
            assert calls[1].arguments.get("image") == ex.results[0]["image"]
    assert not (set(COMPOSED_PAIRS) & (HELDOUT_PAIRS | {p[::-1] for p in HELDOUT_PAIRS}))


def test_mixture_covers_every_kind_and_every_tool():
    exs = generate("train", 600)
    assert {e.kind for e in exs} == {"single", "chain", "pair", "no_tool", "unservable"}
    from mmagent.tools.registry import default_registry

    called = {c.name for e in exs for m in e.messages for c in m.tool_calls}
    assert called == set(default_registry().names()) - {"speak"}
    assert all(not e.expected for e in exs if e.kind in ("no_tool", "unservable"))


def test_every_generated_call_validates_against_the_real_tool_schema():
    from mmagent.tools.registry import default_registry

    reg = default_registry()
    exs = generate("train", 200) + generate("test-unseen-combinations", 40)
    for e in exs:
        for m in e.messages:
            for c in m.tool_calls:
                reg.get(c.name).input_model.model_validate(c.arguments)  # raises on a wrong name/type


def test_written_records_and_suites_round_trip(tmp_path):
    exs = generate("test-unseen-phrasings", 12)
    path = write_split(exs, tmp_path, "unseen-phrasings", suite=True)
    items = load_suite(path)
    assert [i.id for i in items] == [e.id for e in exs]
    assert all((tmp_path / p).is_file() for i in items for p in i.images)
    rec = json.loads((write_split(exs[:2], tmp_path / "d", "train", suite=False)).read_text().splitlines()[0])
    assert rec["messages"][0]["role"] == "user" and rec == to_record(exs[0], rec["images"], rec["audio"])


@pytest.mark.parametrize("name", ["unseen-phrasings", "unseen-combinations"])
def test_shipped_suites_load_and_match_the_generator(name):
    items = load_suite(SUITES / f"{name}.jsonl")
    regenerated = generate(f"test-{name}", len(items), seed=0)
    assert [i.prompt for i in items] == [e.messages[0].content for e in regenerated]
    assert [[c.model_dump() for c in i.expected] for i in items] == [e.expected for e in regenerated]
    assert [i.results or [] for i in items] == [e.results for e in regenerated]  # the replayed results, memory tools' included


def test_every_built_in_tool_has_a_scenario_whose_simulated_results_fit_its_output_model():
    import dataclasses

    from mmagent.recipes.scenarios import SCENARIOS
    from mmagent.tools.registry import default_registry

    reg = default_registry()
    assert set(SCENARIOS) == set(reg.names()) - {"speak"}  # speak is opt-in (GPL extra) and never generated
    exs = generate("train", 600) + generate("test-unseen-combinations", 60) + generate("test-unseen-phrasings", 120)
    seen = set()
    for e in exs:
        for call, result in zip(e.expected, e.results):
            sc, model = SCENARIOS[call["name"]], reg.get(call["name"]).output_model
            seen.add(sc.name)
            assert model.model_validate(result).model_dump(mode="json") == result, sc.name  # every one, memory tools included
    assert seen == set(SCENARIOS)
    # A simulated result that breaks the contract raises instead of reaching the data.
    broken = dataclasses.replace(SCENARIOS["crop_image"], simulate=lambda a, d, x: {"image": "not-an-id", "width": 1, "height": 1})
    with pytest.raises(ValueError):
        broken.result({}, None, {})
    extra_field = dataclasses.replace(SCENARIOS["detect_faces"], simulate=lambda a, d, x: {"faces": [], "count": 0, "stray": 1})
    with pytest.raises(ValueError, match="round-trip"):
        extra_field.result({}, None, {})


def test_simulated_memory_results_look_like_what_the_real_memory_tools_return(tmp_path):
    import re

    from memory_fakes import FakeEmbedder

    from mmagent.media.artifacts import ArtifactStore
    from mmagent.memory.store import MemoryStore
    from mmagent.recipes.scenarios import MEMORY_SESSION, SCENARIOS
    from mmagent.tools.base import ToolContext
    from mmagent.tools.registry import default_registry

    reg = default_registry()
    note = "the wifi password is bluefish77"
    ctx = ToolContext(artifacts=ArtifactStore(tmp_path / "art", session=MEMORY_SESSION), memory=MemoryStore(tmp_path / "mem", FakeEmbedder()),
                      session=MEMORY_SESSION)
    try:
        real_r = reg.call("remember", {"text": note}, ctx).output
        real_s = reg.call("search_memory", {"query": "wifi password"}, ctx).output
    finally:
        ctx.memory.close()
    sim_r = SCENARIOS["remember"].result({"text": note}, None, {"memory_id": real_r["id"]})
    sim_s = SCENARIOS["search_memory"].result({"query": "wifi password"}, None, {"note": note, "memory_id": real_r["id"]})
    assert sim_r == real_r  # same id, modality and text
    real_hit, sim_hit = real_s["hits"][0], sim_s["hits"][0]
    assert list(sim_hit) == list(real_hit)  # same fields, in the real model's order
    assert {k: v for k, v in sim_hit.items() if k not in ("score", "created_at")} == {k: v for k, v in real_hit.items() if k not in ("score", "created_at")}
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"  # the store's created_at: UTC, to the second
    assert re.fullmatch(iso, real_hit["created_at"]) and re.fullmatch(iso, sim_hit["created_at"])
