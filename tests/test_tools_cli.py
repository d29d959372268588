"""`mmagent tools list|show|call` through the real Typer app."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from mmagent.cli.app import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_ARTIFACT_ROOT", str(tmp_path / "artifacts"))


def test_list_json():
    r = runner.invoke(app, ["tools", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert {"read_text", "detect_faces", "crop_image", "transcribe_audio"} <= set(rows)
    assert rows["crop_image"]["required"] == ["image", "box"]


def test_list_table():
    r = runner.invoke(app, ["tools", "list"])
    assert r.exit_code == 0 and "read_text" in r.stdout


def test_show_json_and_text():
    r = runner.invoke(app, ["tools", "show", "resize_image", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["schema"]["function"]["name"] == "resize_image" and "image" in doc["output"]["properties"]
    r = runner.invoke(app, ["tools", "show", "resize_image"])
    assert r.exit_code == 0 and "keep_aspect" in r.stdout


def test_show_unknown_is_a_user_error():
    r = runner.invoke(app, ["tools", "show", "nope"])
    assert r.exit_code == 2 and "unknown tool 'nope'" in r.output


def test_call_with_attached_image(tmp_path):
    path = tmp_path / "in.png"
    Image.new("RGB", (40, 30), "green").save(path)
    r = runner.invoke(app, ["tools", "call", "crop_image", "--image", str(path), "--args", '{"box": {"x0": 0, "y0": 0, "x1": 10, "y1": 10}}', "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["attached"] == ["image_1"] and out["ok"] and out["output"]["image"] == "image_2" and out["output"]["width"] == 10
    r = runner.invoke(app, ["tools", "call", "resize_image", "--args", '{"image": "image_2", "width": 5}'])
    assert r.exit_code == 0 and "new artifact image_3" in r.stdout  # same session: ids persist across calls


def test_call_errors(tmp_path):
    r = runner.invoke(app, ["tools", "call", "crop_image", "--args", "{not json"])
    assert r.exit_code == 2 and "not valid JSON" in r.output
    r = runner.invoke(app, ["tools", "call", "crop_image", "--args", '{"image": "image_9"}', "--json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["error_kind"] == "validation"
    r = runner.invoke(app, ["tools", "call", "crop_image", "--image", str(tmp_path / "missing.png")])
    assert r.exit_code == 2 and "no such file" in r.output
