"""`learn` end to end at tiny scale: corrections -> train -> gate -> promote; a poisoned batch is
rejected; a killed run leaves the serving version untouched and resumes; O-LoRA and EWC rounds;
no new data, nothing usable and a full disk say so.

The world (`mmagent.continual.scenario.TinyWorld`): a random 2-layer Llama (hidden 64) trained for
a few seconds on read_text / detect_faces requests (the "shipped" base), then taught newly added
custom tools from corrections logged in the real interaction log, through the real recipe code,
eval and gate.
"""

from __future__ import annotations

import errno
import json

import pytest

from mmagent.agent.log import InteractionLog
from mmagent.continual import scenario as S
from mmagent.continual.learn import LearnConfig, LearnEnv, NoNewData, history, learn
from mmagent.continual.registry import AdapterRegistry
from mmagent.feedback import FeedbackStore, record_feedback

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return S.TinyWorld(tmp_path_factory.mktemp("world"))


def test_learn_new_tool_then_reject_poison_then_no_data(world, tmp_path):
    env = world.env(tmp_path)
    cfg = world.config()
    S.log_corrections(env, S.COIN, S.FC, "coin")

    rep = learn(env, cfg)
    g = rep.gate
    assert rep.promoted, rep.message
    assert g.learning_after - g.learning_before >= 25 and g.regression_before - g.regression_after <= 1
    assert env.registry.serving().version == rep.candidate == "v0001"
    assert rep.counts["train"] >= 6 and rep.counts["heldout"] >= 3
    rec = env.registry.get("v0001")
    assert rec.data_hash == rep.data_hash and rec.metrics["gate"]["promote"] and rec.parent is None

    with pytest.raises(NoNewData, match="no new feedback"):
        learn(env, cfg)

    # Poison: many sessions agree that reading text means detecting faces.
    S.log_corrections(env, S.READ, S.DF, "poison", images=["image_1"])
    bad = learn(env, cfg)
    print(bad.message)
    # Held by the poisoning check before any training: the serving model reads text reliably
    # on the regression items these prompts resemble, and the batch says it should not.
    assert not bad.promoted and bad.gate.failed == ["poisoning"] and bad.candidate is None, bad.message
    assert "held for review" in bad.message and len(bad.held_for_review) >= len(S.READ) - 1
    assert bad.gate.poisoning.contradicting[0]["serving_calls"] == ["read_text"]
    assert env.registry.serving().version == "v0001" and len(env.registry.list()) == 1  # nothing trained
    assert [h["promoted"] for h in history(env.registry)] == [True, False]


def test_poisoned_batch_is_rejected_by_the_gate_without_the_check(world, tmp_path):
    env = world.env(tmp_path)
    cfg = world.config()
    S.log_corrections(env, S.COIN, S.FC, "coin")
    assert learn(env, cfg).promoted
    S.log_corrections(env, S.READ, S.DF, "poison", images=["image_1"])
    bad = learn(env, cfg.model_copy(update={"poisoning_check": False}))
    print(bad.message)
    assert not bad.promoted and "regression" in bad.gate.failed and "tool:read_text" in bad.gate.failed, bad.message
    assert bad.gate.regression_drop >= 5  # the margin
    assert env.registry.get(bad.candidate).parent == "v0001" and env.registry.serving().version == "v0001"


def test_killed_round_leaves_serving_and_resumes(world, tmp_path):
    class Killed(Exception):
        pass

    steps_seen = []

    def kill_at_7(step):
        steps_seen.append(step)
        if step == 7 and len(steps_seen) == 7:
            raise Killed

    env = world.env(tmp_path, on_step=kill_at_7)
    cfg = world.config(steps=12)
    S.log_corrections(env, S.COIN, S.FC, "coin")
    with pytest.raises(Killed):
        learn(env, cfg)
    assert env.registry.serving() is None and env.registry.list() == []
    assert len(env.feedback.unused()) == len(S.COIN)  # nothing marked as learnt
    rep = learn(env, cfg)  # resumes from the step-5 checkpoint
    assert steps_seen[7] == 6, steps_seen  # restarted after step 5, not from 0
    assert rep.candidate == "v0001"


@pytest.mark.parametrize("method", ["olora", "ewc"])
def test_second_round_with_anti_forgetting_method(world, tmp_path, method):
    from safetensors.torch import load_file

    env = world.env(tmp_path)
    S.log_corrections(env, S.COIN, S.FC, "coin")
    first = learn(env, world.config(steps=40))
    assert first.promoted, first.message
    S.log_corrections(env, S.DIE, S.RD, "die")
    second = learn(env, world.config(method=method, steps=40, min_gain=0.0))
    cfg = json.loads((env.registry.adapter_path(second.candidate) / "adapter_config.json").read_text())
    if method == "olora":  # stacked: the first version's rank-16 subspace + the new rank-8 one
        assert cfg["r"] == 16 + 8
        a = load_file(str(env.registry.adapter_path(second.candidate) / "adapter_model.safetensors"))
        prev = load_file(str(env.registry.adapter_path("v0001") / "adapter_model.safetensors"))
        key = next(k for k in a if "lora_A" in k)
        assert (a[key][:16] == prev[key].to(a[key].dtype)).all()  # the old subspace is frozen, exactly
    assert "r0001" in second.earlier_tasks  # the first round's held-out items were scored again (BWT)
    assert env.registry.get(second.candidate).method == method


class Scripted:
    """A chat model that never calls a tool (the serving side of the fake rounds)."""

    name = "scripted"

    def chat(self, messages, tools=None, **kw):
        from mmagent.protocol.chat import ChatResult

        return ChatResult(text="no idea")


def _fake_env(tmp_path, train):
    log = InteractionLog(tmp_path / "interactions.sqlite")
    suite = S.write_suite(tmp_path / "suite", [("read it", S.RT, 1)], "reg")
    return LearnEnv(feedback=FeedbackStore(log.path), turns=log, tools=S.tiny_tools(), registry=AdapterRegistry(tmp_path / "adapters"),
                    train=train, chat_model=lambda adapter: Scripted(), regression_suite=suite, media=lambda turn, aid: b"")


def test_disk_full_during_training_is_clear_and_loses_nothing(tmp_path):
    def full(job):
        raise OSError(errno.ENOSPC, "No space left on device")

    env = _fake_env(tmp_path, full)
    S.log_corrections(env, S.COIN, S.FC, "coin")
    with pytest.raises(OSError, match="disk full .* run `mmagent learn` again .* Serving adapter base is untouched"):
        learn(env, LearnConfig())
    assert len(env.feedback.unused()) == len(S.COIN) and env.registry.list() == []


def test_feedback_that_teaches_nothing_is_reported(tmp_path):
    env = _fake_env(tmp_path, lambda job: pytest.fail("must not train"))
    env.turns.start_turn("t1", "s1", "flip a coin", [], [], ["flip_coin"], "m", None, False)
    record_feedback(env.feedback, env.turns, env.tools, "t1", "down")  # thumbs down, no correction
    with pytest.raises(NoNewData, match=r"0 to train on .*'skipped': 1.*Thumbs-down without a correction"):
        learn(env, LearnConfig())


def test_round_killed_during_its_gate_reuses_the_trained_version(tmp_path):
    trained, calls = [], {"n": 0}

    def train(job):
        trained.append(job.data_hash)
        d = tmp_path / f"cand{len(trained)}"
        d.mkdir()
        (d / "adapter_config.json").write_text("{}")
        return d

    def chat_model(adapter):
        calls["n"] += adapter is not None
        if adapter is not None and calls["n"] == 1:
            raise KeyboardInterrupt  # killed while evaluating the candidate
        return Scripted()

    env = _fake_env(tmp_path, train)
    env.chat_model = chat_model
    env.regression_suite = S.write_suite(tmp_path / "suite", [("read it", S.RT, 1)], "reg")
    S.log_corrections(env, S.COIN, S.FC, "coin")
    with pytest.raises(KeyboardInterrupt):
        learn(env, LearnConfig())
    rep = learn(env, LearnConfig())
    assert len(trained) == 1 and [r.version for r in env.registry.list()] == ["v0001"]
    assert not rep.promoted and "FAIL" in rep.message and env.registry.serving() is None


def test_thumbs_only_round_learns_a_new_tool_with_preference(world, tmp_path):
    """No corrections: half the turns right (up), the rest what the serving model really said (down).
    The preference round trains KTO on both, promotes, and the held-out prompts get the true call."""
    from mmagent.continual.dataset import Example
    from mmagent.continual.learn import suite_score

    env = world.env(tmp_path)
    S.log_thumbs(env, S.COIN, S.FC, "coin", model=env.chat_model(None))
    # 150 steps: at the default 100 the round lifted 2 of the 4 held-out prompts (this world's base, retrained
    # when the tiny tokenizer lost its key-and-value token so that the gate can decode under the grammar).
    rep = learn(env, world.config(method="preference", min_gain=0.0, steps=150))
    assert rep.promoted and rep.method == "preference", rep.message
    train = [Example.model_validate_json(x) for x in (env.registry.root / "rounds" / rep.round / "train.jsonl").read_text().splitlines()]
    assert {e.kind for e in train} == {"desirable", "undesirable"}
    held = [env.turns.get_turn(f.turn_id).prompt for f in env.feedback.latest()
            if f"fb{f.id}" in (env.registry.root / "rounds" / rep.round / "heldout.jsonl").read_text()]
    truth = S.write_suite(tmp_path / "truth", [(p, S.FC, 0) for p in held], "truth")
    tools = env.tools.schemas()
    assert suite_score(env.chat_model(None), truth, tools) == 0
    # 4 held-out prompts, 25 points each: from none to at least 3. Which 3 or 4 depends on the host's float
    # kernels (4 of 4 on a Sapphire Rapids host, 3 of 4 on a Zen 5 one, the same code and seeds).
    assert len(held) == 4 and suite_score(env.chat_model(env.registry.serving().path), truth, tools) >= 75


def test_a_round_trains_on_the_threads_its_recipe_asks_for(world, tmp_path):
    """Loading an LLM applies the serving thread policy (settings.threads, 1 in tests); the round's
    training must still run on its recipe's `threads` (it ran on one thread whatever it asked for)."""
    import torch

    seen = []
    env = world.env(tmp_path, on_step=lambda step: seen.append(torch.get_num_threads()))

    def load_as_serving_does(rc):
        bb = world.load_backbone(rc)
        torch.set_num_threads(1)  # what mmagent.config.apply_thread_policy does when a model loads
        return bb

    env.load_backbone = load_as_serving_does
    cfg = world.config(steps=3)
    cfg.update.recipe["threads"] = 2
    S.log_corrections(env, S.COIN, S.FC, "coin")
    try:
        learn(env, cfg)
    finally:
        torch.set_num_threads(1)
    assert seen and set(seen) == {2}, seen
