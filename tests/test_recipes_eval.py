"""Eval metrics on hand-made predictions (each metric can fail), the replay runner, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mmagent.recipes.eval import evaluate, markdown_table, summarize
from mmagent.training.scoring import (
    Prediction,
    SuiteItem,
    arguments_match,
    load_suite,
    run_item,
    score_item,
    value_matches,
)
from PIL import Image
from typer.testing import CliRunner

from mmagent.protocol.chat import ChatResult, ToolCall
from mmagent.protocol.toolcall import function_of

TOOLS = [
    {"type": "function", "function": {"name": "read_text", "parameters": {"type": "object", "properties": {"image": {"type": "string"}, "min_confidence": {"type": "number", "default": 0.5}}, "required": ["image"]}}},
    {"type": "function", "function": {"name": "detect_faces", "parameters": {"type": "object", "properties": {"image": {"type": "string"}}, "required": ["image"]}}},
    {"type": "function", "function": {"name": "crop_image", "parameters": {"type": "object", "properties": {"image": {"type": "string"}, "box": {"type": "object"}}, "required": ["image", "box"]}}},
    {"type": "function", "function": {"name": "classify_image", "parameters": {"type": "object", "properties": {"image": {"type": "string"}, "top_k": {"type": "integer", "default": 5}}, "required": ["image"]}}},
]
BOX = {"x0": 1, "y0": 2, "x1": 30, "y1": 40}


def item(expected, **kw) -> SuiteItem:
    return SuiteItem(id="x", prompt="p", expected=expected, **kw)


def pred(*calls, errors=()) -> Prediction:
    return Prediction("x", calls=[ToolCall(name=n, arguments=a) for n, a in calls], parse_errors=list(errors))


def test_values_are_matched_with_their_json_types():
    assert value_matches(5, 5) and not value_matches("5", 5) and not value_matches(True, 1) and not value_matches(1, True)
    assert value_matches(3, 3.0) and not value_matches(3.5, 3)
    assert value_matches("  The Cat. ", "the cat") and not value_matches("the dog", "the cat")
    assert value_matches(dict(BOX), BOX) and not value_matches({**BOX, "x0": 2}, BOX) and not value_matches([BOX], BOX)


def test_arguments_follow_bfcl_rules():
    exp = {"image": ["image_1"], "top_k": ["", 3]}
    assert arguments_match({"image": "image_1"}, exp, {"top_k": 5})  # optional left out
    assert arguments_match({"image": "image_1", "top_k": 3}, exp, {"top_k": 5})
    assert arguments_match({"image": "image_1", "top_k": 5}, exp, {"top_k": 5})  # the default counts as omitted
    assert not arguments_match({"image": "image_1", "top_k": 4}, exp, {"top_k": 5})
    assert not arguments_match({"top_k": 3}, exp, {})  # required missing
    assert not arguments_match({"image": "image_2"}, exp, {})
    assert not arguments_match({"image": "image_1", "seed": 1}, exp, {})  # an argument nobody asked for
    assert arguments_match({"image": "image_1", "min_confidence": 0.5}, {"image": ["image_1"]}, {"min_confidence": 0.5})


def test_each_metric_can_fail_on_its_own():
    one = [{"name": "read_text", "arguments": {"image": ["image_1"]}}]
    good = score_item(item(one), pred(("read_text", {"image": "image_1"})), TOOLS)
    assert good.strict and good.parsed and good.decision and good.names and good.arguments
    bad_args = score_item(item(one), pred(("read_text", {"image": "image_9"})), TOOLS)
    assert bad_args.names and not bad_args.arguments and not bad_args.strict
    wrong_tool = score_item(item(one), pred(("detect_faces", {"image": "image_1"})), TOOLS)
    assert wrong_tool.decision and not wrong_tool.names and wrong_tool.arguments is None and not wrong_tool.strict
    no_call = score_item(item(one), pred(), TOOLS)
    assert not no_call.decision and not no_call.strict
    unparsed = score_item(item(one), pred(("read_text", {"image": "image_1"}), errors=["bad json"]), TOOLS)
    assert not unparsed.parsed and not unparsed.strict
    called_needlessly = score_item(item([]), pred(("read_text", {"image": "image_1"})), TOOLS)
    assert not called_needlessly.decision and called_needlessly.names is None and not called_needlessly.strict
    answered = score_item(item([]), pred(), TOOLS)
    assert answered.strict
    made_up = score_item(item(one), pred(("web_search", {"q": "x"})), TOOLS)
    assert made_up.n_hallucinated == 1
    m = summarize([good, bad_args, wrong_tool, no_call, unparsed, called_needlessly, answered, made_up])
    assert m.n == 8 and m.parse_rate == 7 / 8 and m.decision_accuracy == 6 / 8
    assert m.strict_success == 2 / 8 and m.tool_name_accuracy == 3 / 6 and m.argument_accuracy == 2 / 3
    assert m.hallucinated_tool_rate == 1 / 6  # six calls were made, one to a tool that does not exist
    assert "| run |" in markdown_table({"m": m})


def test_plan_f1_scores_nodes_and_edges():
    chain = [{"name": "detect_faces", "arguments": {"image": ["image_1"]}}, {"name": "crop_image", "arguments": {"image": ["image_1"], "box": [BOX]}}]
    right = score_item(item(chain), pred(("detect_faces", {"image": "image_1"}), ("crop_image", {"image": "image_1", "box": BOX})), TOOLS)
    assert right.node_f1 == right.edge_f1 == 1.0 and right.strict
    swapped = score_item(item(chain), pred(("crop_image", {"image": "image_1", "box": BOX}), ("detect_faces", {"image": "image_1"})), TOOLS)
    assert swapped.node_f1 == 1.0 and swapped.edge_f1 == 0.0 and not swapped.names
    half = score_item(item(chain), pred(("detect_faces", {"image": "image_1"})), TOOLS)
    assert half.node_f1 == pytest.approx(2 / 3) and half.edge_f1 == 0.0
    assert score_item(item(chain[:1]), pred(("detect_faces", {"image": "image_1"})), TOOLS).node_f1 is None


class Scripted:
    """A fake ChatModel that replies with given texts and records what it was shown."""

    name = "scripted"

    def __init__(self, replies: list[str]) -> None:
        self.replies, self.seen = list(replies), []

    def chat(self, messages, tools=None, *, artifacts=None, max_new_tokens=256, constrained=False, on_token=None) -> ChatResult:
        from mmagent.protocol.toolcall import parse_tool_calls

        self.seen.append(list(messages))
        text = self.replies.pop(0)
        calls, errors, _ = parse_tool_calls(text)
        return ChatResult(text=text, tool_calls=calls, parse_errors=errors)


def _suite(tmp_path: Path) -> Path:
    Image.new("RGB", (32, 32), "white").save(tmp_path / "a.png")
    lines = [
        {"id": "chain", "prompt": "find the faces and crop the first", "images": ["a.png"],
         "expected": [{"name": "detect_faces", "arguments": {"image": ["image_1"]}}, {"name": "crop_image", "arguments": {"image": ["image_1"], "box": [BOX]}}],
         "results": [{"faces": [BOX], "count": 1}, {"image": "image_2", "width": 29, "height": 38}]},
        {"id": "none", "prompt": "hello", "images": [], "expected": []},
    ]
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_runner_replays_recorded_results_step_by_step(tmp_path):
    suite = _suite(tmp_path)
    chain = load_suite(suite)[0]
    model = Scripted(['<tool_call>{"name": "detect_faces", "arguments": {"image": "image_1"}}</tool_call>',
                      '<tool_call>{"name": "crop_image", "arguments": {"image": "image_1", "box": ' + json.dumps(BOX) + "}}</tool_call>"])
    p = run_item(model, chain, TOOLS, tmp_path)
    assert [c.name for c in p.calls] == ["detect_faces", "crop_image"] and not model.replies
    second = model.seen[1]
    assert second[0].images == ["image_1"] and second[-1].role == "tool" and '"count": 1' in second[-1].content
    assert score_item(chain, p, TOOLS).strict


def test_evaluate_reports_metrics_over_a_suite(tmp_path):
    suite = _suite(tmp_path)
    model = Scripted(['<tool_call>{"name": "detect_faces", "arguments": {"image": "image_1"}}</tool_call>', "Just a reply.", "Hi!"])
    rep = evaluate(model, suite, TOOLS)
    assert rep.metrics.n == 2 and rep.metrics.strict_success == 0.5 and rep.metrics.node_f1 == pytest.approx(2 / 3)


def test_bad_suites_are_refused_with_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "p", "expected": [{"arguments": {}}]}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: expected.0.name"):
        load_suite(bad)
    bad.write_text('{"id": "a", "prompt": "p", "images": ["nope.png"], "expected": []}\n')
    with pytest.raises(ValueError, match="nope.png not found"):
        load_suite(bad)


def test_eval_cli_table_json_and_errors(tmp_path, monkeypatch):
    from mmagent.cli.app import app

    import mmagent.backends

    suite = _suite(tmp_path)
    replies = ['<tool_call>{"name": "detect_faces", "arguments": {"image": "image_1"}}</tool_call>', "no", "Hi!"]
    monkeypatch.setattr(mmagent.backends, "load_chat_model", lambda spec: Scripted(list(replies)))
    r = CliRunner().invoke(app, ["eval", str(suite), "--json", "--out", str(tmp_path / "rep.json")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["metrics"]["n"] == 2 and (tmp_path / "rep.json").is_file()
    assert json.loads(r.stdout)["by_kind"]["unlabeled"]["n"] == 2 and "abstention_rate" in json.loads(r.stdout)["metrics"]
    r = CliRunner().invoke(app, ["eval", str(suite)])
    assert r.exit_code == 0 and "strict_success" in r.output
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "missing.jsonl")])
    assert r.exit_code == 2 and "does not exist" in r.output


# -- items with their own tools, parallel calls, abstention ------------------------------------------

WEATHER = {"type": "function", "function": {"name": "weather.get-current", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"], "default": "c"}}, "required": ["city"]}}}
MCP_TIME = {"name": "clock.now", "description": "The time in a zone.", "inputSchema": {"type": "object", "properties": {"tz": {"type": "string"}}}}


def _call(name: str, **arguments) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def test_parallel_items_match_calls_in_any_order_and_count_in_parallel_rate():
    both = [{"name": "weather.get-current", "arguments": {"city": ["Paris"], "unit": [""]}},
            {"name": "weather.get-current", "arguments": {"city": ["Oslo"]}}]
    par = item(both, kind="parallel", tools=[WEATHER])
    swapped = score_item(par, pred(("weather.get-current", {"city": "Oslo"}), ("weather.get-current", {"city": "Paris", "unit": "c"})), [])
    assert swapped.names and swapped.arguments and swapped.strict and swapped.node_f1 is None  # no plan order in parallel calls
    twice = score_item(par, pred(("weather.get-current", {"city": "Oslo"}), ("weather.get-current", {"city": "Oslo"})), [])
    assert twice.names and not twice.arguments and not twice.strict  # each expected call needs its own emitted call
    short = score_item(par, pred(("weather.get-current", {"city": "Oslo"})), [])
    assert not short.names and not short.strict
    in_order = score_item(item(both, tools=[WEATHER]), pred(("weather.get-current", {"city": "Oslo"}), ("weather.get-current", {"city": "Paris"})), [])
    assert not in_order.arguments  # other kinds still match in order
    m = summarize([swapped, twice, short, in_order])
    assert m.parallel_rate == 1 / 3 and m.abstention_rate is None


def test_item_tools_are_offered_scored_and_normalized(tmp_path):
    it = item([{"name": "clock.now", "arguments": {"tz": ["UTC"]}}], tools=[MCP_TIME, WEATHER])
    assert it.tools[0] == {"type": "function", "function": {"name": "clock.now", "description": "The time in a zone.",
                                                           "parameters": MCP_TIME["inputSchema"]}}  # MCP -> OpenAI form for every backend
    model = Scripted([_call("clock.now", tz="UTC")])
    p = run_item(model, it, TOOLS, tmp_path)
    assert [c.name for c in p.calls] == ["clock.now"]
    s = score_item(it, p, TOOLS)  # scored against the item's tools, not the run's
    assert s.strict and s.n_hallucinated == 0
    # The item's defaults count: unit "c" is the schema default, so it may stand for an omitted unit.
    w = item([{"name": "weather.get-current", "arguments": {"city": ["Oslo"]}}], tools=[WEATHER])
    assert score_item(w, pred(("weather.get-current", {"city": "Oslo", "unit": "c"})), []).strict
    assert score_item(w, pred(("read_text", {"image": "image_1"})), TOOLS).n_hallucinated == 1  # a built-in is not offered here


def test_abstention_rate_and_metrics_per_kind(tmp_path):
    lines = [
        {"id": "a", "prompt": "hi", "expected": [], "kind": "no_tool", "answers": ["Hello!"]},
        {"id": "b", "prompt": "hello", "expected": [], "kind": "no_tool"},
        {"id": "c", "prompt": "time and weather in Oslo", "kind": "parallel", "tools": [WEATHER, MCP_TIME],
         "expected": [{"name": "weather.get-current", "arguments": {"city": ["Oslo"]}}, {"name": "clock.now", "arguments": {"tz": ["Europe/Oslo"]}}],
         "results": [{"temp_c": -3}, {"time": "12:00"}]},
        {"id": "d", "prompt": "weather in Rome", "tools": [WEATHER], "expected": [{"name": "weather.get-current", "arguments": {"city": ["Rome"]}}]},
    ]
    suite = tmp_path / "open.jsonl"
    suite.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert load_suite(suite)[0].answers == ["Hello!"]
    model = Scripted(["Hello!", _call("weather.get-current", city="Paris"),
                      _call("clock.now", tz="Europe/Oslo") + _call("weather.get-current", city="Oslo"),  # parallel, other order
                      _call("weather.get-current", city="Rome")])
    rep = evaluate(model, suite)  # every item that calls brings its tools; no-tool items get the built-ins
    assert rep.metrics.n == 4 and rep.metrics.abstention_rate == 0.5 and rep.metrics.parallel_rate == 1.0
    assert rep.metrics.strict_success == 0.75
    assert set(rep.by_kind) == {"no_tool", "parallel", "unlabeled"}
    assert rep.by_kind["no_tool"].abstention_rate == 0.5 and rep.by_kind["parallel"].strict_success == 1.0
    assert rep.by_kind["unlabeled"].n == 1 and rep.by_kind["unlabeled"].strict_success == 1.0
    assert "abstention_rate" in markdown_table({"m": rep.metrics}) and "parallel_rate" in markdown_table({"m": rep.metrics})


class Offered(Scripted):
    """Records the tool names each reply was offered."""

    def chat(self, messages, tools=None, **kw) -> ChatResult:
        self.offered = [*getattr(self, "offered", []), [function_of(t)["name"] for t in tools or []]]
        return super().chat(messages, tools, **kw)


def test_with_builtins_offers_the_built_ins_beside_an_items_own_tools(tmp_path):
    from mmagent.tools.builtins import BUILTIN_NAMES

    suite = tmp_path / "open.jsonl"
    suite.write_text(json.dumps({"id": "d", "prompt": "weather in Rome", "tools": [WEATHER],
                                 "expected": [{"name": "weather.get-current", "arguments": {"city": ["Rome"]}}]}) + "\n")
    alone, both = Offered([_call("weather.get-current", city="Rome")]), Offered([_call("read_text", image="image_1")])
    rep = evaluate(alone, suite)
    assert alone.offered == [["weather.get-current"]] and not rep.with_builtins and rep.metrics.strict_success == 1.0
    rep = evaluate(both, suite, with_builtins=True)
    assert both.offered[0][0] == "weather.get-current" and set(BUILTIN_NAMES) <= set(both.offered[0])
    assert rep.with_builtins and rep.metrics.hallucinated_tool_rate == 0.0 and rep.metrics.strict_success == 0.0  # offered, but wrong
    assert rep.items[0].called == ["read_text"] and rep.items[0].arguments_called == [{"image": "image_1"}]  # what a miss looked like


def test_parallel_replay_feeds_each_call_its_own_result(tmp_path):
    read = {"name": "fs.read", "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}}}
    it = item([{"name": "weather.get-current", "arguments": {"city": ["Oslo"]}}, {"name": "clock.now", "arguments": {}},
               {"name": "fs.read", "arguments": {"path": ["a"]}}],
              kind="parallel", tools=[WEATHER, MCP_TIME, read], results=[{"temp_c": -3}, {"time": "12:00"}, {"text": "A"}])
    model = Scripted([_call("clock.now") + _call("weather.get-current", city="Oslo"), _call("fs.read", path="a")])
    p = run_item(model, it, [], tmp_path)
    replayed = [m.content for m in model.seen[1] if m.role == "tool"]
    assert '"time": "12:00"' in replayed[0] and '"temp_c": -3' in replayed[1]  # by name, not by position
    assert score_item(it, p, []).strict


def test_bad_item_tools_are_refused_with_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "prompt": "p", "expected": [], "tools": [{"description": "no name"}]}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: tools: .*not a tool schema"):
        load_suite(bad)
    bad.write_text(json.dumps({"id": "a", "prompt": "p", "expected": [], "tools": [WEATHER, WEATHER]}) + "\n")
    with pytest.raises(ValueError, match="tool names repeat"):
        load_suite(bad)
