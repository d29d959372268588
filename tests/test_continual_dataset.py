"""Feedback storage and validation; the dataset builder's dedup, conflict, outlier and session guards."""

from __future__ import annotations

import pytest

from continual_fakes import FakeLog, registry
from mmagent.chat import ToolCall
from mmagent.continual.dataset import DatasetConfig, build_dataset, data_hash
from mmagent.feedback import FeedbackError, FeedbackStore, LoggedTurn, parse_correct_call, record_feedback


def _turn(i, prompt, session="s1", images=("image_1",), calls=()):
    return LoggedTurn(id=f"t{i}", session=session, prompt=prompt, images=list(images),
                      tools=["read_text", "detect_faces", "convert_currency"], calls=list(calls))


def _call(name, **args):
    return ToolCall(name=name, arguments=args)


@pytest.fixture()
def env(tmp_path):
    return FeedbackStore(tmp_path / "log.sqlite"), FakeLog(), registry()


def test_feedback_roundtrip_latest_wins(env):
    store, log, reg = env
    log.add(_turn(1, "what does the sign say"))
    record_feedback(store, log, reg, "t1", "up")
    fb = record_feedback(store, log, reg, "t1", "down", correct_calls=[_call("read_text", image="image_1")])
    assert fb.id and fb.session == "s1"
    latest = store.latest()
    assert len(latest) == 1 and latest[0].correct_calls[0].name == "read_text"
    assert len(store.for_turn("t1")) == 2
    store.mark_used("r1", {fb.id: "train"})
    assert store.unused() == []


def test_bad_feedback_is_refused_and_nothing_stored(env):
    store, log, reg = env
    log.add(_turn(1, "read it"))
    with pytest.raises(FeedbackError, match="no logged turn 'nope'"):
        record_feedback(store, log, reg, "nope", "up")
    with pytest.raises(FeedbackError, match="unknown tool 'read_txt'"):
        record_feedback(store, log, reg, "t1", "down", correct_calls=[_call("read_txt", image="image_1")])
    with pytest.raises(FeedbackError, match="image"):
        record_feedback(store, log, reg, "t1", "down", correct_calls=[_call("read_text", image="/etc/passwd")])
    with pytest.raises(FeedbackError, match="min_size"):
        record_feedback(store, log, reg, "t1", "down", correct_calls=[_call("detect_faces", image="image_1", min_size="big")])
    with pytest.raises(FeedbackError, match="rating down"):
        record_feedback(store, log, reg, "t1", "up", correct_answer="42")
    with pytest.raises(FeedbackError, match="empty"):
        record_feedback(store, log, reg, "t1", "down", correct_answer="  ")
    assert store.latest() == []


def test_parse_correct_call():
    assert parse_correct_call('{"name": "read_text", "arguments": {"image": "image_1"}}')[0].name == "read_text"
    assert len(parse_correct_call('[{"name": "a"}, {"name": "b", "arguments": {}}]')) == 2
    with pytest.raises(FeedbackError, match="not valid JSON"):
        parse_correct_call("{name: read_text}")
    with pytest.raises(FeedbackError, match="must be"):
        parse_correct_call('{"arguments": {}}')


def _pairs(store, log, reg, items):
    """items: (prompt, session, correct_call or None for rating up) -> stored pairs."""
    pairs = []
    for i, (prompt, session, call) in enumerate(items):
        t = log.add(_turn(i, prompt, session, calls=[_call("read_text", image="image_1")]))
        fb = record_feedback(store, log, reg, t.id, "up" if call is None else "down", correct_calls=None if call is None else [call])
        pairs.append((t, fb))
    return pairs


def test_build_splits_by_prompt_and_formats_targets(env):
    store, log, reg = env
    items = [(f"please convert {n} euros to dollars now", "s1", _call("convert_currency", amount=float(n), to="USD")) for n in range(10)]
    items.append(("what does the sign say", "s2", None))
    b = build_dataset(_pairs(store, log, reg, items), reg, DatasetConfig(holdout_frac=0.3, check_grounding=False))
    assert len(b.train) + len(b.heldout) == 11 and len(b.heldout) == 3
    assert not {e.prompt for e in b.train} & {e.prompt for e in b.heldout}
    ex = next(e for e in b.train + b.heldout if e.calls and e.calls[0].name == "convert_currency")
    assert ex.target_text().startswith('<tool_call>{"name": "convert_currency"')
    item = ex.eval_item()
    assert item["expected"][0]["arguments"]["to"] == ["USD"]
    assert b.data_hash == data_hash(reversed(b.train)) and len(b.data_hash) == 64


def test_dedup_conflicts_outliers_session_limit(env):
    store, log, reg = env
    rt, df = _call("read_text", image="image_1"), _call("detect_faces", image="image_1")
    items = [
        ("read the sign for me", "s1", rt), ("read the sign for me", "s1", rt),         # duplicate
        ("read the sign for me", "s2", rt), ("read the sign for me", "s3", df),         # 2 vs 1: rt wins
        ("what is written here", "s4", rt), ("what is written here", "s5", df),         # tie: held
        ("read the words on this sign", "a", rt), ("read the text on this sign", "b", rt),
        ("read the writing on this sign", "c", rt), ("read the letters on this sign", "evil", df),  # outlier
        ("convert 5 euros to usd", "s6", _call("convert_currency", amount=5.0, to="bananas")),      # ungrounded
    ] + [(f"how many faces in photo {k}", "spam", df) for k in range(6)]                             # session cap
    b = build_dataset(_pairs(store, log, reg, items), reg, DatasetConfig(max_per_session=4, min_neighbors=3, neighbor_sim=0.5))
    acts = {}
    for d in b.decisions:
        acts.setdefault(d.action, []).append(d.reason)
    assert "duplicate" in acts["skipped"]
    res = {c.prompt: c.resolution for c in b.conflicts}
    assert res["read the sign for me"].startswith('<tool_call>{"name": "read_text"')
    assert res["what is written here"] == "held for review (tie)"
    assert any("outvoted" in r for r in acts["rejected"])
    review = " ".join(acts["held_for_review"])
    assert "tie" in review and "over its limit of 4" in review
    assert "similar prompts from other sessions mostly call ['read_text']" in review
    assert "convert_currency.to='bananas'" in review
    kept = b.train + b.heldout
    assert sum(e.session == "spam" for e in kept) == 4
    assert not any(e.session == "evil" for e in kept)
    assert b.counts()["train"] + b.counts()["heldout"] == len(kept)


def test_rated_down_without_correction_teaches_nothing(env):
    store, log, reg = env
    t = log.add(_turn(1, "read it"))
    fb = record_feedback(store, log, reg, "t1", "down")
    b = build_dataset([(t, fb)], reg)
    assert b.train == [] and b.decisions[0].action == "skipped"
