"""`mmagent memory add|search|delete|stats|rebuild|export|import` through CliRunner."""

from __future__ import annotations

import json

import pytest
from memory_fakes import FakeEmbedder
from PIL import Image
from typer.testing import CliRunner

import mmagent.cli.memory as memory_cli
from mmagent.cli.app import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_embedder(monkeypatch):
    # Our own seam: the CLI's embedder factory, so no model loads in unit tests.
    monkeypatch.setattr(memory_cli, "make_embedder", lambda spec: FakeEmbedder(dim=16 if spec == "clip:/x" else 32, space=spec if spec == "clip:/x" else "fake-words"))


def run(*args: str):
    return runner.invoke(app, ["memory", *args])


def test_add_search_delete_stats(tmp_path):
    home = ["--path", str(tmp_path / "mem")]
    r = run("add", "the spare key is under the blue pot", "--tag", "home", *home, "--json")
    assert r.exit_code == 0, r.output
    key_id = json.loads(r.output)["id"]
    run("add", "meeting with Ana on friday", "--tag", "work", "--session", "s2", *home)
    Image.new("RGB", (8, 8), (0, 200, 0)).save(tmp_path / "g.png")
    r = run("add", "a green square", "--image", str(tmp_path / "g.png"), *home, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["modality"] == "image"
    r = run("search", "spare key", "-k", "1", *home, "--json")
    assert r.exit_code == 0 and json.loads(r.output)[0]["id"] == key_id
    r = run("search", "friday", "--tag", "home", *home, "--json")
    assert [h["id"] for h in json.loads(r.output)] == [key_id]
    r = run("search", "--image", str(tmp_path / "g.png"), "-m", "image", *home, "--json")
    assert json.loads(r.output)[0]["modality"] == "image"
    r = run("search", "key", *home)
    assert r.exit_code == 0 and "spare key" in r.output
    r = run("stats", *home, "--json")
    st = json.loads(r.output)
    assert st["items"] == 3 and st["consistent"] and st["by_modality"] == {"text": 2, "image": 1}
    assert "3 items" in run("stats", *home).output
    r = run("delete", str(key_id), "999", *home, "--json")
    assert json.loads(r.output) == {"deleted": [key_id], "not_found": [999]}
    assert run("delete", "999", *home).exit_code == 1


def test_user_errors_are_one_line_exit_2(tmp_path):
    home = ["--path", str(tmp_path / "mem")]
    r = run("stats", *home)
    assert r.exit_code == 2 and "no memory at" in r.output
    assert run("add", *home).exit_code == 2
    r = run("add", "x", "--image", str(tmp_path / "none.png"), *home)
    assert r.exit_code == 2 and "no such file" in r.output
    run("add", "hello", *home)
    r = run("search", "hello", "-k", "0", *home)
    assert r.exit_code == 2 and "-k must be a positive integer" in r.output
    r = run("search", *home)
    assert r.exit_code == 2 and "exactly one of QUERY" in r.output
    r = run("search", "hello", "--embedder", "clip:/x", *home)
    assert r.exit_code != 0 and "reembed" in str(r.exception or r.output)


def test_rebuild_reembed_export_import(tmp_path):
    home = ["--path", str(tmp_path / "mem")]
    run("add", "alpha beta", *home)
    run("add", "gamma delta", *home)
    r = run("rebuild", "--compact", *home, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["items"] == 2
    r = run("export", str(tmp_path / "exp"), *home)
    assert r.exit_code == 0 and "exported 2" in r.output
    r = run("import", str(tmp_path / "exp"), "--path", str(tmp_path / "other"))
    assert r.exit_code == 0 and "imported 2" in r.output
    r = run("rebuild", "--reembed", "--embedder", "clip:/x", *home, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["space"] == "clip:/x" and json.loads(r.output)["dim"] == 16
