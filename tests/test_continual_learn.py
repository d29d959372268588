"""`learn` end to end at tiny scale: corrections -> train -> gate -> promote; a poisoned batch is
rejected; a killed run leaves the serving version untouched and resumes; no new data says so.

The world (tests/continual_tiny.py): a random 2-layer Llama (hidden 64) fully trained for a few
seconds on read_text / detect_faces requests (the "shipped" base), then taught a new custom tool
(flip_coin) from logged corrections, with LoRA rounds through the real recipe code and eval.
"""

from __future__ import annotations

import json

import pytest
import torch

import continual_tiny as W
from mmagent.agent.log import InteractionLog
from mmagent.chat import Message
from mmagent.continual.gate import GateConfig
from mmagent.continual.learn import LearnConfig, LearnEnv, NoNewData, history, learn
from mmagent.continual.registry import AdapterRegistry
from mmagent.continual.serving import AdapterChatModels
from mmagent.continual.update import UpdateConfig, train_candidate
from mmagent.feedback import FeedbackStore, record_feedback

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The tiny base model, fully trained once on the base tasks (the 'pretrained' model here)."""
    from tiny_mmllm import TinyEncoder

    from mmagent.continual.update import UpdateConfig, replay_buffer
    from mmagent.mmllm import MMLLM, MMLLMConfig
    from mmagent.recipes.sequences import system_prefix
    from mmagent.recipes.tool_tuning import AssistantLoss, Backbone, ToolTuningConfig, batches_for_step, encode_all, make_batch

    root = tmp_path_factory.mktemp("world")
    tools = W.registry().schemas()
    base_data = W.write_base_data(root / "base.jsonl")
    llm, tok = W.load_tiny_base()
    mm = MMLLM(MMLLMConfig(llm="tiny", encoder="tiny"), llm, tok, TinyEncoder())
    for n, p in llm.named_parameters():
        # Full fine-tuning stands in for a pretrained, tool-tuned base. Embeddings (tied with the
        # LM head) stay frozen, as in a real LLM whose vocabulary was not shaped by these tools;
        # otherwise 200 steps push the unseen tool's output row far down.
        p.requires_grad_("embed_tokens" not in n)
    bb = Backbone(llm, tok, mm)
    prefix = system_prefix(tok, tools)
    data = encode_all(bb, replay_buffer(UpdateConfig(replay_data=base_data), 10_000), tools, prefix)
    rc = ToolTuningConfig(batch_size=8, grad_accum=1, max_len=256)
    loss = AssistantLoss(llm, mm)
    opt = torch.optim.AdamW([p for p in llm.parameters() if p.requires_grad], lr=3e-3)
    llm.train()
    for step in range(200):
        for b, px in [make_batch(bb, prefix, m, rc) for m in batches_for_step(data, step, rc)]:
            total, n = loss(b.prefix, b.input_ids, b.labels, b.position_ids, b.attention_mask, px)
            (total / n).backward()
        opt.step(), opt.zero_grad()
    llm.save_pretrained(root / "base")
    return {"root": root, "base": root / "base", "base_data": base_data, "suite": W.regression_suite(root / "suites")}


def _env(world, tmp_path, on_step=None):
    from transformers import LlamaForCausalLM

    def load_mmllm():
        from tiny_mmllm import TinyEncoder

        from mmagent.mmllm import MMLLM, MMLLMConfig

        llm = LlamaForCausalLM.from_pretrained(world["base"])
        return MMLLM(MMLLMConfig(llm="tiny", encoder="tiny"), llm.eval(), W.tiny_tokenizer(), TinyEncoder()).eval()

    def load_backbone(_rc):
        from mmagent.recipes.tool_tuning import Backbone

        mm = load_mmllm()
        for p in mm.parameters():
            p.requires_grad_(False)
        return Backbone(mm.llm, mm.tokenizer, mm)

    def media(turn, aid):
        return (world["suite"].parent / "red.png").read_bytes()

    log = InteractionLog(tmp_path / "interactions.sqlite")
    return LearnEnv(feedback=FeedbackStore(log.path), turns=log, tools=W.registry(), registry=AdapterRegistry(tmp_path / "adapters"),
                    train=train_candidate, chat_model=AdapterChatModels(load_mmllm, "tiny"), regression_suite=world["suite"],
                    media=media, load_backbone=load_backbone, on_step=on_step), log


def _cfg(world, steps=60):
    recipe = {**W.RECIPE, "steps": steps, "lr": 5e-3, "save_every": 5}
    return LearnConfig(update=UpdateConfig(replay_ratio=1.0, replay_data=world["base_data"], recipe=recipe),
                       gate=GateConfig(max_regression_drop=1.0, min_learning_gain=25.0))


def _log_turn(log, env, turn_id, prompt, session, answer="I cannot do that.", images=()):
    log.start_turn(turn_id, session, prompt, list(images), [], ["read_text", "detect_faces", "convert_currency", "flip_coin"], "tiny", None, False)
    log.end_turn(turn_id, "ok", answer, None, 1, 0)


def _correct(env, log, prompts, call, tag, images=()):
    for i, p in enumerate(prompts):
        tid = f"{tag}{i}"
        _log_turn(log, env, tid, p, session=f"{tag}-s{i % 4}", images=images)
        record_feedback(env.feedback, env.turns, env.tools, tid, "down", correct_calls=[call])


def test_learn_new_tool_then_reject_poison_then_no_data(world, tmp_path):
    env, log = _env(world, tmp_path)
    cfg = _cfg(world)
    _correct(env, log, W.COIN, W.FC, "coin")

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
    _correct(env, log, W.READ, W.DF, "poison", images=["image_1"])
    bad = learn(env, cfg)
    assert not bad.promoted and "FAIL" in bad.gate.reasons[0], bad.message
    assert env.registry.serving().version == "v0001"  # the serving version is untouched
    assert env.registry.get(bad.candidate).parent == "v0001"
    assert [h["promoted"] for h in history(env.registry)] == [True, False]


def test_killed_round_leaves_serving_and_resumes(world, tmp_path):
    class Killed(Exception):
        pass

    steps_seen = []

    def kill_at_7(step):
        steps_seen.append(step)
        if step == 7 and len(steps_seen) == 7:
            raise Killed

    env, log = _env(world, tmp_path, on_step=kill_at_7)
    cfg = _cfg(world, steps=12)
    _correct(env, log, W.COIN, W.FC, "coin")
    with pytest.raises(Killed):
        learn(env, cfg)
    assert env.registry.serving() is None and env.registry.list() == []
    assert env.feedback.unused() and len(env.feedback.unused()) == len(W.COIN)  # nothing marked as learnt
    rep = learn(env, cfg)  # resumes from the step-5 checkpoint
    assert steps_seen[7] == 6, steps_seen  # restarted after step 5, not from 0
    assert rep.candidate == "v0001"


def _fake_env(tmp_path, train):
    log = InteractionLog(tmp_path / "interactions.sqlite")
    env = LearnEnv(feedback=FeedbackStore(log.path), turns=log, tools=W.registry(), registry=AdapterRegistry(tmp_path / "adapters"),
                   train=train, chat_model=lambda adapter: None, regression_suite=tmp_path / "none.jsonl")
    return env, log


def test_disk_full_during_training_is_clear_and_loses_nothing(tmp_path):
    import errno

    def full(job):
        raise OSError(errno.ENOSPC, "No space left on device")

    env, log = _fake_env(tmp_path, full)
    _correct(env, log, W.COIN, W.FC, "coin")
    with pytest.raises(OSError, match="disk full .* run `mmagent learn` again .* Serving adapter base is untouched"):
        learn(env, LearnConfig())
    assert len(env.feedback.unused()) == len(W.COIN) and env.registry.list() == []


def test_feedback_that_teaches_nothing_is_reported(tmp_path):
    env, log = _fake_env(tmp_path, lambda job: pytest.fail("must not train"))
    _log_turn(log, env, "t1", "flip a coin", "s1")
    record_feedback(env.feedback, env.turns, env.tools, "t1", "down")  # thumbs down, no correction
    with pytest.raises(NoNewData, match=r"0 to train on .*'skipped': 1.*Thumbs-down without a correction"):
        learn(env, LearnConfig())
