"""Reliability of the adapter registry and of serving promoted versions, probed as a user hits them.

1. A model given by name (`mmagent run --model X`, `Agent(model="...")`) serves the promoted
   version, checked through real `mmagent` processes on a tiny composed MM-LLM saved to a folder.
7. A version that does not load is refused by promote and, if it still ends up serving, sessions
   fall back to the previous good version and say so; a corrupt `current` pointer leaves
   `adapters list | promote | rollback` working.
8. Killed writers leave no litter after the registry is opened, temp folders never list, and the
   rollback history stays bounded and free of duplicates.
Then a kill loop: a process looping add / promote / rollback is SIGKILLed at random points; after
each kill the registry opens, lists, is clean, serves a version that loads, and lost nothing.
Run with -s to see the kill loop's counts.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from continual_fakes import lora_folder
from typer.testing import CliRunner

from mmagent.continual.registry import MAX_HISTORY, AdapterRegistry, RegistryError
from mmagent.model import lora

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, MMAGENT_HOME=str(home), OMP_NUM_THREADS="1", MMAGENT_THREADS="1", HF_HUB_OFFLINE="1")


def _mmagent(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmagent.cli", *args], capture_output=True, text=True, env=_env(home),
                          timeout=300, cwd=REPO)


# -- a tiny composed MM-LLM that `load_chat_model` loads from a folder, like any saved model -------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """llm/ (a 2-layer Llama + BPE tokenizer), enc/ (a 2-layer CLIP tower), model/ (MMLLM.save_pretrained
    with its shipped adapter `tools`), and real LoRA adapters for that LLM made on demand."""
    from tiny_mmllm import tiny_tokenizer
    from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

    from mmagent.model.encoders import load_encoder
    from mmagent.model.mmllm import MMLLM, MMLLMConfig

    root = tmp_path_factory.mktemp("tiny-composed")
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok) + 1, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                                       tie_word_embeddings=True, pad_token_id=0)).eval()
    llm.save_pretrained(root / "llm")
    tok.save_pretrained(root / "llm")
    CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     image_size=32, patch_size=8)).save_pretrained(root / "enc")
    mm = MMLLM(MMLLMConfig(llm=str(root / "llm"), encoder=str(root / "enc")), llm, tok, load_encoder(str(root / "enc")))
    settings = lora.LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    mm.add_adapter("tools", settings)
    mm.save_pretrained(root / "model")
    made: dict[int, Path] = {}

    def adapter(seed: int) -> Path:
        """A LoRA adapter for the tiny LLM with random (non-zero) B, so each version changes the model."""
        if seed not in made:
            name = f"a{seed}"
            lora.add_adapter(mm.llm, name, settings)
            g = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for n, p in mm.llm.named_parameters():
                    if f"lora_B.{name}." in n:
                        p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            made[seed] = lora.save_adapter(mm.llm, name, root / "adapters-src" / name)
        return made[seed]

    return SimpleNamespace(model=root / "model", llm=mm.llm, adapter=adapter)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# -- 1. a model given by name serves the promoted version ------------------------------------------


def test_cli_run_with_a_model_by_name_serves_the_promoted_version(tiny, tmp_path):
    """`mmagent adapters promote v0002` then `mmagent run --model <folder>`, both real processes:
    the turn's adapter is v0002, not the model's shipped `tools`."""
    home = tmp_path / "home"
    reg = AdapterRegistry(home / "adapters")
    reg.add(tiny.adapter(1), method="replay")
    reg.add(tiny.adapter(2), method="replay")
    promoted = _mmagent("adapters", "promote", "v0002", home=home)
    assert promoted.returncode == 0, promoted.stderr
    run = _mmagent("run", "hi", "--model", str(tiny.model), "--json", "--free", "--max-steps", "1", "--tool", "read_text", home=home)
    assert run.returncode in (0, 3), run.stderr  # 3: the random model used its one step without answering
    out = json.loads(run.stdout)
    assert [s["adapter"] for s in out["trace"]] == ["v0002"]
    shown = _mmagent("turns", "show", out["turn_id"], "--json", home=home)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["adapter"] == "v0002"


def test_agent_given_a_spec_serves_the_promoted_version_per_session(tiny, tmp_path):
    from mmagent.agent import Agent

    reg = AdapterRegistry(tmp_path / "adapters")
    v1 = reg.add(tiny.adapter(1)).version
    v2 = reg.add(tiny.adapter(2)).version
    reg.promote(v1)
    with Agent(model=str(tiny.model), tools=["read_text"], adapters=reg, max_steps=1, max_new_tokens=4, constrained=False,
               checkpoint=tmp_path / "s.sqlite", log=tmp_path / "log.sqlite") as agent:
        first = agent.run("hi", session="a")
        reg.promote(v2)
        second = agent.run("hi", session="b")
        first_again = agent.run("hi again", session="a")  # a running session keeps its version
        reg.rollback()
        reg.rollback()  # nothing promoted: the model's own shipped adapter again
        base = agent.run("hi", session="c")
        got = [agent.log.turn(r.turn_id).adapter for r in (first, second, first_again, base)]
    assert got == [v1, v2, v1, "tools"]


# -- 7. a version that does not load ------------------------------------------------------------------


def test_promote_refuses_a_version_that_does_not_load(tmp_path, monkeypatch):
    from mmagent.cli.app import app

    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    reg = AdapterRegistry(tmp_path / "adapters")
    good = reg.add(lora_folder(tmp_path / "good")).version
    truncated = reg.add(lora_folder(tmp_path / "trunc", 1)).version
    _truncate(reg.adapter_path(truncated) / "adapter_model.safetensors")
    nan = lora_folder(tmp_path / "nan", 2)
    from safetensors.torch import load_file, save_file

    t = load_file(str(nan / "adapter_model.safetensors"))
    save_file({k: v * float("nan") for k, v in t.items()}, str(nan / "adapter_model.safetensors"))
    nan_v = reg.add(nan).version
    no_weights = lora_folder(tmp_path / "nw", 3)
    (no_weights / "adapter_model.safetensors").unlink()
    no_weights_v = reg.add(no_weights).version
    reg.promote(good)
    for version, why in [(truncated, "does not load"), (nan_v, "not finite"), (no_weights_v, "adapter_model.safetensors")]:
        with pytest.raises(RegistryError, match=why):
            reg.promote(version)
        r = runner.invoke(app, ["adapters", "promote", version])
        assert r.exit_code == 2 and why in r.output, r.output
    assert reg.serving().version == good and reg.pointer().previous == []


def test_a_serving_version_that_fails_to_load_falls_back_to_the_previous_good_one(tiny, tmp_path, caplog):
    """A truncated safetensors that got to serve (promoted, then damaged): sessions run on the
    previous good version, with a warning naming both; never a SafetensorError out of `run`."""
    from mmagent.agent import Agent

    reg = AdapterRegistry(tmp_path / "adapters")
    v1 = reg.add(tiny.adapter(1)).version
    v2 = reg.add(tiny.adapter(2)).version
    reg.promote(v1)
    reg.promote(v2)
    _truncate(reg.adapter_path(v2) / "adapter_model.safetensors")

    def agent():
        return Agent(model=str(tiny.model), tools=["read_text"], adapters=reg, max_steps=1, max_new_tokens=4, constrained=False,
                     checkpoint=tmp_path / "s.sqlite", log=tmp_path / "log.sqlite")

    def warnings():
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    with caplog.at_level(logging.WARNING, logger="mmagent"), agent() as a:
        turns = [a.run("hi", session=s) for s in ("a", "b")]
        assert [a.log.turn(t.turn_id).adapter for t in turns] == [v1, v1]
        assert v2 not in a.model.model.adapters  # no half-loaded adapter left behind to serve later
        said = warnings()
        assert len(said) == 1 and v2 in said[0] and v1 in said[0] and "SafetensorError" in said[0], said  # once
    caplog.clear()
    _truncate(reg.adapter_path(v1) / "adapter_model.safetensors")  # a new process: no promoted version loads
    with caplog.at_level(logging.WARNING, logger="mmagent"), agent() as a:
        last = a.run("hi", session="c")
        assert a.log.turn(last.turn_id).adapter == "tools"  # the model's own shipped adapter
        assert sorted(a.model.model.adapters) == ["tools"] and v1 in warnings()[0] and v2 in warnings()[0]


def test_a_corrupt_pointer_leaves_list_promote_and_rollback_working(tmp_path, monkeypatch):
    from mmagent.cli.app import app

    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    reg = AdapterRegistry(tmp_path / "adapters")
    for i in range(3):
        reg.add(lora_folder(tmp_path / f"a{i}", i))
    reg.promote("v0001")
    reg.promote("v0002")
    reg.pointer_file.write_text('{"version": "v00')  # torn / edited by hand
    listed = runner.invoke(app, ["adapters", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    out = json.loads(listed.stdout)
    assert out["serving"] == "v0002" and "corrupt" in out["pointer_problem"]  # from the pointer's mirror copy
    assert "corrupt" in runner.invoke(app, ["adapters", "list"]).output
    back = runner.invoke(app, ["adapters", "rollback", "--json"])
    assert back.exit_code == 0, back.output
    assert json.loads(back.stdout)["serving"] == "v0001" and reg.read_pointer().problem is None

    for f in (reg.pointer_file, reg.mirror_file):  # both copies gone bad: the base serves until a promote
        f.write_bytes(b"\x00\xff garbage")
    listed = runner.invoke(app, ["adapters", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["serving"] is None, listed.output
    r = runner.invoke(app, ["adapters", "rollback"])
    assert r.exit_code == 0 and "base model" in r.output, r.output
    for f in (reg.pointer_file, reg.mirror_file):
        f.write_text("[]")
    r = runner.invoke(app, ["adapters", "promote", "v0003", "--json"])
    assert r.exit_code == 0, r.output
    assert reg.serving().version == "v0003" and reg.read_pointer().problem is None


# -- 8. litter, listings, history -----------------------------------------------------------------------


def test_opening_the_registry_removes_what_killed_writers_left(tmp_path):
    root = tmp_path / "adapters"
    reg = AdapterRegistry(root)
    reg.add(lora_folder(tmp_path / "a"))
    reg.promote("v0001")
    (root / ".current.x1y2.tmp").write_text('{"version": "v00')  # a killed promote
    (root / ".current.bak.x1y2.tmp").write_text("")
    partial = root / "versions" / ".v0002.abc123"  # a killed add, killed after writing version.json
    (partial / "adapter").mkdir(parents=True)
    (partial / "version.json").write_text(json.dumps({"version": "v0002"}))
    (root / "versions" / "v0001" / ".version.json.q9.tmp").write_text("{")  # a killed update_metrics
    assert [r.version for r in reg.list()] == ["v0001"]  # a temp folder never lists, even before cleanup
    reopened = AdapterRegistry(root)
    litter = [p for p in [*root.iterdir(), *(root / "versions").iterdir(), *(root / "versions" / "v0001").iterdir()]
              if p.name.startswith(".") and p.name != ".lock"]
    assert litter == []
    assert [r.version for r in reopened.list()] == ["v0001"] and reopened.serving().version == "v0001"
    assert reopened.add(lora_folder(tmp_path / "b", 1)).version == "v0002"


def test_opening_spares_the_temp_folder_of_a_live_writer(tmp_path):
    """Another process opening the registry (a new `mmagent run`) must not delete an add in progress."""
    root = tmp_path / "adapters"
    src = lora_folder(tmp_path / "a")
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import shutil, sys, time
        from mmagent.continual.registry import AdapterRegistry
        copy = shutil.copytree
        def slow(*a, **k):
            out = copy(*a, **k)
            print("copying", flush=True)
            time.sleep(2)
            return out
        shutil.copytree = slow
        print(AdapterRegistry({str(root)!r}).add({str(src)!r}).version, flush=True)
    """)], stdout=subprocess.PIPE, text=True, env=_env(tmp_path), cwd=REPO)
    assert child.stdout.readline().strip() == "copying"
    AdapterRegistry(root)  # opening cleans only what no live writer holds
    assert [p.name.split(".")[1] for p in (root / "versions").iterdir()] == ["v0001"]
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and out.strip() == "v0001"
    assert [r.version for r in AdapterRegistry(root).list()] == ["v0001"]


def test_rollback_history_is_bounded_and_has_no_duplicates(tmp_path):
    reg = AdapterRegistry(tmp_path)
    for i in range(3):
        reg.add(lora_folder(tmp_path / f"a{i}", i))
    reg.pointer_file.write_text(json.dumps({"version": "v0001", "previous": ["v0002", "v0001"] * 326}))  # as in the issue
    for v in ["v0002", "v0003"] * 40 + ["v0001"]:
        reg.promote(v)
    ptr = reg.pointer()
    assert ptr.version == "v0001" and ptr.previous == ["v0003", "v0002"]
    assert len(reg.pointer_file.read_text()) < 200
    assert reg.rollback().version == "v0003" and reg.rollback().version == "v0002" and reg.rollback() is None
    for i in range(3, MAX_HISTORY + 8):
        reg.add(lora_folder(tmp_path / f"a{i}", i))
    for rec in reg.list():
        reg.promote(rec.version)
    ptr = reg.pointer()
    assert len(ptr.previous) == MAX_HISTORY and len(set(ptr.previous)) == MAX_HISTORY and ptr.version not in ptr.previous


# -- the kill loop ------------------------------------------------------------------------------------------

CHILD = """
import json, os, random, sys
from pathlib import Path
import torch, safetensors.torch  # loaded before "ready": the kills land in registry work, not imports
from mmagent.continual.registry import AdapterRegistry

root, src, journal, seed = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
j = open(journal, "a", buffering=1)

def note(**kw):
    j.write(json.dumps(kw) + "\\n")
    j.flush()
    os.fsync(j.fileno())

reg = AdapterRegistry(root)
print("ready", flush=True)
while True:
    op = rng.choice(["add", "add", "promote", "promote", "promote", "rollback"])
    versions = [r.version for r in reg.list()]
    if op == "add" or not versions:
        note(op="begin", what="add")
        note(op="done", what="add", version=reg.add(src, method="replay").version)
    elif op == "promote":
        v = rng.choice(versions)
        note(op="begin", what="promote", expect=v)
        reg.promote(v)
        note(op="done", what="promote", state=v)
    else:
        ptr = reg.pointer()
        if ptr is None:
            continue
        expect = ptr.previous[0] if ptr.previous else None
        note(op="begin", what="rollback", expect=expect)
        reg.rollback()
        note(op="done", what="rollback", state=expect)
"""


def _journal(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut by the kill
            pass
    return out


def test_kill_loop_add_promote_rollback(tiny, tmp_path):
    kills = int(os.environ.get("MMAGENT_KILL_LOOP_N", "10"))
    rng = random.Random(int(os.environ.get("MMAGENT_KILL_LOOP_SEED", "1234")))
    root, src = tmp_path / "adapters", tiny.adapter(7)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    committed: set[str] = set()
    state: str | None = None  # the serving version after the last committed change
    probes = survived = lost = ops = mid_op = litter_left = 0
    failures: list[str] = []
    t0 = time.perf_counter()
    for k in range(kills):
        journal = tmp_path / f"journal{k}.jsonl"
        child = subprocess.Popen([sys.executable, str(script), str(root), str(src), str(journal), str(rng.randrange(1 << 30))],
                                 stdout=subprocess.PIPE, text=True, env=_env(tmp_path), cwd=REPO)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.8))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        allowed = {state}
        entries = _journal(journal)
        mid_op += bool(entries) and entries[-1]["op"] == "begin"
        litter_left += sum(1 for d in (root, root / "versions") if d.is_dir() for p in d.iterdir()
                           if p.name.startswith(".") and p.name != ".lock")
        for e in entries:
            if e["op"] == "done":
                ops += 1
                if e["what"] == "add":
                    committed.add(e["version"])
                else:
                    state = e["state"]
                allowed = {state}
            elif e["what"] != "add":
                allowed = {state, e["expect"]}  # in flight when killed: either outcome is whole

        checks: list[tuple[str, bool]] = []
        try:
            reg = AdapterRegistry(root)  # opens after a kill
            versions = [r.version for r in reg.list()]
            checks.append(("list: only finished versions, each readable", all(reg.get(v).version == v for v in versions)))
            litter = [p for d in (root, root / "versions") if d.is_dir() for p in d.iterdir() if p.name.startswith(".") and p.name != ".lock"]
            litter += [p for v in versions for p in reg.adapter_path(v).parent.iterdir() if p.name.startswith(".")]
            checks.append((f"no temp litter after open: {litter}", not litter))
            missing = sorted(committed - set(versions))
            lost += len(missing)
            checks.append((f"nothing committed is lost: missing {missing}", not missing))
            read = reg.read_pointer()
            checks.append((f"the pointer is whole: {read.problem}", read.problem is None))
            serving = reg.serving()
            checks.append((f"serves {serving and serving.version} of allowed {allowed}", (serving and serving.version) in allowed))
            state = serving.version if serving else None
            ptr = reg.pointer()
            checks.append(("history bounded, no duplicates",
                           ptr is None or (len(ptr.previous) <= MAX_HISTORY and len(set(ptr.previous)) == len(ptr.previous))))
            if serving is not None:
                name = f"kill{k}"
                lora.load_adapter(tiny.llm, serving.path, name)  # the serving version loads, for real
                tiny.llm.delete_adapter(name)
                checks.append(("the serving version loads", True))
        except Exception as err:  # noqa: BLE001 - a probe that raises is a failed probe, reported below
            checks.append((f"raised {type(err).__name__}: {err}", False))
        probes += len(checks)
        bad = [what for what, ok in checks if not ok]
        survived += not bad
        failures += [f"kill {k}: {what}" for what in bad]
    wall = time.perf_counter() - t0
    print(f"\nkill loop: {kills} kills ({mid_op} mid-operation), {survived} survived, {probes} probes, {lost} versions lost; "
          f"{ops} operations committed, {len(committed)} versions, {litter_left} leftovers removed on open, {wall:.1f} s")
    assert not failures, failures
    assert survived == kills and lost == 0 and committed
