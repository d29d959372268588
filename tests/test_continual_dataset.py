"""Feedback storage and validation; the dataset builder's dedup, conflict, outlier and session guards."""

from __future__ import annotations

import pytest
from continual_fakes import FakeLog, registry

from mmagent.continual.dataset import DatasetConfig, build_dataset, data_hash
from mmagent.feedback import FeedbackError, FeedbackStore, LoggedTurn, parse_correct_call, record_feedback
from mmagent.protocol.chat import ToolCall


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


def _rated(store, log, reg, i, prompt, session, did, rating, correct=None):
    """A logged turn where the model did `did` (a call, or a text answer), rated / corrected."""
    calls = [did] if isinstance(did, ToolCall) else []
    t = log.add(LoggedTurn(id=f"p{i}", session=session, prompt=prompt, images=["image_1"], tools=["read_text", "detect_faces", "convert_currency"],
                           calls=calls, answer="" if calls else (did or "")))
    return t, record_feedback(store, log, reg, t.id, rating, correct_calls=[correct] if correct else None)


def test_preference_build_kinds_pairs_and_guards(env):
    store, log, reg = env
    rt, df = _call("read_text", image="image_1"), _call("detect_faces", image="image_1")
    pairs = [
        _rated(store, log, reg, 0, "what does this sign say", "s1", rt, "up"),                       # desirable
        _rated(store, log, reg, 1, "read the label on the box", "s1", df, "down"),                   # undesirable
        _rated(store, log, reg, 2, "read the words on the card", "s2", df, "down", correct=rt),      # pair
        _rated(store, log, reg, 3, "read the menu here", "s3", "", "down", correct=rt),              # no output: desirable only
        _rated(store, log, reg, 4, "tell me what it reads", "s3", "", "down"),                       # nothing to push down
    ]
    cfg = DatasetConfig(preference=True, holdout_frac=0, check_grounding=False)
    b = build_dataset(pairs, reg, cfg)
    kinds = {e.turn_id: e.kind for e in b.train}
    assert kinds == {"p0": "desirable", "p1": "undesirable", "p2": "pair", "p3": "desirable"}
    pair = next(e for e in b.train if e.kind == "pair")
    assert pair.calls == [rt] and pair.rejected_calls == [df] and pair.rejected_messages()[1].tool_calls == [df]
    assert any(d.turn_id == "p4" and "no output" in d.reason for d in b.decisions)
    down = next(e for e in b.train if e.kind == "undesirable")
    assert down.eval_item()["kind"] == "avoid" and down.eval_item()["avoid"].startswith('<tool_call>{"name": "detect_faces"')
    # Thumbs are the model's own outputs (held out, scored on what a thumb judged: suites.same_calls); corrections are the user's.
    assert {e.turn_id: e.rated for e in b.train} == {"p0": True, "p1": True, "p2": False, "p3": False}
    up = next(e for e in b.train if e.turn_id == "p0")
    assert up.eval_item()["kind"] == "keep" and "kind" not in pair.eval_item()
    # Without preference the same feedback trains only the up-rated and corrected targets, as before.
    plain = build_dataset(pairs, reg, DatasetConfig(holdout_frac=0, check_grounding=False))
    assert {e.turn_id for e in plain.train} == {"p0", "p2", "p3"} and all(e.kind == "desirable" for e in plain.train)
    assert b.data_hash != plain.data_hash


def test_preference_conflicts_and_outlier_thumbs_down(env):
    store, log, reg = env
    rt = _call("read_text", image="image_1")
    pairs = [
        _rated(store, log, reg, 0, "read this sign", "s1", rt, "up"), _rated(store, log, reg, 1, "read this sign", "s2", rt, "up"),
        _rated(store, log, reg, 2, "read this sign", "s3", rt, "down"),                       # 2 up vs 1 down: up wins
        _rated(store, log, reg, 3, "read it aloud", "s1", rt, "up"), _rated(store, log, reg, 4, "read it aloud", "s2", rt, "down"),  # tie
        _rated(store, log, reg, 5, "read the words on this poster", "a", rt, "up"),
        _rated(store, log, reg, 6, "read the text on this poster", "b", rt, "up"),
        _rated(store, log, reg, 7, "read the letters on this poster", "c", rt, "up"),
        _rated(store, log, reg, 8, "read the writing on this poster", "evil", rt, "down"),   # outlier: others want exactly this
    ]
    b = build_dataset(pairs, reg, DatasetConfig(preference=True, holdout_frac=0, check_grounding=False))
    why = {d.turn_id: (d.action, d.reason) for d in b.decisions}
    assert why["p2"][0] == "rejected" and "outvoted 2:1" in why["p2"][1]
    assert why["p3"][0] == why["p4"][0] == "held_for_review" and "as many sessions" in why["p4"][1]
    assert why["p8"][0] == "held_for_review" and "thumbs-down rates wrong" in why["p8"][1]
    assert {c.resolution for c in b.conflicts} == {"up", "held for review (tie)"}
    assert {e.turn_id for e in b.train} == {"p0", "p5", "p6", "p7"}
