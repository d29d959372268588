"""Long commands show a Rich progress bar on stderr (not with --json)."""

import json

from typer.testing import CliRunner

from mmagent.cli.app import app


def test_eval_shows_progress_and_accepts_scripted_models(tmp_path):
    """Long commands show a progress bar (not with --json); eval takes scripted: specs like run/chat."""
    script = tmp_path / "s.json"
    script.write_text(json.dumps(["No tool is needed for that."]))
    res = CliRunner().invoke(app, ["eval", "recipes/suites/unseen-phrasings.jsonl", "--model", f"scripted:{script}", "--limit", "1"])
    assert res.exit_code == 0, res.output
    assert "eval unseen-phrasings.jsonl" in res.output and "1/1" in res.output and "strict_success" in res.output
    res = CliRunner().invoke(app, ["eval", "recipes/suites/unseen-phrasings.jsonl", "--model", f"scripted:{script}", "--limit", "1", "--json"])
    assert res.exit_code == 0 and "1/1" not in res.output and json.loads(res.stdout)["metrics"]  # stderr may hold loading bars


def test_train_shows_progress_per_step(tmp_path):
    res = CliRunner().invoke(app, ["train", "tool-tuning", "--config", "recipes/configs/tools-tiny-cpu.yaml", "steps=2", f"out={tmp_path / 'r'}"])
    assert res.exit_code == 0, res.output
    assert "tool-tuning" in res.output and "2/2" in res.output and "loss" in res.output
