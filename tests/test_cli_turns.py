"""`mmagent turns list|show` and the turn id `mmagent run` prints: the way from a turn to `mmagent feedback`."""

from __future__ import annotations

import json
import re

from agent_fixtures import call
from PIL import Image
from typer.testing import CliRunner

from mmagent.cli.app import app

runner = CliRunner()


def _run(tmp_path, prompt: str, outputs: list[str], *extra: str):
    script = tmp_path / f"script-{len(list(tmp_path.glob('script-*')))}.json"
    script.write_text(json.dumps(outputs))
    return runner.invoke(app, ["run", prompt, "--model", f"scripted:{script}", *extra])


def _turn_id(res) -> str:
    return re.search(r"turn: (t-[0-9a-f]+)", res.stderr).group(1)


def test_run_prints_the_turn_id_after_the_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    res = _run(tmp_path, "say hi", ["Hi!"], "--tool", "crop_image")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "Hi!"  # the answer stays the main (and only) output
    turn = _turn_id(res)
    assert f"mmagent feedback {turn} --rating up|down" in res.stderr
    assert json.loads(runner.invoke(app, ["turns", "show", turn, "--json"]).stdout)["answer"] == "Hi!"


def test_turns_list_and_show_lead_to_feedback(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    img = tmp_path / "p.png"
    Image.new("RGB", (40, 20), "blue").save(img)
    first = _run(tmp_path, "make it 10 wide", [call("resize_image", image="image_1", width=10), "Resized: image_2."],
                 "--image", str(img), "--tool", "resize_image", "--session", "s-a")
    second = _run(tmp_path, "just talk", ["Sure."], "--tool", "resize_image", "--session", "s-b")
    t1, t2 = _turn_id(first), _turn_id(second)

    rows = json.loads(runner.invoke(app, ["turns", "list", "--json"]).stdout)
    assert [r["turn_id"] for r in rows] == [t2, t1]  # newest first
    assert rows[1]["prompt"] == "make it 10 wide" and rows[1]["answer"] == "Resized: image_2."
    assert [(c["name"], c["arguments"], c["ok"]) for c in rows[1]["calls"]] == [("resize_image", {"image": "image_1", "width": 10}, True)]
    assert rows[0]["calls"] == [] and {r["rating"] for r in rows} == {None}
    assert [r["turn_id"] for r in json.loads(runner.invoke(app, ["turns", "list", "--session", "s-a", "--json"]).stdout)] == [t1]
    assert len(json.loads(runner.invoke(app, ["turns", "list", "--limit", "1", "--json"]).stdout)) == 1

    fb = runner.invoke(app, ["feedback", t1, "--rating", "down", "--correct-call", '{"name": "resize_image", "arguments": {"image": "image_1", "width": 12}}'])
    assert fb.exit_code == 0, fb.output
    rows = json.loads(runner.invoke(app, ["turns", "list", "--json"]).stdout)
    assert (rows[1]["rating"], rows[1]["corrected"]) == ("down", True)
    table = runner.invoke(app, ["turns", "list"])
    assert table.exit_code == 0 and t1 in table.stdout and "rating: down (corrected)" in table.stdout and "resize_image" in table.stdout

    shown = runner.invoke(app, ["turns", "show", t1])
    assert shown.exit_code == 0, shown.output
    for text in ("prompt: make it 10 wide", 'resize_image {"image": "image_1", "width": 10} -> ok', "answer: Resized: image_2.",
                 "rating: down, corrected to resize_image", f"mmagent feedback {t1} --rating up|down"):
        assert text in shown.stdout, (text, shown.stdout)
    doc = json.loads(runner.invoke(app, ["turns", "show", t1, "--json"]).stdout)
    assert doc["rating"] == "down" and doc["feedback"][0]["correct_calls"][0]["arguments"]["width"] == 12
    assert doc["calls"][0]["name"] == "resize_image" and doc["steps_log"]


def test_turns_without_a_log_and_unknown_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path / "home"))
    empty = runner.invoke(app, ["turns", "list"])
    assert empty.exit_code == 0 and "no turns logged yet" in empty.stdout
    assert json.loads(runner.invoke(app, ["turns", "list", "--json"]).stdout) == []
    assert not (tmp_path / "home").exists()  # listing creates no log
    missing = runner.invoke(app, ["turns", "show", "t-nope"])
    assert missing.exit_code == 2 and "no logged turn 't-nope'" in missing.stderr
    assert runner.invoke(app, ["turns", "list", "--limit", "0"]).exit_code == 2
