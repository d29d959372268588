"""What a default `Agent()` does without being told: schema-guided decoding wherever the backend
supports it, and the memory tools connected to `<home>/memory`, opened only when one is called."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmagent.agent import Agent, ScriptedChatModel
from mmagent.config import get_settings
from tests.memory_fakes import FakeEmbedder

ANSWER = "Done."


@pytest.fixture(autouse=True)
def _own_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()


def _agent(tmp_path: Path, model, **kw) -> Agent:
    return Agent(model=model, log=tmp_path / "log.sqlite", checkpoint=tmp_path / "ckpt.sqlite",
                 artifacts_root=tmp_path / "art", **kw)


def _call(name: str, **arguments) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def test_constrained_decoding_is_the_default(tmp_path):
    model = ScriptedChatModel([ANSWER, ANSWER])
    with _agent(tmp_path, model, tools=["resize_image"]) as agent:
        on = agent.run("hi")
        assert agent.log.turn(on.turn_id).constrained is True
    with _agent(tmp_path, model, tools=["resize_image"], constrained=False) as agent:
        off = agent.run("hi")
        assert agent.log.turn(off.turn_id).constrained is False
    assert model.seen_constrained == [True, False]


class _FreeOnly(ScriptedChatModel):
    constrains_decoding = False  # as a remote endpoint in text mode


def test_a_backend_that_cannot_constrain_decodes_freely_by_default_and_refuses_the_flag(tmp_path):
    model = _FreeOnly([ANSWER])
    with _agent(tmp_path, model, tools=["resize_image"]) as agent:
        assert agent.run("hi").status == "ok"
    assert model.seen_constrained == [False]
    with _agent(tmp_path, _FreeOnly([ANSWER]), tools=["resize_image"], constrained=True) as agent:
        with pytest.raises(ValueError, match="cannot constrain decoding"):
            agent.run("hi")


def test_a_turn_without_memory_calls_never_opens_the_store(tmp_path):
    with _agent(tmp_path, ScriptedChatModel([ANSWER])) as agent:
        assert "remember" in agent.registry.names()
        assert agent.run("hi").status == "ok"
        assert agent.memory is None
    assert not (get_settings().home / "memory").exists()


def test_the_default_agent_connects_the_memory_tools(tmp_path, monkeypatch):
    """`Agent()` with no memory given: remember / search_memory work on <home>/memory."""
    monkeypatch.setattr("mmagent.memory.embedders.default_embedder", lambda: FakeEmbedder())
    script = [_call("remember", text="the key is under the blue pot"), "Noted.",
              _call("search_memory", query="the key is under the blue pot"), "Under the blue pot."]
    with _agent(tmp_path, ScriptedChatModel(script)) as agent:
        first = agent.run("remember where the key is", session="m")
        second = agent.run("where is the key?", session="m")
    assert first.status == "ok" and first.calls[0].ok, first.calls
    assert second.calls[0].ok and "blue pot" in json.dumps(second.calls[0].result)
    assert (get_settings().home / "memory").is_dir()


def _script(tmp_path: Path, outputs: list[str]) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(outputs))
    return f"scripted:{path}"


def test_cli_run_opens_memory_only_for_a_memory_call(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mmagent.cli.app import app

    monkeypatch.setattr("mmagent.memory.embedders.default_embedder", lambda: FakeEmbedder())
    memory = get_settings().home / "memory"
    res = CliRunner().invoke(app, ["run", "hi", "--model", _script(tmp_path, [ANSWER])])
    assert res.exit_code == 0, res.output
    assert not memory.exists()
    script = _script(tmp_path, [_call("remember", text="milk is in the fridge"), "Noted."])
    res = CliRunner().invoke(app, ["run", "remember: milk is in the fridge", "--model", script, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["calls"][0]["ok"] and memory.is_dir()


def test_cli_chat_connects_the_memory_tools(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mmagent.cli.app import app

    monkeypatch.setattr("mmagent.memory.embedders.default_embedder", lambda: FakeEmbedder())
    script = _script(tmp_path, [_call("remember", text="milk is in the fridge"), "Noted."])
    res = CliRunner().invoke(app, ["chat", "--model", script, "--out", str(tmp_path / "out")],
                             input="remember: milk is in the fridge\n/quit\n")
    assert res.exit_code == 0, res.output
    assert "Noted." in res.output and "no memory store" not in res.output


def test_what_one_run_remembers_the_next_run_finds(tmp_path, monkeypatch):
    """Two `mmagent run`s are two sessions of the same local user: the default namespace is shared."""
    from typer.testing import CliRunner

    from mmagent.cli.app import app

    monkeypatch.setattr("mmagent.memory.embedders.default_embedder", lambda: FakeEmbedder())
    told = _script(tmp_path, [_call("remember", text="the spare key is under the blue pot"), "Noted."])
    assert CliRunner().invoke(app, ["run", "remember the key", "--model", told]).exit_code == 0
    asked = tmp_path / "asked.json"
    asked.write_text(json.dumps([_call("search_memory", query="spare key blue pot"), "Under the blue pot."]))
    res = CliRunner().invoke(app, ["run", "where is the key?", "--model", f"scripted:{asked}", "--json"])
    hits = json.loads(res.stdout)["calls"][0]["result"]["hits"]
    assert hits and "blue pot" in hits[0]["text"]
    other = CliRunner().invoke(app, ["run", "where is the key?", "--model", f"scripted:{asked}", "--json",
                                     "--memory-namespace", "bob"])
    assert json.loads(other.stdout)["calls"][0]["result"]["hits"] == []  # another user sees none of it


def test_prefill_prompt_shows_the_model_the_system_prompt_and_every_tool_once_and_logs_nothing(tmp_path):
    model = ScriptedChatModel(["ok"])
    with _agent(tmp_path, model, tools=["resize_image", "read_text"]) as agent:
        agent.prefill_prompt()
        assert [m.role for m in model.seen[0]] == ["system", "user"] and model.seen[0][0].content == agent.options.system_prompt
        assert model.seen_tools[0] == agent.registry.schemas() and len(model.seen_tools[0]) == 2  # what a turn offers
        assert agent.log.turns() == []
