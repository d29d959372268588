"""The agent as an unlucky user meets it, through real `mmagent` processes: text that is not
valid UTF-8, model replies with lone surrogates, and turns killed with SIGKILL that the CLI then
resumes or abandons. Counts what was tried and asserts nothing was lost and no session stuck."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mmagent.agent.log import InteractionLog

KILLER = '''
import os, signal
from pathlib import Path
from mmagent.tools import tool

@tool
def send_letter(to: str) -> str:
    """Sends a letter (a side effect: it must not happen twice). Kills its process the first time.

    Args:
        to: Who gets it.
    """
    marker = Path(os.environ["LETTERS"])
    marker.write_text(marker.read_text() + to + "\\n" if marker.exists() else to + "\\n")
    if marker.read_text().count("\\n") == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return "sent"
'''

COUNTS = {"inputs": 0, "kills": 0, "stuck_sessions": 0, "lost_turns": 0}


def _call(name: str, **arguments) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "killer.py").write_text(KILLER)
    return dict(os.environ, MMAGENT_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1", LETTERS=str(tmp_path / "letters.txt"),
                MMAGENT_TOOLS_MODULES=json.dumps([str(tmp_path / "killer.py")]))


def _script(tmp_path: Path, name: str, outputs: list[str]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(outputs))
    return f"scripted:{path}"


def _mmagent(env: dict[str, str], *args: str | bytes) -> subprocess.CompletedProcess:
    COUNTS["inputs"] += 1
    return subprocess.run([sys.executable, "-m", "mmagent.cli", *args], capture_output=True, env=env, timeout=300)


def _log(env: dict[str, str]) -> InteractionLog:
    return InteractionLog(Path(env["MMAGENT_HOME"]) / "interactions.sqlite")


def test_a_prompt_with_a_latin1_byte_answers_and_leaves_the_session_usable(tmp_path, env):
    # argv bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape)
    proc = _mmagent(env, "run", b"caf\xe9 au lait?", "--session", "u1", "--model", _script(tmp_path, "a", ["Coffee."]), "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    out = json.loads(proc.stdout)
    assert out["status"] == "ok" and out["answer"] == "Coffee."
    assert _log(env).turn(out["turn_id"]).prompt == "caf\ufffd au lait?"
    again = _mmagent(env, "run", "and tea?", "--session", "u1", "--model", _script(tmp_path, "b", ["Tea."]), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["answer"] == "Tea.", again.stderr.decode()


@pytest.mark.parametrize("reply", ["Caf\ud83d.", '<tool_call>{"name": "crop_image", "arguments": {"image": "\\udc80"}}</tool_call>'])
def test_a_model_reply_with_a_lone_surrogate_ends_the_turn_cleanly(tmp_path, reply):
    from mmagent.agent import Agent, ScriptedChatModel

    COUNTS["inputs"] += 1
    with Agent(model=ScriptedChatModel([reply, "Done."]), tools=["crop_image"], log=tmp_path / "l.sqlite",
               checkpoint=tmp_path / "c.sqlite", artifacts_root=tmp_path / "a") as agent:
        r = agent.run("hi", session="s")
        assert r.status == "ok" and "\ud83d" not in r.answer
        assert agent.run("again?", session="s").status in ("ok", "error")  # the session takes the next turn
        COUNTS["stuck_sessions"] += agent.unfinished("s") is not None


def test_a_killed_turn_is_resumed_from_the_cli_without_repeating_its_side_effect(tmp_path, env):
    proc = _mmagent(env, "run", "write to Ana", "--session", "k1", "--model", _script(tmp_path, "k", [_call("send_letter", to="Ana")]))
    assert proc.returncode == -signal.SIGKILL
    COUNTS["kills"] += 1
    blocked = _mmagent(env, "run", "hello", "--session", "k1", "--model", _script(tmp_path, "h", ["hi"]))
    assert blocked.returncode == 2 and b"mmagent resume k1" in blocked.stderr and b"mmagent abandon k1" in blocked.stderr
    resumed = _mmagent(env, "resume", "k1", "--model", _script(tmp_path, "r", ["The letter may not have gone out; please check."]), "--json")
    assert resumed.returncode == 0, resumed.stderr.decode()
    out = json.loads(resumed.stdout)
    assert out["status"] == "ok" and [(c["name"], c["error_kind"]) for c in out["calls"]] == [("send_letter", "interrupted")]
    assert Path(env["LETTERS"]).read_text() == "Ana\n"  # sent once, not again on resume
    turn = _log(env).turn(out["turn_id"])
    assert turn.status == "ok" and [c.error_kind for c in turn.calls] == ["interrupted"]
    after = _mmagent(env, "run", "thanks", "--session", "k1", "--model", _script(tmp_path, "t", ["You're welcome."]))
    assert after.returncode == 0, after.stderr.decode()


def test_a_killed_turn_is_abandoned_from_the_cli(tmp_path, env):
    proc = _mmagent(env, "run", "write to Bo", "--session", "k2", "--model", _script(tmp_path, "k", [_call("send_letter", to="Bo")]))
    assert proc.returncode == -signal.SIGKILL
    COUNTS["kills"] += 1
    dropped = _mmagent(env, "abandon", "k2")
    assert dropped.returncode == 0 and b"abandoned" in dropped.stderr, dropped.stderr.decode()
    log = _log(env)
    turn = log.turns(session="k2")[0]
    assert turn.status == "abandoned" and [c.error_kind for c in log.turn(turn.turn_id).calls] == ["interrupted"]
    again = _mmagent(env, "abandon", "k2")
    assert again.returncode == 2 and b"no unfinished turn" in again.stderr
    after = _mmagent(env, "run", "hello", "--session", "k2", "--model", _script(tmp_path, "h", ["Hello."]), "--json")
    assert after.returncode == 0 and json.loads(after.stdout)["status"] == "ok", after.stderr.decode()
    COUNTS["lost_turns"] += len(log.turns(session="k2")) != 2


def test_an_over_long_prompt_is_refused_before_it_enters_the_history(tmp_path, env):
    long = "word " * 24_000  # 120k characters
    proc = _mmagent(env, "run", long, "--session", "p1", "--model", _script(tmp_path, "a", ["never"]))
    err = proc.stderr.decode().strip()
    assert proc.returncode == 2 and "120,000 characters" in err and len(err.splitlines()) == 1, err
    after = _mmagent(env, "run", "hello", "--session", "p1", "--model", _script(tmp_path, "b", ["Hello."]), "--json")
    assert after.returncode == 0 and json.loads(after.stdout)["answer"] == "Hello.", after.stderr.decode()


class _SmallContext:
    """A model whose context holds `limit` characters: it raises before generating, as the
    local backends do, and answers with how many user turns it saw."""

    name = "small-context"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def chat(self, messages, tools=None, **kw):
        from mmagent.protocol.chat import ChatResult, ContextOverflowError

        if sum(len(m.content) for m in messages) > self.limit:
            raise ContextOverflowError(f"over {self.limit} characters")
        return ChatResult(text=f"saw {sum(m.role == 'user' for m in messages)} turns")


def test_a_history_that_outgrows_the_context_leaves_out_the_oldest_turns(tmp_path):
    from mmagent.agent import Agent

    with Agent(model=_SmallContext(2_500), tools=[], system_prompt="", log=tmp_path / "l.sqlite",
               checkpoint=tmp_path / "c.sqlite", artifacts_root=tmp_path / "a") as agent:
        answers = [agent.run(f"{i} " + "x" * 1_000, session="h").answer for i in range(5)]
        COUNTS["inputs"] += 5
        assert answers == ["saw 1 turns", "saw 2 turns", "saw 2 turns", "saw 2 turns", "saw 2 turns"]
        too_big = agent.run("y" * 3_000, session="h")  # the current turn alone does not fit
        assert too_big.status == "error" and "over 2500 characters" in too_big.error
        assert agent.run("short", session="h").answer == "saw 1 turns"  # the big one is left out again


def test_counts():
    print(f"\nreliability (agent): {COUNTS['inputs']} inputs tried, {COUNTS['kills']} kills survived, "
          f"{COUNTS['stuck_sessions']} sessions stuck, {COUNTS['lost_turns']} turns lost")
    assert COUNTS["stuck_sessions"] == 0 and COUNTS["lost_turns"] == 0
