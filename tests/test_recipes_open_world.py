"""Open-world data: deterministic, held-out families never in training, calls valid against their own
tools, honest refusals, parallel calls; the trainer's per-example tools compute what full sequences
do; the config continues the shipped default; a 2-step smoke train on open-world records."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from mmagent.recipes import general_chat
from mmagent.recipes.data import to_suite_line
from mmagent.recipes.open_world import generate
from mmagent.recipes.open_world_domains import DOMAINS, HELDOUT_DOMAINS
from mmagent.recipes.open_world_mix import build, chat_tools
from mmagent.recipes.open_world_tools import catalog, concepts

from mmagent.protocol.toolcall import function_of

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "recipes" / "suites" / "open-world-heldout-families.jsonl"
CONFIGS = ROOT / "recipes" / "configs"
BY_NAME = {t.name: t for t in catalog(0)}


def _fake_base(prompts: list[str]) -> list[str]:
    return [f"Here is a short answer to that. {p}" for p in prompts]


@lru_cache(maxsize=None)
def _split(split: str, n: int) -> tuple:
    return tuple(generate(split, n, 0))


def _dump(exs) -> list:
    return [(e.kind, e.tools, [m.model_dump() for m in e.messages], e.expected) for e in exs]


def _check(schema: dict, value, where: str) -> None:
    """Strict JSON-schema check of a call's value: types (bool is not int), enums, required, no extras."""
    t = schema.get("type")
    if "enum" in schema:
        assert value in schema["enum"], where
    if t == "string":
        assert isinstance(value, str), where
        if schema.get("format") == "date":
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value), where
        if "pattern" in schema:
            assert re.search(schema["pattern"], value), where
    elif t == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), where
        assert schema.get("minimum", value) <= value <= schema.get("maximum", value), where
    elif t == "number":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), where
    elif t == "boolean":
        assert isinstance(value, bool), where
    elif t == "array":
        assert isinstance(value, list) and value, where
        for x in value:
            _check(schema["items"], x, where)
    elif t == "object":
        assert isinstance(value, dict), where
        props = schema.get("properties", {})
        assert set(schema.get("required", [])) <= set(value) <= set(props), where
        for k, v in value.items():
            _check(props[k], v, f"{where}.{k}")


def _calls(ex) -> list:
    return [c for m in ex.messages if m.role == "assistant" for c in m.tool_calls]


def test_generator_is_deterministic_from_its_seed():
    assert _dump(generate("train", 120, 3)) == _dump(generate("train", 120, 3))
    assert _dump(generate("train", 120, 4)) != _dump(generate("train", 120, 3))
    assert [t.schema for t in catalog(1)] == [t.schema for t in catalog(1)]


def test_generator_does_not_depend_on_the_process_hash_seed():
    import os
    import subprocess
    import sys

    code = ("import hashlib, json; from mmagent.recipes.open_world import generate; from mmagent.recipes import natural; "
            "x = [(e.tools, [m.model_dump() for m in e.messages]) for e in generate('test-heldout-families', 60, 0)]; "
            "x += [[m.model_dump() for m in e.messages] for e in natural.generate(30, 0)]; "
            "print(hashlib.sha256(json.dumps(x, sort_keys=True).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": h}, capture_output=True, text=True,
                              check=True).stdout for h in ("1", "2")}
    assert len(digests) == 1


def test_thousands_of_tools_across_families_with_every_json_type():
    cat = catalog(0)
    assert len(cat) >= 2000 and len(DOMAINS) >= 20 and len({t.name for t in cat}) == len(cat)
    assert {len(t.params) for t in cat} >= set(range(0, 9))
    types = {json.dumps(p.kind.schema.get("items", {}).get("type")) + p.kind.schema["type"] for t in cat for p, _, _ in t.params}
    assert {'null' + k for k in ("string", "integer", "number", "boolean", "object")} <= types
    assert {'"number"array', '"string"array'} <= types
    assert any("enum" in p.kind.schema for t in cat for p, _, _ in t.params)
    assert any(d for t in cat for _, _, d in t.params)  # defaults declared
    styles = [r"^[a-z]+(_[a-z0-9]+)+$", r"^[a-z]+([A-Z][a-z0-9]*)+$", r"\.", r"-"]
    assert all(any(re.search(s, t.name) for t in cat) for s in styles)
    for c in concepts():
        assert not re.search(r"\d", c.spec.desc) and ". " not in c.spec.desc, c.key  # refusals quote it; the prompt shows one sentence


def test_heldout_families_never_appear_in_training():
    held = {t.name for t in catalog(0) if t.domain in HELDOUT_DOMAINS}
    assert held and len(HELDOUT_DOMAINS) == 3
    for split in ("train", "validation"):
        for ex in _split(split, 1500):
            names = {function_of(t)["name"] for t in ex.tools}
            assert not names & held, ex.id
            assert not any(d in ex.template for d in HELDOUT_DOMAINS)
    import random

    pick = chat_tools(0)
    rng = random.Random(0)
    for _ in range(200):
        assert not {function_of(t)["name"] for t in pick(rng) or []} & held
    test = _split("test-heldout-families", 200)
    assert {BY_NAME[function_of(t)["name"]].domain for ex in test for t in ex.tools} <= set(HELDOUT_DOMAINS)


@pytest.mark.parametrize("split", ["train", "test-heldout-families"])
def test_every_target_call_validates_against_its_own_tools_schema(split):
    from mmagent.tools.schema_tool import input_model

    for ex in _split(split, 1500 if split == "train" else 200):
        fns = {function_of(t)["name"]: function_of(t) for t in ex.tools}
        for call in _calls(ex):
            fn = fns[call.name]  # never a tool that was not offered
            params = fn["parameters"]
            _check(params, call.arguments, f"{ex.id}:{call.name}")
            input_model(fn["name"], params).model_validate(call.arguments)
        for e in ex.expected:  # the eval's allowed values name only the tool's parameters
            assert set(e["arguments"]) == set(fns[e["name"]]["parameters"]["properties"]), ex.id


def test_candidates_are_distinct_tools_and_only_the_target_serves_the_request():
    kinds = set()
    for ex in _split("train", 1500) + _split("test-heldout-families", 200):
        kinds.add(ex.kind)
        offered = [BY_NAME[function_of(t)["name"]] for t in ex.tools]
        assert 1 <= len(offered) <= 6 and len({t.name for t in offered}) == len(offered)
        assert len({t.concept.key for t in offered}) == len(offered), ex.id  # no two tools that do the same thing
        asked = ex.template.split("/")[1] + "/" + ex.template.split("/")[2].split(">")[0]
        served = {t.concept.key for t in offered}
        assert (asked in served) == (ex.kind != "irrelevance"), ex.id
        if ex.kind == "multiple":
            assert len(offered) >= 2
    assert kinds == {"single", "multiple", "irrelevance", "parallel", "followup"}


def test_irrelevance_calls_nothing_and_never_states_a_number():
    items = [e for e in _split("train", 1500) + _split("test-heldout-families", 200) if e.kind == "irrelevance"]
    assert len(items) > 100
    for ex in items:
        assert not _calls(ex) and not ex.expected
        reply = ex.messages[-1].content
        assert ex.messages[-1].role == "assistant" and reply and not re.search(r"\d", reply), reply


def test_parallel_items_make_two_calls_in_one_reply_and_followups_use_the_first_result():
    exs = _split("train", 1500)
    par = [e for e in exs if e.kind == "parallel"]
    assert par
    for ex in par:
        assert len(ex.messages[1].tool_calls) == 2 and len(ex.expected) == 2
        assert [m.role for m in ex.messages] == ["user", "assistant", "tool", "tool", "assistant"]
    linked = 0
    for ex in (e for e in exs if e.kind == "followup"):
        assert [m.role for m in ex.messages] == ["user", "assistant", "tool", "assistant"] * 2
        first = json.loads(ex.messages[2].content.removeprefix("<tool_response>").removesuffix("</tool_response>"))["result"]
        second = ex.messages[5].tool_calls[0].arguments
        linked += any(v == r for v in second.values() for r in first.values() if isinstance(r, str) and "-" in r)
    assert linked > 10  # ids found by the first call passed on by the second


def test_requests_say_values_in_many_ways_and_sometimes_omit_optional_ones():
    exs = _split("train", 1500)
    texts = " ".join(e.messages[0].content for e in exs)
    for pattern in [r"\b(January|March|July) \d{1,2}(st|nd|rd|th)?, 20\d\d", r"\b\d{1,2}(:\d\d)? ?(am|pm)\b", r"\b(two|three|four|five) ",
                    r"\d+ (km|kg|minutes)\b", r"\"[^\"]+\"", r"\w+, \w+ and \w+", r"\$\d"]:
        assert re.search(pattern, texts), pattern
    omitted = sum("" in v for e in exs for c in e.expected for v in c["arguments"].values())
    stated_optional = sum(v and "" not in v for e in exs for c in e.expected for k, v in c["arguments"].items()
                          if k not in (BY_NAME[c["name"]].schema["function"]["parameters"]["required"]))
    assert omitted > 200 and stated_optional > 200


def test_the_shipped_suite_is_the_generators_heldout_split():
    from mmagent.training.scoring import load_suite

    items = load_suite(SUITE)
    assert 180 <= len(items) <= 220
    assert {i.kind for i in items} == {"single", "multiple", "irrelevance", "parallel"}
    lines = [json.dumps(to_suite_line(e, [], []), ensure_ascii=False) for e in _split("test-heldout-families", 200)]
    assert SUITE.read_text().splitlines() == lines  # regenerate: python -m mmagent.recipes.open_world_mix --suite ...
    for it in items:
        assert it.tools and it.images == [] and (it.kind == "irrelevance") == (it.expected == [])


def test_self_distillation_runs_the_base_model_once_and_keeps_only_usable_targets(tmp_path):
    prompts = general_chat.general_prompts()
    cats = {p.category for p in prompts}
    assert cats == {"fact", "greeting", "writing", "translation", "arithmetic"} and len(prompts) >= 150
    cache = tmp_path / "cache.jsonl"
    calls = []

    def gen(batch):
        calls.append(len(batch))
        return _fake_base(batch)

    a = general_chat.distill(prompts[:20], cache, gen, batch=8)
    assert sum(calls) == 20 and len(cache.read_text().splitlines()) == 20

    def boom(batch):
        raise AssertionError("the cache should have answered")

    assert general_chat.distill(prompts[:20], cache, boom) == a
    sums = [p for p in prompts if p.category == "arithmetic"]
    assert general_chat.clean(sums[0], f"It is {sums[0].check}.") and general_chat.clean(sums[0], "It is 123456789.") is None
    assert general_chat.clean(prompts[0], "Mount Everest is the tallest. It stands at") == "Mount Everest is the tallest."
    assert general_chat.clean(prompts[0], '<tool_call>{"name": "x"}</tool_call>') is None


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    out = tmp_path_factory.mktemp("open-world")
    m = build(out, 0, n_open_world=60, n_train=40, n_validation=10, n_test=20, chat_cache=out / "chat.jsonl", chat_generator=_fake_base)
    return out, m


def test_the_mix_has_its_shares_and_the_records_the_trainer_reads(mix):
    out, m = mix
    assert m["train"]["by_source"] == {"open_world": 20, "builtin": 16, "chat": 4}
    recs = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert any("tools" in r for r in recs) and any("tools" not in r and r["images"] for r in recs)
    assert all((out / p).is_file() for r in recs for p in r["images"])
    again = build(out.parent / "again", 0, n_open_world=60, n_train=40, n_validation=10, n_test=20, chat_cache=out / "chat.jsonl",
                  chat_generator=_fake_base)
    assert (out.parent / "again" / "train.jsonl").read_text() == (out / "train.jsonl").read_text() and again["train"] == m["train"]


def test_own_tools_batches_compute_the_same_loss_as_full_sequences(mix):
    from mmagent.recipes.recipe_config import load_config
    from mmagent.recipes.tool_tuning import load_conversations
    from mmagent.training.backbone import build_backbone
    from mmagent.training.batching import make_batch, make_batches
    from mmagent.training.config import ToolTuningConfig
    from mmagent.training.data import encode_all, tool_schemas
    from mmagent.training.loss import AssistantLoss
    from mmagent.training.sequences import IGNORE, system_prefix

    out, _ = mix
    cfg = load_config(ToolTuningConfig, CONFIGS / "tools-tiny-cpu.yaml", [f"data.dir={out}", "max_len=4096"])
    bb = build_backbone(cfg)
    tools = tool_schemas()
    prefix = system_prefix(bb.tok, tools)
    data = encode_all(bb, load_conversations(cfg, "train", 40), tools, prefix)
    own, builtin = [s for s in data if s.head is not None][:4], [s for s in data if s.head is None][:3]
    assert len(own) == 4 and len(builtin) == 3
    loss_fn = AssistantLoss(bb.llm)
    with torch.no_grad():
        parts = make_batches(bb, prefix, builtin + own, cfg)
        assert len(parts) == 2
        got = [loss_fn(b.prefix, b.input_ids, b.labels, b.position_ids, b.attention_mask) for b, _ in parts]
        total, n = sum(float(x) for x, _ in got), sum(int(c) for _, c in got)
        ref, n_ref = 0.0, 0
        for s in builtin + own:  # each conversation alone, its whole sequence from the first token
            head = s.head if s.head is not None else prefix
            ids = torch.tensor([head + s.enc.ids])
            labels = torch.tensor([[IGNORE] * len(head) + s.enc.labels])[:, 1:]
            logits = bb.llm(input_ids=ids).logits[:, :-1]
            sel = labels != IGNORE
            ref += float(torch.nn.functional.cross_entropy(logits[sel].float(), labels[sel], reduction="sum"))
            n_ref += int(sel.sum())
        assert n == n_ref > 0
        assert total == pytest.approx(ref, rel=1e-4)
        # built-in-only micro-batches are one pass, exactly as before
        (b1, _), = make_batches(bb, prefix, builtin, cfg)
        b0, _ = make_batch(bb, prefix, builtin, cfg)
        assert torch.equal(b1.input_ids, b0.input_ids) and b1.prefix.tolist() == [prefix]


def test_open_world_config_continues_the_shipped_default():
    from mmagent.recipes.recipe_config import launch_command, load_config
    from mmagent.model.mmllm import CONFIG_FILE
    from mmagent.training.config import ToolTuningConfig

    path = CONFIGS / "tools-open-world.yaml"
    cfg = load_config(ToolTuningConfig, path)
    shipped = json.loads((ROOT / cfg.multimodal / CONFIG_FILE).read_text())
    assert cfg.adapter_name in shipped["adapters"] and cfg.resume and cfg.precision == "auto"
    assert 10 <= cfg.save_every <= 25
    cmd = launch_command(path)
    # the launch line builds the very folder the config trains on
    assert f"mmagent.recipes.open_world_mix --out {cfg.data.dir} " in cmd and "tools-open-world.yaml" in cmd


def test_mix_shares_are_checked():
    import argparse

    from mmagent.recipes.open_world_mix import parse_shares

    assert parse_shares("open_world=0.35,builtin=0.55,chat=0.1") == {"open_world": 0.35, "builtin": 0.55, "chat": 0.1}
    for bad in ("open_world=0.5,builtin=0.6,chat=0.1", "open_world=1", "open_world=0.5,builtin=x,chat=0.5", "open_world"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_shares(bad)


def test_kind_shares_choose_the_open_world_kinds_and_are_checked():
    from collections import Counter

    from mmagent.recipes.open_world_mix import check_shares
    from mmagent.recipes.open_world import MIX

    kinds = Counter(e.kind for e in generate("train", 200, seed=3, kinds={"irrelevance": 0.5, "parallel": 0.5}))
    assert set(kinds) == {"irrelevance", "parallel"} and 70 <= kinds["parallel"] <= 130
    assert [e.messages for e in generate("train", 5, seed=3)] == [e.messages for e in generate("train", 5, seed=3, kinds=MIX["train"])]
    with pytest.raises(ValueError, match="unknown example kinds"):
        generate("train", 5, kinds={"chitchat": 1.0})
    with pytest.raises(ValueError, match="fractions summing to 1"):
        check_shares({"single": 0.5, "multiple": 0.2, "irrelevance": 0.1, "parallel": 0.1, "followup": 0.0}, MIX["train"])


def test_two_step_smoke_train_on_open_world_records(mix, tmp_path):
    from mmagent.recipes.recipe_config import load_config
    from mmagent.recipes.tool_tuning import ToolTuningConfig, train

    out, _ = mix
    cfg = load_config(ToolTuningConfig, CONFIGS / "tools-tiny-cpu.yaml",
                      [f"data.dir={out}", "data.n_train=40", "data.n_validation=10", f"out={tmp_path}", "steps=2", "save_every=1"])
    result = train(cfg)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2] and all(r["loss"] > 0 for r in rows if "loss" in r)
    assert any("val_loss" in r for r in rows) and (result / "adapter_model.safetensors").is_file()
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step-00002"


@pytest.mark.slow
def test_two_processes_on_open_world_records_follow_the_single_process_curve(mix, tmp_path):
    """Ranks may run different numbers of passes (a micro-batch of both kinds is two); only the last syncs."""
    import os
    import subprocess
    import sys

    from mmagent.recipes.recipe_config import load_config
    from mmagent.recipes.tool_tuning import ToolTuningConfig, train

    out, _ = mix
    overrides = [f"data.dir={out}", "data.n_train=40", "data.n_validation=0", "steps=2", "batch_size=5", "grad_accum=3"]
    single = load_config(ToolTuningConfig, CONFIGS / "tools-tiny-cpu.yaml", [f"out={tmp_path / 'single'}", *overrides])
    train(single)
    script = tmp_path / "worker.py"
    script.write_text("import sys\nfrom mmagent.recipes import tool_tuning as tt\nfrom mmagent.recipes.recipe_config import load_config\n"
                      "tt.train(load_config(tt.ToolTuningConfig, sys.argv[1], sys.argv[2:]))\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
           str(CONFIGS / "tools-tiny-cpu.yaml"), f"out={tmp_path / 'ddp'}", *overrides]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def losses(d: Path) -> dict:
        return {r["step"]: r["loss"] for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines()) if "loss" in r}

    assert losses(tmp_path / "ddp") == pytest.approx(losses(single.out), rel=1e-5)
