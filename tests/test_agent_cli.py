"""`mmagent run` through the real Typer app, on a scripted model and built-in image tools."""

from __future__ import annotations

import json

from agent_fixtures import call
from PIL import Image
from typer.testing import CliRunner

from mmagent.cli.app import app

runner = CliRunner()


def script(tmp_path, outputs):
    path = tmp_path / "script.json"
    path.write_text(json.dumps(outputs))
    return f"scripted:{path}"


def test_run_json_prints_answer_and_calls(tmp_path):
    img = tmp_path / "photo.png"
    Image.new("RGB", (40, 20), "blue").save(img)
    spec = script(tmp_path, [call("resize_image", image="image_1", width=10), "Resized to 10x5: image_2."])
    res = runner.invoke(app, ["run", "make it 10 px wide", "--image", str(img), "--model", spec, "--tool", "resize_image", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["answer"] == "Resized to 10x5: image_2." and out["status"] == "ok"
    assert [(c["name"], c["arguments"]) for c in out["calls"]] == [("resize_image", {"image": "image_1", "width": 10})]
    assert out["calls"][0]["result"]["image"] == "image_2" and out["artifacts"] == ["image_1", "image_2"]
    assert out["turn_id"] and out["session"] and len(out["trace"]) == 2


def test_run_streams_tool_traffic_and_prints_the_answer(tmp_path):
    spec = script(tmp_path, [call("resize_image", image="image_9", width=10), "No such image."])
    res = runner.invoke(app, ["run", "resize", "--model", spec, "--tool", "resize_image", "--max-steps", "2"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().endswith("No such image.")
    assert "-> resize_image(image=image_9, width=10)" in res.output and "validation" in res.output


def test_run_reports_failed_turns_and_bad_input(tmp_path):
    res = runner.invoke(app, ["run", "hi", "--model", script(tmp_path, ["<tool_call>{x"] * 3), "--tool", "crop_image", "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["status"] == "error"
    res = runner.invoke(app, ["run", "hi", "--image", str(tmp_path / "missing.png")])
    assert res.exit_code == 2 and "no such file" in res.output
    res = runner.invoke(app, ["run", "hi", "--model", script(tmp_path, ["ok"]), "--tool", "no_such_tool"])
    assert res.exit_code == 2 and "unknown tool 'no_such_tool'" in res.output
    (tmp_path / "bad.json").write_text("{not json")
    res = runner.invoke(app, ["run", "hi", "--model", f"scripted:{tmp_path / 'bad.json'}"])
    assert res.exit_code == 2 and "is not JSON" in res.output


def test_run_exits_3_when_the_step_limit_ends_the_turn(tmp_path):
    img = tmp_path / "photo.png"
    Image.new("RGB", (40, 20), "blue").save(img)
    loop = [call("resize_image", image="image_1", width=10)] * 2
    res = runner.invoke(app, ["run", "resize", "--image", str(img), "--model", script(tmp_path, loop), "--tool", "resize_image",
                              "--max-steps", "2", "--json"])
    assert res.exit_code == 3, res.output
    assert json.loads(res.stdout)["status"] == "step_limit"
    res = runner.invoke(app, ["run", "resize", "--image", str(img), "--model", script(tmp_path, loop), "--tool", "resize_image", "--max-steps", "2"])
    assert res.exit_code == 3 and "stopped after 2 steps" in res.stdout and "step limit reached" in res.stderr
    help_text = " ".join(runner.invoke(app, ["run", "--help"]).stdout.split())
    assert "3 the step limit (--max-steps) ended the turn" in help_text


def test_memory_tools_get_the_memory_store(tmp_path):
    """The store at --memory is connected, and opened only by a memory call (see test_agent_defaults)."""
    spec = script(tmp_path, ["Nothing to look up."])
    res = runner.invoke(app, ["run", "hello", "--model", spec, "--tool", "search_memory", "--memory", str(tmp_path / "mem")])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "mem").exists()  # no memory call: the store (and its embedder) never opened
    res = runner.invoke(app, ["run", "hello", "--model", script(tmp_path, ["hi"]), "--tool", "crop_image", "--memory", str(tmp_path / "m2")])
    assert res.exit_code == 0 and not (tmp_path / "m2").exists()  # no memory tool, no store
