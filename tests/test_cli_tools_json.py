"""`--tools-json`: run, resume, chat and `tools list/show` take tool schemas from a file; calls to
them are printed for the caller (exit 4) and answered with `mmagent resume --tool-results`."""

from __future__ import annotations

import json

from agent_fixtures import call
from typer.testing import CliRunner

from mmagent.cli.app import app

runner = CliRunner()
WEATHER = {"type": "function", "function": {"name": "weather.get-current", "description": "Current weather in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"], "default": "c"}},
    "required": ["city"]}}}


def files(tmp_path, *outputs: str):
    (tmp_path / "tools.json").write_text(json.dumps([WEATHER]))
    (tmp_path / "script.json").write_text(json.dumps(list(outputs)))
    return str(tmp_path / "tools.json"), f"scripted:{tmp_path / 'script.json'}"


def test_run_prints_external_calls_exits_4_and_resume_takes_their_results(tmp_path):
    tools, model = files(tmp_path, call("weather.get-current", city="Paris"))
    res = runner.invoke(app, ["run", "weather?", "--model", model, "--tool", "resize_image", "--tools-json", tools, "--session", "cj1"])
    assert res.exit_code == 4, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {"id": "s1c1", "name": "weather.get-current",
                                                                "arguments": {"city": "Paris", "unit": "c"}, "external": True}
    assert "mmagent resume cj1 --tool-results" in res.stderr
    res = runner.invoke(app, ["resume", "cj1", "--model", files(tmp_path, "It is 21 C.")[1], "--tools-json", tools])
    assert res.exit_code == 2 and "pass them with --tool-results" in res.output
    (tmp_path / "results.json").write_text(json.dumps({"s1c1": {"temp_c": 21}}))
    res = runner.invoke(app, ["resume", "cj1", "--model", files(tmp_path, "It is 21 C.")[1], "--tools-json", tools,
                              "--tool-results", str(tmp_path / "results.json"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "ok" and out["answer"] == "It is 21 C." and out["calls"][0]["result"] == {"temp_c": 21}


def test_run_json_holds_the_pending_calls(tmp_path):
    tools, model = files(tmp_path, call("weather.get-current", city="Rome", unit="f"))
    res = runner.invoke(app, ["run", "weather?", "--model", model, "--tools-json", tools, "--json"])
    assert res.exit_code == 4, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "interrupted" and out["pending"][0]["arguments"] == {"city": "Rome", "unit": "f"}


def test_bad_tool_files_are_one_line_exit_2(tmp_path):
    _, model = files(tmp_path, "hi")
    (tmp_path / "bad.json").write_text(json.dumps([{"name": "has space"}]))
    for path, message in [(tmp_path / "bad.json", "bad.json: tool 0"), (tmp_path / "missing.json", "no tool schemas file")]:
        for args in (["run", "hi", "--model", model], ["tools", "list"]):
            res = runner.invoke(app, [*args, "--tools-json", str(path)])
            assert res.exit_code == 2 and message in res.output, res.output
    (tmp_path / "clash.json").write_text(json.dumps([{"name": "crop_image"}]))  # a built-in tool's name
    res = runner.invoke(app, ["run", "hi", "--model", model, "--tools-json", str(tmp_path / "clash.json")])
    assert res.exit_code == 2 and "already registered" in res.output


def test_tools_list_and_show_include_the_schemas(tmp_path):
    tools, _ = files(tmp_path)
    res = runner.invoke(app, ["tools", "list", "--json", "--tools-json", tools])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["weather.get-current"] == {"name": "weather.get-current", "description": "Current weather in a city.",
                                           "arguments": ["city", "unit"], "required": ["city"], "external": True}
    assert rows["crop_image"]["external"] is False
    assert "weather.get-current" not in {r["name"] for r in json.loads(runner.invoke(app, ["tools", "list", "--json"]).stdout)}
    res = runner.invoke(app, ["tools", "show", "weather.get-current", "--json", "--tools-json", tools])
    assert res.exit_code == 0 and json.loads(res.stdout)["schema"] == WEATHER


def test_chat_asks_the_user_for_an_external_result(tmp_path):
    tools, model = files(tmp_path, call("weather.get-current", city="Oslo"), "Cold: -3 C.")
    res = runner.invoke(app, ["chat", "--model", model, "--tools-json", tools, "--tool", "resize_image", "--session", "cj2"],
                        input='weather in Oslo?\n{"temp_c": -3}\n/quit\n')
    assert res.exit_code == 0, res.output
    assert 'result of weather.get-current({"city": "Oslo", "unit": "c"})' in res.output and "Cold: -3 C." in res.output


def test_eval_offers_the_users_tools_beside_the_builtins_to_items_without_their_own(tmp_path):
    """`mmagent eval SUITE --tools-json F`: the built-in suites as an agent with custom tools serves them."""
    tools, model = files(tmp_path, call("weather.get-current", city="Paris"), call("weather.get-current", city="Paris"))
    suite = tmp_path / "s.jsonl"
    suite.write_text(json.dumps({"id": "w1", "prompt": "weather in Paris?", "images": [],
                                 "expected": [{"name": "weather.get-current", "arguments": {"city": ["Paris"], "unit": ["", "c"]}}]}) + "\n")
    got = {}
    for flag in ([], ["--tools-json", tools]):
        out = tmp_path / f"r{len(flag)}.json"
        res = runner.invoke(app, ["eval", str(suite), "--model", model, "--all-tools", "--json", "--out", str(out), *flag])
        assert res.exit_code == 0, res.output
        got[bool(flag)] = json.loads(out.read_text())["metrics"]
    assert got[True]["strict_success"] == 1.0 and got[True]["hallucinated_tool_rate"] == 0.0
    assert got[False]["hallucinated_tool_rate"] == 1.0  # without the file the tool does not exist
    res = runner.invoke(app, ["eval", str(suite), "--model", model, "--tools-json", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and "no tool schemas file" in res.output
