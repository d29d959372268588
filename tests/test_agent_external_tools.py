"""Schema-only tools in the agent: a valid call to one ends the turn as `interrupted` with the call in
`pending` ("external": true), the caller runs it and resumes with its result (OpenAI's client
loop, on the approval interrupt); an invalid one goes back to the model like any invalid call."""

from __future__ import annotations

import pytest
from agent_fixtures import add, call, make_agent

from mmagent.tools import SchemaTool

WEATHER = {"type": "function", "function": {"name": "weather.get-current", "description": "Current weather in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"], "default": "c"}},
    "required": ["city"]}}}
MCP_READ = {"name": "fs.read-file", "description": "Reads a file.", "inputSchema": {
    "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}


def answer_from_last_result(messages) -> str:
    return "From the tool: " + messages[-1].content


def test_external_call_is_handed_to_the_caller_and_its_result_goes_back(tmp_path):
    agent = make_agent(tmp_path, [call("weather.get-current", city="Paris"), answer_from_last_result], tools=[add, WEATHER])
    r = agent.run("weather in Paris?", session="w1")
    assert r.status == "interrupted" and r.calls == []
    assert r.pending == [{"id": "s1c1", "name": "weather.get-current", "arguments": {"city": "Paris", "unit": "c"}, "external": True}]
    assert agent.model.seen_tools[0][1]["function"]["name"] == "weather.get-current"  # offered in the OpenAI form
    assert agent.log.turn(r.turn_id).status == "interrupted"
    r = agent.resume("w1", {"s1c1": {"temp_c": 21}})
    assert r.status == "ok" and '"temp_c": 21' in r.answer
    assert [(c.name, c.ok, c.result) for c in r.calls] == [("weather.get-current", True, {"temp_c": 21})]
    assert agent.log.turn(r.turn_id).status == "ok"


def test_parallel_external_calls_mcp_style_and_a_new_process(tmp_path):
    outputs = [call("fs.read-file", path="a.txt") + call("fs.read-file", path="b.txt") + call("add", a=1, b=2), answer_from_last_result]
    r = make_agent(tmp_path, outputs, tools=[add, MCP_READ]).run("read both", session="w2")
    assert [c["arguments"]["path"] for c in r.pending] == ["a.txt", "b.txt"] and r.calls == []  # nothing of the step ran yet
    # Another Agent on the same checkpoint (another process would do the same) takes the results;
    # a non-dict result is wrapped as {"result": ...}.
    agent = make_agent(tmp_path, [answer_from_last_result], tools=[add, MCP_READ])
    assert agent.unfinished("w2") == "approve" and len(agent.pending("w2")) == 2
    r = agent.resume("w2", {"s1c1": "text of a", "s1c2": "text of b"})
    assert r.status == "ok"
    assert [(c.name, c.result) for c in r.calls] == [("fs.read-file", {"result": "text of a"}), ("fs.read-file", {"result": "text of b"}),
                                                      ("add", {"result": 3})]


def test_invalid_external_calls_go_back_to_the_model_not_to_the_caller(tmp_path):
    agent = make_agent(tmp_path, [call("weather.get-current", city="Paris", unit="kelvin"), call("weather.get-current", city="Paris", unit="f"),
                                  "It is mild."], tools=[WEATHER])
    r = agent.run("weather?", session="w3")
    assert r.status == "interrupted" and r.pending[0]["arguments"] == {"city": "Paris", "unit": "f"}
    assert r.calls[0].error_kind == "validation" and "'c' or 'f'" in r.calls[0].error  # the model repaired it
    assert agent.resume("w3", {"weather.get-current": {"temp_c": 15}}).answer == "It is mild."  # by tool name works too


def test_a_schema_tool_with_a_handler_runs_in_the_agent(tmp_path):
    weather = SchemaTool(WEATHER, handler=lambda args: {"temp_c": 30, "unit": args["unit"]})
    r = make_agent(tmp_path, [call("weather.get-current", city="Rome"), answer_from_last_result], tools=[weather]).run("hot?", session="w4")
    assert r.status == "ok" and r.calls[0].result == {"temp_c": 30, "unit": "c"} and r.pending == []


def test_external_calls_and_approvals_wait_together(tmp_path):
    agent = make_agent(tmp_path, [call("add", a=2, b=2) + call("weather.get-current", city="Oslo"), "Done."],
                       tools=[add, WEATHER], approval={"add", "weather.get-current"})
    r = agent.run("go", session="w5")
    # An external call asks for its result, not for approval (the caller decides by running it).
    assert [(c["name"], c.get("external", False)) for c in r.pending] == [("add", False), ("weather.get-current", True)]
    with pytest.raises(ValueError, match=r"run by the caller: resume with their results"):
        agent.resume("w5", "approve")
    with pytest.raises(ValueError, match=r"no result for call s1c2"):
        agent.resume("w5", {"s1c1": "approve"})
    with pytest.raises(ValueError, match="is not JSON"):
        agent.resume("w5", {"s1c1": "approve", "s1c2": object()})
    r = agent.resume("w5", {"s1c1": "deny", "s1c2": None})  # null is a result like any other
    assert r.status == "ok"
    assert [(c.name, c.ok, c.error_kind, c.result) for c in r.calls] == [("add", False, "denied", None),
                                                                         ("weather.get-current", True, None, {"result": None})]


def test_an_abandoned_external_result_answers_no_call_of_a_later_turn(tmp_path):
    """Call ids repeat across turns (s1c1 ...): a result a dead process left between approve and act
    must not stand in for a later turn's call of the same id."""
    agent = make_agent(tmp_path, [call("weather.get-current", city="Paris"), call("add", a=1, b=2), "Three."], tools=[add, WEATHER])
    agent.run("weather?", session="w6")
    config = {"configurable": {"thread_id": "w6"}}
    agent.graph.update_state(config, {"supplied": {"s1c1": {"temp_c": 99}}}, as_node="approve")  # as if it died right after approve
    assert agent.unfinished("w6") == "act"
    agent.abandon("w6")
    r = agent.run("add them", session="w6")
    assert r.status == "ok" and [(c.id, c.name, c.result) for c in r.calls] == [("s1c1", "add", {"result": 3})]
