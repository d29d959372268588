"""The interaction log holds everything continual learning needs, for every kind of turn."""

from __future__ import annotations

import sqlite3

from agent_fixtures import call, make_agent
from PIL import Image

from mmagent.agent.log import SCHEMA_VERSION, InteractionLog


def test_a_turn_is_logged_completely(tmp_path):
    agent = make_agent(tmp_path, ["<tool_call>{bad json</tool_call>", call("add", a="x", b=1),
                                  call("add", a=1, b=1), "It is 2."])
    r = agent.run("1+1 on this image?", images=[Image.new("RGB", (8, 8), "red")], session="log-s")
    t = agent.log.turn(r.turn_id)
    assert (t.session, t.prompt, t.images, t.audio, t.status, t.answer) == ("log-s", "1+1 on this image?", ["image_1"], [], "ok", "It is 2.")
    assert t.tools == sorted(["add", "boom", "nap", "wipe", "crash_once"])
    assert (t.model, t.adapter, t.constrained, t.schema_version) == ("scripted", "v3", True, SCHEMA_VERSION)  # constrained: the default
    assert (t.steps, t.repairs) == (4, 2)  # one unparseable output, one invalid call
    assert t.prompt_tokens > 0 and t.completion_tokens > 0 and t.latency_s >= 0 and t.ended_at >= t.started_at

    raw = [s.raw_output for s in t.steps_log]
    assert raw == agent.model.outputs  # every raw model output, verbatim
    assert "invalid JSON" in t.steps_log[0].parse_errors[0]
    # the call's one record as plan wrote it (pending: how it will run, no outcome yet)
    assert t.steps_log[1].calls == [{"id": "s2c1", "step": 2, "name": "add", "arguments": {"a": "x", "b": 1},
                                     "needs_approval": False, "external": False}]
    first_input = t.steps_log[0].input_messages
    assert first_input[0]["role"] == "system" and first_input[-1] == {"role": "user", "content": "1+1 on this image?", "images": ["image_1"]}
    assert len(t.steps_log[3].input_messages) > len(first_input)  # later steps saw the whole exchange
    assert all(s.latency_s >= 0 and s.model == "scripted" for s in t.steps_log)

    assert [(c.call_id, c.ok, c.error_kind) for c in t.calls] == [("s2c1", False, "validation"), ("s3c1", True, None)]
    assert t.calls[0].arguments == {"a": "x", "b": 1} and "a:" in t.calls[0].error
    assert t.calls[1].output == {"result": 2}


def test_failed_and_limited_turns_are_logged_too(tmp_path):
    agent = make_agent(tmp_path, [call("add", a=1, b=1)] * 2, max_steps=2)
    r = agent.run("loop", session="a")
    t = agent.log.turn(r.turn_id)
    assert t.status == "step_limit" and "step limit" in t.error and len(t.calls) == 2
    agent2 = make_agent(tmp_path / "b", [])
    r2 = agent2.run("hi", session="b")
    t2 = agent2.log.turn(r2.turn_id)
    assert t2.status == "error" and "ran out of outputs" in t2.error and t2.steps_log == []


def test_log_is_wal_and_readable_by_another_connection(tmp_path):
    agent = make_agent(tmp_path, ["hello"])
    r = agent.run("hi")
    con = sqlite3.connect(tmp_path / "log.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT status, answer FROM turns WHERE turn_id=?", (r.turn_id,)).fetchone() == ("ok", "hello")
    assert InteractionLog(tmp_path / "log.sqlite").turns(session=r.session)[0].turn_id == r.turn_id


def test_feedback_attaches_to_logged_turns(tmp_path):
    from mmagent.feedback import FeedbackError, FeedbackStore, record_feedback
    from mmagent.protocol.chat import ToolCall

    agent = make_agent(tmp_path, [call("add", a=2, b=2), "5"])
    r = agent.run("2+2?")
    turn = agent.log.get_turn(r.turn_id)
    assert (turn.prompt, turn.tools[:1], [c.name for c in turn.calls], turn.answer, turn.adapter) == ("2+2?", ["add"], ["add"], "5", "v3")
    store = FeedbackStore(agent.log.path)
    fb = record_feedback(store, agent.log, agent.registry, r.turn_id, "down", correct_answer="4")
    assert store.for_turn(r.turn_id)[0].id == fb.id
    try:
        record_feedback(store, agent.log, agent.registry, r.turn_id, "down", correct_calls=[ToolCall(name="add", arguments={"a": "two"})])
    except FeedbackError as err:
        assert "correction refused" in str(err)
    else:
        raise AssertionError("an invalid correction was stored")
    assert agent.log.get_turn("t-unknown") is None
