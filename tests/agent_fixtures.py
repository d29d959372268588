"""Tools and an agent factory shared by the agent tests and the subprocesses they start."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from mmagent.agent import Agent, ScriptedChatModel
from mmagent.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Adds two integers.

    Args:
        a: First addend.
        b: Second addend.
    """
    return a + b


@tool
def boom(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why it fails.
    """
    raise RuntimeError(f"boom: {reason}")


@tool
def nap(seconds: float) -> dict:
    """Sleeps, and says when it started and ended (perf_counter).

    Args:
        seconds: How long to sleep.
    """
    t0 = time.perf_counter()
    time.sleep(seconds)
    return {"start": t0, "end": time.perf_counter()}


@tool
def wipe(path: str) -> str:
    """Deletes something (needs approval). Here it only writes a marker file.

    Args:
        path: Marker file to write.
    """
    Path(path).write_text("wiped")
    return "wiped"


@tool
def crash_once(marker: str) -> str:
    """Kills its own process (SIGKILL, like `kill -9`) the first time; succeeds afterwards.

    Args:
        marker: File that records the first call.
    """
    if not Path(marker).exists():
        Path(marker).write_text("crashed")
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


ALL = [add, boom, nap, wipe, crash_once]


def call(name: str, **arguments) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def make_agent(root: Path, outputs: list, **kw) -> Agent:
    """An agent on a scripted model whose files (log, checkpoints, artifacts) live under `root`."""
    kw.setdefault("tools", ALL)
    # The scripted model calls what it is told to: which tools it is offered is not what these tests
    # check (tests/test_tool_retrieval.py does), and none of them should load a sentence encoder.
    kw.setdefault("tool_retrieval", None)
    return Agent(model=ScriptedChatModel(outputs, adapter="v3"), log=root / "log.sqlite", checkpoint=root / "ckpt.sqlite",
                 artifacts_root=root / "artifacts", **kw)
