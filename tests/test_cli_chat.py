"""`mmagent chat`: scripted sessions through CliRunner, and one real session driven in tmux."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mmagent.cli.app import app

RESIZE = '<tool_call>{"name": "resize_image", "arguments": {"image": "image_1", "width": 32}}</tool_call>'
ANSWER = "Here is the smaller picture: image_2."


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    img = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(img)
    script = tmp_path / "script.json"
    script.write_text(json.dumps([RESIZE, ANSWER]))
    return {"img": img, "script": script, "out": tmp_path / "out"}


def _chat(files, *lines: str, session: str = "c1", approve: bool = True):
    args = ["chat", "--model", f"scripted:{files['script']}", "--session", session, "--out", str(files["out"]), "--tool", "resize_image"]
    if approve:
        args += ["--approve", "resize_image"]
    return CliRunner().invoke(app, args, input="\n".join(lines) + "\n")


def test_chat_turn_with_image_approval_and_saved_artifact(files):
    res = _chat(files, f"/image {files['img']}", "make it smaller", "y", "/quit")
    assert res.exit_code == 0, res.output
    assert "approve resize_image" in res.output
    assert "-> resize_image(image=image_1, width=32)" in res.output
    saved = files["out"] / "image_2.png"
    assert saved.is_file() and Image.open(saved).size == (32, 24)
    assert str(saved) in res.output.replace("\n", "")
    assert ANSWER in res.output


def test_denied_call_does_not_run(files):
    res = _chat(files, f"/image {files['img']}", "make it smaller", "n", "/quit", session="c2")
    assert res.exit_code == 0, res.output
    assert not (files["out"] / "image_2.png").exists()
    assert "denied" in res.output


def test_feedback_on_last_turn_is_logged(files):
    from mmagent.agent import InteractionLog
    from mmagent.feedback import FeedbackStore

    res = _chat(files, f"/image {files['img']}", "make it smaller", "y", "/feedback up", "/quit", session="c3")
    assert res.exit_code == 0, res.output
    assert "feedback" in res.output and "stored for turn" in res.output
    log = InteractionLog()
    turn = log.turns(session="c3")[0]
    assert [f.rating for f in FeedbackStore(log.path).for_turn(turn.turn_id)] == ["up"]


def test_bad_commands_are_one_line_and_the_session_goes_on(files):
    res = _chat(files, "/image /no/such.png", "/bogus", "/feedback up", "/history", "/quit", session="c4", approve=False)
    assert res.exit_code == 0, res.output
    assert "no such file" in res.output and "unknown command /bogus" in res.output and "no turn to rate" in res.output
    assert "Traceback" not in res.output


def test_history_and_resume_in_a_new_process(files):
    _chat(files, f"/image {files['img']}", "make it smaller", "y", "/quit", session="c5")
    res = _chat(files, "/history", "/quit", session="c5")
    assert "user [image_1]: make it smaller" in res.output and ANSWER in res.output


def test_pending_approval_is_asked_again_on_resume(files):
    """A turn left waiting for approval (its process gone) is asked about when the chat resumes."""
    from mmagent.agent import Agent, ScriptedChatModel

    with Agent(model=ScriptedChatModel([RESIZE]), tools=["resize_image"], approval={"resize_image"}) as agent:
        assert agent.run("make it smaller", images=[files["img"]], session="c6").status == "interrupted"
    files["script"].write_text(json.dumps([ANSWER]))  # the new process's model only has to answer
    res = _chat(files, "y", "/quit", session="c6")
    assert res.exit_code == 0, res.output
    assert "waiting for approval" in res.output and ANSWER in res.output
    assert (files["out"] / "image_2.png").is_file()


# --- a real terminal ----------------------------------------------------------------------------

def _capture(target: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t", target], capture_output=True, text=True).stdout


def _wait_for(target: str, text: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = _capture(target)
        if text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared; screen:\n{_capture(target)}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_chat_session_in_tmux(files, tmp_path):
    name = f"mmagent-test-{uuid.uuid4().hex[:8]}"
    cmd = " ".join([
        sys.executable, "-m", "mmagent.cli", "chat", "--model", f"scripted:{files['script']}", "--session", "tmux1",
        "--approve", "resize_image", "--tool", "resize_image", "--out", str(files["out"]),
    ])
    env = {"MMAGENT_HOME": os.environ["MMAGENT_HOME"], "OMP_NUM_THREADS": "1", "TERM": "xterm", "COLUMNS": "200"}
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "200", "-y", "50", f"env {exports} {cmd}"], check=True)
    try:
        _wait_for(name, "you>")
        subprocess.run(["tmux", "send-keys", "-t", name, f"/image {files['img']}", "Enter"], check=True)
        _wait_for(name, "goes with your next message")
        subprocess.run(["tmux", "send-keys", "-t", name, "make it smaller", "Enter"], check=True)
        _wait_for(name, "[y/N]")
        subprocess.run(["tmux", "send-keys", "-t", name, "y", "Enter"], check=True)
        _wait_for(name, "agent>")
        subprocess.run(["tmux", "send-keys", "-t", name, "/feedback down --answer 'It is 32 pixels wide now.'", "Enter"], check=True)
        screen = _wait_for(name, "stored for turn")
        subprocess.run(["tmux", "send-keys", "-t", name, "/quit", "Enter"], check=True)
        screen = _wait_for(name, "bye")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    assert "<- resize_image" in screen and ANSWER in screen
    assert (files["out"] / "image_2.png").is_file()

