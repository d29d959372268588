"""`mmagent feedback`, `mmagent learn`, `mmagent adapters` through the real Typer app."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from mmagent.cli.app import app

runner = CliRunner()


def _home() -> Path:
    return Path(os.environ["MMAGENT_HOME"])


def _log_turn(turn_id: str, prompt: str = "what does this sign say", tools: tuple[str, ...] = ("read_text", "detect_faces")) -> None:
    from mmagent.agent.log import InteractionLog

    log = InteractionLog(_home() / "interactions.sqlite")
    log.start_turn(turn_id, "cli-s1", prompt, ["image_1"], [], list(tools), "m", None, False)
    log.end_turn(turn_id, "ok", "I don't know.", None, 1, 0)
    log.close()


def test_feedback_stores_validated_corrections(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    _log_turn("t-cli-1")
    ok = runner.invoke(app, ["feedback", "t-cli-1", "--rating", "down", "--json",
                             "--correct-call", '{"name": "read_text", "arguments": {"image": "image_1"}}'])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["correct_calls"][0]["name"] == "read_text"
    up = runner.invoke(app, ["feedback", "t-cli-1", "--rating", "up"])
    assert up.exit_code == 0 and "rating stored" in up.output


def test_feedback_bad_input_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    _log_turn("t-cli-2")
    cases = [
        (["feedback", "nope", "--rating", "up"], "no logged turn 'nope'"),
        (["feedback", "t-cli-2", "--rating", "meh"], "'meh' is not one of"),  # a typer choice
        (["feedback", "t-cli-2", "--rating", "down", "--correct-call", "{oops"], "not valid JSON"),
        (["feedback", "t-cli-2", "--rating", "down", "--correct-call", '{"name": "read_text", "arguments": {"image": 3}}'], "correction refused"),
        (["feedback", "t-cli-2", "--rating", "down", "--correct-call", '{"name": "fly", "arguments": {}}'], "unknown tool 'fly'"),
    ]
    for args, msg in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.output, (msg, r.output)
    from mmagent.feedback import FeedbackStore

    assert FeedbackStore(tmp_path / "interactions.sqlite").latest() == []  # nothing stored


def test_learn_without_new_data_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"id": "a", "prompt": "hi", "images": [], "expected": []}\n')
    r = runner.invoke(app, ["learn", "--regression-suite", str(suite)])
    assert r.exit_code == 2 and "no new feedback to learn from" in r.output, r.output
    r = runner.invoke(app, ["learn", "--method", "magic"])
    assert r.exit_code == 2 and "'magic' is not one of" in r.output  # a typer choice


def test_adapters_list_promote_rollback(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    from mmagent.continual.registry import AdapterRegistry

    from continual_fakes import lora_folder

    reg = AdapterRegistry(tmp_path / "adapters")
    for tag in ("a", "b"):
        reg.add(lora_folder(tmp_path / tag, tag), method="replay", data_hash=tag * 64)
    empty = runner.invoke(app, ["adapters", "list", "--json"])
    assert json.loads(empty.output)["serving"] is None
    assert runner.invoke(app, ["adapters", "promote", "v0001"]).exit_code == 0
    assert runner.invoke(app, ["adapters", "promote", "v0002", "--json"]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["adapters", "list", "--json"]).output)
    assert listed["serving"] == "v0002" and [v["serving"] for v in listed["versions"]] == [False, True]
    table = runner.invoke(app, ["adapters", "list"])
    assert "v0002" in table.output and "replay" in table.output
    back = runner.invoke(app, ["adapters", "rollback", "--json"])
    assert json.loads(back.output)["serving"] == "v0001"
    bad = runner.invoke(app, ["adapters", "promote", "v0009"])
    assert bad.exit_code == 2 and "unknown adapter version 'v0009'" in bad.output
    r = runner.invoke(app, ["adapters", "rollback"])
    assert r.exit_code == 0 and "the base model" in r.output
    r = runner.invoke(app, ["adapters", "rollback"])
    assert r.exit_code == 2 and "nothing to roll back" in r.output


CURRENCY_TOOL = '''
from mmagent.tools import tool


@tool
def convert_currency(amount: float, to: str) -> float:
    """Converts an amount of euros into another currency.

    Args:
        amount: How many euros.
        to: The ISO code of the target currency, e.g. USD.
    """
    return amount * 1.1
'''


def test_feedback_validates_corrections_against_the_users_own_tools(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    (tmp_path / "my_tools.py").write_text(CURRENCY_TOOL)
    monkeypatch.setenv("MMAGENT_TOOLS_MODULES", json.dumps([str(tmp_path / "my_tools.py")]))
    _log_turn("t-cur", "convert 20 euros to USD", ("read_text", "convert_currency"))  # a turn served after the tool was added
    call = '{"name": "convert_currency", "arguments": {"amount": 20, "to": "USD"}}'
    ok = runner.invoke(app, ["feedback", "t-cur", "--rating", "down", "--correct-call", call, "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["correct_calls"][0]["arguments"] == {"amount": 20, "to": "USD"}
    bad = runner.invoke(app, ["feedback", "t-cur", "--rating", "down", "--correct-call", '{"name": "convert_currency", "arguments": {"amount": "lots"}}'])
    assert bad.exit_code == 2 and "correction refused" in bad.output
    listed = runner.invoke(app, ["tools", "list", "--json"])
    assert "convert_currency" in {row["name"] for row in json.loads(listed.stdout)}


def test_a_broken_tools_module_is_one_clear_line(tmp_path, monkeypatch, capsys):
    import pytest

    from mmagent.cli.app import main
    from mmagent.config import get_settings

    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    (tmp_path / "empty_tools.py").write_text("x = 1\n")
    for spec, msg in [("no_such_module_xyz", "failed to import"), (str(tmp_path / "missing.py"), "no such file"),
                      (str(tmp_path / "empty_tools.py"), "defines no tool")]:
        monkeypatch.setenv("MMAGENT_TOOLS_MODULES", json.dumps([spec]))
        get_settings.cache_clear()
        monkeypatch.setattr("sys.argv", ["mmagent", "tools", "list"])
        with pytest.raises(SystemExit) as exit_:
            main()
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and msg in err and "Traceback" not in err, (spec, err)


def test_learn_review_lists_what_earlier_rounds_held(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    empty = runner.invoke(app, ["learn", "--review"])
    assert empty.exit_code == 0 and "nothing held for review" in empty.output
    rounds = tmp_path / "adapters" / "rounds.jsonl"
    rounds.parent.mkdir(parents=True)
    held = {"feedback_id": 7, "turn_id": "t9", "action": "held_for_review", "reason": "tie between two corrections"}
    rounds.write_text(json.dumps({"round": "r1", "promoted": False, "held_for_review": [held]}) + "\n")
    r = runner.invoke(app, ["learn", "--review", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["held_for_review"] == [{"round": "r1", **held}]
    assert "t9" in runner.invoke(app, ["learn", "--review"]).output


def test_learn_passes_the_recipes_base_data_generator(tmp_path, monkeypatch):
    """The replay buffer regenerates the base instruction data with the data recipe's generator,
    which `mmagent learn` (the entry layer) injects: the learning loop never imports the recipes. With
    nothing to learn for the default's own adapter it tries its routed open-world one, whose replay
    buffer is that adapter's base data (open-world and built-in examples)."""
    from mmagent.recipes.data import generate
    from mmagent.recipes.open_world_mix import replay_examples

    import mmagent.continual.learn as round_

    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    seen = []

    def fake_round(env, cfg):
        seen.append((env.slot, env.base_data, env.registry.root))
        raise round_.NoNewData("nothing (fake round)")

    monkeypatch.setattr(round_, "learn", fake_round)
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"id": "a", "prompt": "hi", "images": [], "expected": []}\n')
    r = runner.invoke(app, ["learn", "--regression-suite", str(suite)])
    assert r.exit_code == 2 and "nothing (fake round)" in r.output, r.output
    assert seen == [(None, generate, tmp_path / "adapters"), ("open-world", replay_examples, tmp_path / "adapters" / "routes" / "open-world")]
    seen.clear()
    r = runner.invoke(app, ["learn", "--regression-suite", str(suite), "--slot", "own"])
    assert r.exit_code == 2 and [s[0] for s in seen] == [None]
    r = runner.invoke(app, ["learn", "--regression-suite", str(suite), "--slot", "nope"])
    assert r.exit_code == 2 and "no routed adapter 'nope'" in r.output, r.output


def test_replay_buffer_regenerates_with_the_injected_generator():
    from types import SimpleNamespace

    import pytest

    from mmagent.continual.update import UpdateConfig, replay_buffer
    from mmagent.protocol.chat import Message

    calls = []

    def generate(split, n, seed):
        calls.append((split, n, seed))
        return [SimpleNamespace(messages=[Message(role="user", content=f"q{i}"), Message(role="assistant", content=f"a{i}")], images=[])
                for i in range(n)]

    cfg = UpdateConfig(replay_seed=3)
    convs = replay_buffer(cfg, 4, generate)
    assert calls == [("train", 4, 3)] and [c.messages[0].content for c in convs] == ["q0", "q1", "q2", "q3"]
    assert replay_buffer(cfg, 0) == []  # nothing to replay: no generator needed
    with pytest.raises(ValueError, match="no base data to replay.*replay_data.*generator"):
        replay_buffer(cfg, 2)


def test_adapters_commands_take_the_slot_of_a_routed_adapter(tmp_path, monkeypatch):
    """`--slot open-world` lists, promotes and rolls back the open-world adapter's versions
    (`<home>/adapters/routes/open-world`), leaving the own slot's alone."""
    from mmagent.continual.registry import AdapterRegistry
    from tests.continual_fakes import lora_folder

    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path))
    reg = AdapterRegistry(tmp_path / "adapters" / "routes" / "open-world")
    v = reg.add(lora_folder(tmp_path / "l1", 1)).version
    r = runner.invoke(app, ["adapters", "promote", v, "--slot", "open-world", "--json"])
    assert r.exit_code == 0, r.output
    listed = json.loads(runner.invoke(app, ["adapters", "list", "--slot", "open-world", "--json"]).output)
    assert listed["serving"] == v and [x["version"] for x in listed["versions"]] == [v]
    own = json.loads(runner.invoke(app, ["adapters", "list", "--json"]).output)
    assert own["serving"] is None and own["versions"] == []
    assert json.loads(runner.invoke(app, ["adapters", "rollback", "--slot", "open-world", "--json"]).output) == {"serving": None}
    r = runner.invoke(app, ["adapters", "list", "--slot", "nope"])
    assert r.exit_code == 2 and "no routed adapter 'nope'" in r.output
