"""Sessions that outlive their process: approval interrupts answered by another process, a turn
killed with SIGKILL mid-way and resumed from its checkpoint, and clear errors for bad resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from agent_fixtures import call, make_agent

HERE = Path(__file__).parent


def run_script(root: Path, body: str) -> subprocess.CompletedProcess:
    """Runs `body` in a fresh interpreter with the agent fixtures importable."""
    code = f"import sys; sys.path.insert(0, {str(HERE)!r})\nfrom pathlib import Path\nfrom agent_fixtures import *\nroot = Path({str(root)!r})\n"
    return subprocess.run([sys.executable, "-c", code + textwrap.dedent(body)], capture_output=True, text=True, timeout=120)


def test_approval_interrupts_and_resumes_in_another_process(tmp_path):
    marker = tmp_path / "wiped.txt"
    proc = run_script(tmp_path, f"""
        agent = make_agent(root, [call("add", a=1, b=1) + call("wipe", path={str(marker)!r}), "Wiped."], approval={{"wipe"}})
        r = agent.run("wipe it", session="s1")
        print(r.model_dump_json())
    """)
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout)
    assert first["status"] == "interrupted" and first["calls"] == []
    assert [(c["name"], c["arguments"]) for c in first["pending"]] == [("wipe", {"path": str(marker)})]
    assert not marker.exists()  # nothing of that step ran before the decision (not even `add`)

    # A new process: only the remaining model output; the checkpoint holds everything else.
    agent = make_agent(tmp_path, ["Wiped."], approval={"wipe"})
    assert agent.pending("s1")[0]["name"] == "wipe"
    with pytest.raises(ValueError, match="waits for approval"):
        agent.resume("s1")
    with pytest.raises(ValueError, match="approve' or 'deny"):
        agent.resume("s1", "maybe")
    with pytest.raises(ValueError, match="unfinished turn"):
        agent.run("something else", session="s1")
    r = agent.resume("s1", "approve")
    assert r.status == "ok" and r.answer == "Wiped." and marker.read_text() == "wiped"
    assert [(c.name, c.approval) for c in r.calls] == [("add", None), ("wipe", "approved")]
    assert agent.log.turn(r.turn_id).status == "ok"


def test_denied_call_is_reported_to_the_model(tmp_path):
    marker = tmp_path / "wiped.txt"
    agent = make_agent(tmp_path, [call("wipe", path=str(marker)), "OK, I left it alone."], approval={"wipe"})
    events = list(agent.stream("wipe it", session="s2"))
    assert events[-1].type == "interrupt" and events[-1].calls[0]["name"] == "wipe"
    r = agent.resume("s2", {"wipe": "deny"})
    assert r.status == "ok" and not marker.exists()
    assert r.calls[0].error_kind == "denied" and "denied" in agent.model.seen[1][-1].content


def test_killed_mid_turn_resumes_from_the_last_checkpoint(tmp_path):
    marker = tmp_path / "crashed.txt"
    proc = run_script(tmp_path, f"""
        agent = make_agent(root, [call("add", a=2, b=2), call("crash_once", marker={str(marker)!r}), "never reached"])
        agent.run("add, then crash", session="s3")
    """)
    assert proc.returncode == -signal.SIGKILL and marker.exists()

    agent = make_agent(tmp_path, ["4, and I survived."])  # plan steps 1-2 must not run again
    logged = agent.log.turns(session="s3")[0]
    assert logged.status == "running"  # what the dead process had committed is there
    partial = agent.log.turn(logged.turn_id)
    assert [s.step for s in partial.steps_log] == [1, 2]
    assert [(c.name, c.error_kind) for c in partial.calls] == [("add", None), ("crash_once", "running")]  # started, never ended

    r = agent.resume("s3")
    assert r.status == "ok" and r.answer == "4, and I survived." and agent.model.calls == 1
    # At most once: the call the process died in is not run again (it may have taken effect);
    # the model is told so instead. The finished call's result is reused, not recomputed.
    assert [(c.name, c.ok, c.error_kind) for c in r.calls] == [("add", True, None), ("crash_once", False, "interrupted")]
    assert "not run again" in agent.model.seen[0][-1].content
    done = agent.log.turn(r.turn_id)
    assert done.status == "ok" and [s.step for s in done.steps_log] == [1, 2, 3]
    assert [c.call_id for c in done.calls] == ["s1c1", "s2c1"]  # re-run nodes did not duplicate rows


def test_resume_errors_are_clear(tmp_path):
    agent = make_agent(tmp_path, ["hi"])
    with pytest.raises(ValueError, match="unknown session 'ghost'"):
        agent.resume("ghost")
    agent.run("hello", session="done")
    with pytest.raises(ValueError, match="no unfinished turn"):
        agent.resume("done")
