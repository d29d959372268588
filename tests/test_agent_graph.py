"""The agent loop driven by a scripted model: shape, repair, unknown tools, step limit, failing
tools, concurrency, artifacts flowing from one call to the next, streaming events."""

from __future__ import annotations

import pytest
from agent_fixtures import call, make_agent
from PIL import Image

from mmagent.agent.graph import build_graph


def test_graph_shape_snapshot():
    g = build_graph().compile().get_graph()
    edges = sorted((e.source, e.target, bool(e.conditional)) for e in g.edges)
    assert edges == [
        ("__start__", "perceive", False),
        ("act", "observe", False),
        ("approve", "act", False),
        ("finish", "__end__", False),
        ("observe", "finish", True),
        ("observe", "plan", True),
        ("perceive", "plan", False),
        ("plan", "act", True),
        ("plan", "approve", True),
        ("plan", "finish", True),
        ("plan", "plan", True),
    ]


def test_call_then_answer(tmp_path):
    agent = make_agent(tmp_path, [call("add", a=2, b=3), "It is 5."])
    r = agent.run("What is 2 + 3?")
    assert (r.status, r.answer) == ("ok", "It is 5.")
    assert [(c.name, c.arguments, c.result) for c in r.calls] == [("add", {"a": 2, "b": 3}, {"result": 5})]
    assert [t["step"] for t in r.trace] == [1, 2]
    # the model's second step saw the tool's result in the one result format
    assert agent.model.seen[1][-1].role == "tool" and '"result": {"result": 5}' in agent.model.seen[1][-1].content


def test_repair_after_unparseable_output(tmp_path):
    agent = make_agent(tmp_path, ['<tool_call>{"name": "add", "arguments": {"a": 2, "b": }}</tool_call>',
                                  call("add", a=2, b=3), "5"])
    r = agent.run("2+3?")
    assert r.status == "ok" and r.answer == "5" and len(r.calls) == 1
    assert r.trace[0]["parse_errors"] and "invalid JSON" in r.trace[0]["parse_errors"][0]
    feedback = agent.model.seen[1][-1]
    assert feedback.role == "tool" and "invalid JSON" in feedback.content and "<tool_call>" in feedback.content


def test_repair_after_wrong_argument_types(tmp_path):
    agent = make_agent(tmp_path, [call("add", a="two", b=3), call("add", a=2, b=3), "5"])
    r = agent.run("2+3?")
    assert r.status == "ok"
    assert [(c.ok, c.error_kind) for c in r.calls] == [(False, "validation"), (True, None)]
    assert "a:" in r.calls[0].error and "invalid arguments for add" in agent.model.seen[1][-1].content


def test_the_repair_observation_names_the_expected_types_as_the_registry_renders_it(tmp_path):
    """A refused call's observation carries the failing fields' expected types, and the agent's
    history renders a call with the registry's own renderer (`ToolResult.observation`): one text."""
    import json

    from mmagent.tools.base import ToolContext
    from mmagent.tools.registry import ToolRegistry

    agent = make_agent(tmp_path, [call("add", a="two", b=3), call("add", a=2, b=3), "5"])
    r = agent.run("2+3?")
    assert r.status == "ok" and [c.ok for c in r.calls] == [False, True]
    refused, fine = agent.model.seen[1][-1].content, agent.model.seen[2][-1].content
    body = json.loads(refused.removeprefix("<tool_response>").removesuffix("</tool_response>"))
    assert body["name"] == "add" and body["error"] == r.calls[0].error and body["expected"] == {"a": "integer"}
    direct = ToolRegistry(agent.registry.get(n) for n in ["add"])
    ctx = ToolContext(artifacts=agent.artifacts(r.session), session=r.session)
    assert direct.call("add", {"a": "two", "b": 3}, ctx).observation() == refused
    assert direct.call("add", {"a": 2, "b": 3}, ctx).observation() == fine


def test_repairs_are_bounded(tmp_path):
    agent = make_agent(tmp_path, ["<tool_call>{oops"] * 3, max_repairs=2)
    r = agent.run("2+3?")
    assert r.status == "error" and "no valid reply after 3 attempts" in r.error
    assert agent.model.calls == 3


def test_unknown_tool_goes_back_to_the_model(tmp_path):
    agent = make_agent(tmp_path, [call("multiply", a=2, b=3), "I cannot multiply here."])
    r = agent.run("2*3?")
    assert r.status == "ok" and r.calls[0].error_kind == "unknown_tool"
    assert "known tools" in agent.model.seen[1][-1].content and "add" in agent.model.seen[1][-1].content


def test_step_limit_ends_an_endless_loop(tmp_path):
    agent = make_agent(tmp_path, [call("add", a=1, b=i) for i in range(10)], max_steps=3)
    r = agent.run("count forever")
    assert r.status == "step_limit" and len(r.calls) == 3 and agent.model.calls == 3
    assert "stopped after 3 steps" in r.answer and "step limit" in r.error


def test_failing_and_hanging_tools_become_observations(tmp_path):
    agent = make_agent(tmp_path, [call("boom", reason="disk full") + call("nap", seconds=5), "Both failed."], tool_timeout_s=0.2)
    r = agent.run("try")
    assert r.status == "ok"
    assert [(c.name, c.error_kind) for c in r.calls] == [("boom", "exception"), ("nap", "timeout")]
    assert "disk full" in r.calls[0].error and "did not finish" in r.calls[1].error


def test_independent_calls_run_concurrently(tmp_path):
    agent = make_agent(tmp_path, [call("nap", seconds=0.4) + call("nap", seconds=0.4) + call("nap", seconds=0.4), "done"])
    r = agent.run("nap three times")
    spans = [(c.result["result"]["start"], c.result["result"]["end"]) for c in r.calls]
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # all three were running at once


def test_model_failure_ends_the_turn_cleanly(tmp_path):
    agent = make_agent(tmp_path, [])  # the scripted model has nothing to say: it raises
    r = agent.run("hello")
    assert r.status == "error" and "ran out of outputs" in r.error
    assert agent.log.turn(r.turn_id).status == "error"


def test_later_calls_use_earlier_artifacts_and_events_stream(tmp_path):
    from mmagent.tools.edit import EDIT_TOOLS

    img = Image.new("RGB", (64, 48), "white")
    agent = make_agent(tmp_path, [call("crop_image", image="image_1", box={"x0": 0, "y0": 0, "x1": 32, "y1": 24}),
                                  call("resize_image", image="image_2", width=8), "Cropped and resized: image_3."],
                       tools=EDIT_TOOLS)
    events = list(agent.stream("crop the top-left quarter, then make it 8 px wide", images=[img]))
    r = agent.result(events[-1].session)
    assert r.status == "ok" and [c.result["image"] for c in r.calls] == ["image_2", "image_3"]
    assert r.artifacts == ["image_1", "image_2", "image_3"]
    assert agent.artifacts(r.session).load_image("image_3").size == (8, 6)
    kinds = [e.type for e in events]
    assert kinds[0] == "artifact" and kinds[-1] == "answer" and "token" in kinds
    assert kinds.count("tool_call_start") == kinds.count("tool_call_end") == 2
    assert [e.artifact["id"] for e in events if e.type == "artifact"] == ["image_1", "image_2", "image_3"]
    end = next(e for e in events if e.type == "tool_call_end")
    assert end.call["arguments"]["image"] == "image_1" and end.result["ok"]


def test_sessions_keep_history_across_turns(tmp_path):
    agent = make_agent(tmp_path, [call("add", a=2, b=3), "5", "Still 5."])
    first = agent.run("2+3?", session="chat")
    second = agent.run("and again?", session="chat")
    assert first.turn_id != second.turn_id and second.calls == []
    roles = [m.role for m in agent.history("chat")]
    assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert agent.model.seen[2][1].content == "2+3?"  # turn 2 saw turn 1 (after the system prompt)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prompt": "  "}, "prompt is empty"),
        ({"prompt": "x", "images": ["/no/such.png"]}, "no such file"),
        ({"prompt": "x", "images": ["image_7"]}, "image_7"),
    ],
)
def test_bad_input_is_a_clear_error_before_anything_runs(tmp_path, kwargs, message):
    agent = make_agent(tmp_path, ["never used"])
    with pytest.raises(ValueError, match=message):
        agent.run(**kwargs)
    assert agent.model.calls == 0 and agent.log.turns() == []


def test_bad_agent_configuration(tmp_path):
    with pytest.raises(ValueError, match="approval names tools"):
        make_agent(tmp_path, [], approval={"rm_rf"})
    with pytest.raises(ValueError, match="max_steps"):
        make_agent(tmp_path, [], max_steps=0)


def test_the_replys_prose_is_the_backends_parse_when_it_gives_one():
    from mmagent.agent.graph import _prose
    from mmagent.protocol.chat import ChatResult

    text = 'Let me look. <tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>'
    assert _prose(ChatResult(text=text)) == "Let me look."  # a ChatModel that did not parse: parsed here
    assert _prose(ChatResult(text=text, prose="from the backend")) == "from the backend"  # parsed once, not again


def test_a_turn_with_an_image_starts_loading_the_tools_that_asked_for_it(tmp_path):
    """`Tool.warm_for`: OCR-like tools load while the model plans, not after it calls them."""
    import threading

    from pydantic import BaseModel

    from mmagent.tools.base import Tool

    class In(BaseModel):
        image: str

    class Out(BaseModel):
        text: str

    loaded = threading.Event()

    class Heavy(Tool):
        name, description, input_model, output_model = "heavy_ocr", "reads text", In, Out
        warm_for = frozenset({"image"})

        def load(self) -> None:
            loaded.set()

        def run(self, args, ctx):
            return Out(text="hi")

    heavy = Heavy()
    agent = make_agent(tmp_path, ["Nothing to do.", "Still nothing."], tools=[heavy])
    agent.run("Hello")  # no image: nothing warms
    assert not loaded.is_set() and not heavy._loaded
    agent.run("What does it say?", images=[Image.new("RGB", (8, 8))])  # the model never calls it
    assert loaded.wait(5) and heavy._loaded
