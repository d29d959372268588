"""The main commands as real processes: the console entry, exit codes, stdout that is pure JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image


def _mmagent(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MMAGENT_HOME=str(home), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mmagent.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def test_run_json_in_a_real_process(tmp_path):
    img = tmp_path / "p.png"
    Image.new("RGB", (40, 30), (0, 90, 200)).save(img)
    script = tmp_path / "s.json"
    script.write_text(json.dumps(['<tool_call>{"name": "resize_image", "arguments": {"image": "image_1", "width": 20}}</tool_call>',
                                  "Resized to 20 pixels wide: image_2."]))
    proc = _mmagent("run", "make it 20 wide", "--image", str(img), "--model", f"scripted:{script}", "--tool", "resize_image",
                    "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["answer"] == "Resized to 20 pixels wide: image_2."
    assert [(c["name"], c["arguments"]) for c in out["calls"]] == [("resize_image", {"image": "image_1", "width": 20})]


def test_user_errors_exit_2_with_one_line(tmp_path):
    proc = _mmagent("run", "hello", "--image", str(tmp_path / "missing.png"), "--json", home=tmp_path)
    assert proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in proc.stderr
    proc = _mmagent("tools", "show", "no_such_tool", home=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_tools_list_json_in_a_real_process(tmp_path):
    proc = _mmagent("tools", "list", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = {t["name"] if "name" in t else t["function"]["name"] for t in json.loads(proc.stdout)}
    assert {"read_text", "detect_faces", "classify_image", "generate_image", "remember", "search_memory"} <= names


def test_version_in_a_real_process(tmp_path):
    from importlib.metadata import version

    proc = _mmagent("--version", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"mmagent {version('mmagent')}"


def test_run_then_turns_list_in_real_processes(tmp_path):
    script = tmp_path / "s.json"
    script.write_text(json.dumps(["Hello there."]))
    run = _mmagent("run", "say hello", "--model", f"scripted:{script}", "--tool", "crop_image", home=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "Hello there." and "turn: t-" in run.stderr
    turn = run.stderr.split("turn: ", 1)[1].split()[0]
    listed = _mmagent("turns", "list", "--json", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [(r["turn_id"], r["prompt"], r["answer"]) for r in json.loads(listed.stdout)] == [(turn, "say hello", "Hello there.")]
