"""The root app: --version, choices in --help, and which errors exit 2 (the user's) or 1 (a failure or bug)."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest
from typer.testing import CliRunner

import mmagent.cli.tools as tools_cli
from mmagent.cli.app import app, main
from mmagent.config import get_settings

runner = CliRunner()


def test_version_prints_the_package_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == f"mmagent {version('mmagent')}"


@pytest.mark.parametrize(("command", "choices"), [
    (["feedback"], "up|down"),
    (["learn"], "replay|ewc|olora"),
    (["memory", "search"], "default|no-ocr|clip:FOLDER"),
    (["memory", "add"], "default|no-ocr|clip:FOLDER"),
    (["memory", "search"], "text|image|audio"),
])
def test_help_shows_the_choices(command, choices):
    res = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and choices in res.stdout, res.stdout


def test_bad_choices_are_usage_errors(tmp_path):
    cases = [["feedback", "t-1", "--rating", "meh"], ["learn", "--method", "magic"],
             ["memory", "search", "x", "--embedder", "bogus", "--path", str(tmp_path)], ["memory", "search", "x", "-m", "video"]]
    for args in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and "Invalid value" in res.output, (args, res.output)


def _main(monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["mmagent", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, capsys.readouterr().err


def test_an_internal_value_error_is_a_failure_not_a_user_error(monkeypatch, capsys):
    def broken():
        raise ValueError("internal invariant broke")

    monkeypatch.setattr(tools_cli, "_registry", broken)
    code, err = _main(monkeypatch, capsys, "tools", "list")
    assert code == 1 and "ValueError: internal invariant broke" in err and "Traceback" not in err
    code, err = _main(monkeypatch, capsys, "--debug", "tools", "list")
    assert code == 1 and "Traceback" in err and "internal invariant broke" in err


def test_user_errors_still_exit_2_with_one_line(monkeypatch, capsys, tmp_path):
    code, err = _main(monkeypatch, capsys, "models", "pull", "gpt-7")  # UnknownModelError: a UserError
    assert code == 2 and "unknown model 'gpt-7'" in err and "Traceback" not in err
    monkeypatch.setenv("MMAGENT_THREADS", "many")  # a malformed setting: ConfigError
    get_settings.cache_clear()
    code, err = _main(monkeypatch, capsys, "tools", "list")
    assert code == 2 and "invalid settings" in err and "threads" in err
    monkeypatch.delenv("MMAGENT_THREADS")
    get_settings.cache_clear()
    bad = tmp_path / "export"
    bad.mkdir()
    for name, text in [("meta.json", json.dumps({"format": 99})), ("items.jsonl", ""), ("vectors.npy", "")]:
        (bad / name).write_text(text)
    code, err = _main(monkeypatch, capsys, "memory", "import", str(bad), "--path", str(tmp_path / "mem"))
    assert code == 2 and "export format 99 is not supported" in err
