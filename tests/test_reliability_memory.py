"""Reliability probes of the memory, as a user meets them: real `mmagent` processes fed hostile
bundles and bad image files, and a writer killed with SIGKILL at random points.

Counted across the module and printed at its end (`pytest -s` shows it): inputs tried, kills
survived (the store reopened with SQLite and the index in agreement), committed items lost.
Deterministic inputs; the kill delays come from a seeded generator.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from memory_fakes import FakeEmbedder
from memory_hostile import bad_image_files, hostile_bundles, tree
from PIL import Image

from mmagent.memory.index import IndexConfig
from mmagent.memory.store import MemoryStore

TESTS = Path(__file__).parent
COUNTS = {"inputs_tried": 0, "inputs_refused_cleanly": 0, "kills": 0, "kills_survived": 0, "items_committed": 0, "items_lost": 0}
KILLS = 8


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print(f"\nmemory reliability: {json.dumps(COUNTS)}")


def env(home: Path) -> dict[str, str]:
    return dict(os.environ, MMAGENT_HOME=str(home), OMP_NUM_THREADS="1",
                PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")


def mmagent(*args: str, home: Path, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mmagent.cli", *args], capture_output=True, text=True, env=env(home), timeout=timeout)
    return proc, time.perf_counter() - t0


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2, one `error:` line on stderr, no traceback, nothing on stdout."""
    COUNTS["inputs_tried"] += 1
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in err and err.startswith("error:") and proc.stdout == "", err
    for n in needles:
        assert n in err, (n, err)
    COUNTS["inputs_refused_cleanly"] += 1


# --- probes: hostile bundles through `mmagent memory import` ------------------------------------

def test_import_of_hostile_bundles_in_real_processes(tmp_path):
    src = MemoryStore(tmp_path / "src", FakeEmbedder())
    src.add_text("the spare key is under the blue pot", tags=["home"])
    src.add_image(Image.new("RGB", (8, 8), (0, 200, 0)), caption="a green square")
    src.export(tmp_path / "good")
    src.close()
    work = tmp_path / "work"
    bundles = hostile_bundles(tmp_path / "good", work)
    store = work / "stores" / "s"
    s = MemoryStore(store, FakeEmbedder())
    s.add_text("already here")
    s.close()
    before, outside = tree(store), tree(work / "outside")
    for name, bundle in bundles.items():
        proc, _ = mmagent("memory", "import", str(bundle), "--path", str(store), home=tmp_path)
        assert_user_error(proc)
        assert ("refused" in proc.stderr or "altered" in proc.stderr), (name, proc.stderr)
        assert tree(store) == before, name  # same files, same sizes: nothing written
        assert tree(work / "outside") == outside and not (work / "stores" / "payload.txt").exists(), name
    assert MemoryStore(store, FakeEmbedder(), readonly=True).stats()["items"] == 1
    proc, _ = mmagent("memory", "import", str(tmp_path / "good"), "--path", str(store), home=tmp_path)  # the control
    assert proc.returncode == 0 and "imported 2" in proc.stdout, proc.stderr


# --- probes: bad image files through `memory search --image`, `memory add --image`, `tools call` --

@pytest.fixture()
def bad_files(tmp_path):
    return bad_image_files(tmp_path / "bad")


def test_search_by_a_bad_image_exits_2_before_any_model_loads(tmp_path, bad_files):
    # The store's space is the default embedder's: were the input checked after the embedder, the
    # real MiniLM + bridge would load (seconds) before the failure.
    MemoryStore(tmp_path / "mem", FakeEmbedder(dim=384, space="minilm-l6")).add_text("hello")
    for name, path in bad_files.items():
        proc, wall = mmagent("memory", "search", "--image", str(path), "--path", str(tmp_path / "mem"), home=tmp_path)
        needles = {"bomb-144MP": ("144,000,000 pixels", "40,000,000", "downscale"),
                   "sparse-1.5GB": ("1,500,000,000 bytes", "52,428,800", "recompress"),
                   "missing": ("no such file",), "folder": ("no such file",)}.get(name, ("not a readable image",))
        assert_user_error(proc, *needles)
        assert wall < 30, (name, wall)  # a process start, no model load


def test_adding_a_bad_image_exits_2_in_memory_and_artifacts(tmp_path, bad_files):
    for name in ("bomb-144MP", "sparse-1.5GB", "text-named-png"):
        path = bad_files[name]
        proc, _ = mmagent("memory", "add", "caption", "--image", str(path), "--path", str(tmp_path / "mem"), home=tmp_path)
        assert_user_error(proc)
        proc, _ = mmagent("tools", "call", "crop_image", "--image", str(path), "--args",
                          '{"image": "image_1", "left": 0, "top": 0, "right": 2, "bottom": 2}', home=tmp_path)
        assert_user_error(proc, "limit" if name != "text-named-png" else "not a recognised image")
    assert not (tmp_path / "mem" / "memory.sqlite").exists() or MemoryStore(tmp_path / "mem", readonly=True).stats()["items"] == 0


# --- the kill loop ------------------------------------------------------------------------------

WRITER = """
import json, sys
from memory_fakes import FakeEmbedder
from PIL import Image
from mmagent.memory.index import IndexConfig
from mmagent.memory.store import MemoryStore
s = MemoryStore(sys.argv[1], FakeEmbedder(), checkpoint_every=7, config=IndexConfig(exact_max=150, nprobe=64))
i = int(sys.argv[2])
while True:
    if i % 7 == 3:
        done = [s.add_image(Image.new("RGB", (4, 4), (i % 251, 0, 90)), caption=f"picture {i} word{i % 11}")]
    elif i % 2:
        done = s.add_texts([f"memory number {i + j} word{(i + j) % 13}" for j in range(5)], tags=["batch"])
    else:
        done = [s.add_text(f"memory number {i} word{i % 13}", namespace="other" if i % 4 == 0 else None)]
    print(json.dumps([[d.id, d.text] for d in done]), flush=True)  # printed after the commit returned
    i += len(done)
"""


def reopen_and_check(path: Path, committed: dict[int, str]) -> int:
    """Opens the store as the next process would; checks SQLite and the index agree; returns how
    many committed items are missing (from SQLite, or from search)."""
    s = MemoryStore(path, FakeEmbedder(), checkpoint_every=7, config=IndexConfig(exact_max=150, nprobe=64))
    try:
        sql_ids = sorted(r[0] for r in s.db.conn.execute("SELECT id FROM items"))
        assert sql_ids == sorted(r[0] for r in s.db.conn.execute("SELECT id FROM vectors"))
        assert sorted(int(i) for i in s.index.ids()) == sql_ids and s.stats()["consistent"]
        rows = {r.id: r.text for r in s.db.get(list(committed))}
        lost = sum(1 for i, text in committed.items() if rows.get(i) != text)
        for i in sorted(committed)[-3:]:  # the newest commits are where a kill would bite
            if i in rows:
                assert i in [h.id for h in s.search(rows[i], k=10)], f"item {i} is in SQLite but search misses it"
        return lost
    finally:
        s.close()


def test_kill_9_writer_loop_loses_no_committed_item(tmp_path):
    rng = np.random.default_rng(1234)
    committed: dict[int, str] = {}
    child_env = env(tmp_path)
    t_start = time.perf_counter()
    for round_ in range(KILLS):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "mem"), str(round_ * 100_000)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env)
        first = p.stdout.readline()
        assert first, p.stderr.read()
        time.sleep(float(rng.uniform(0.02, 0.5)))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        COUNTS["kills"] += 1
        for line in (first + out).splitlines():
            try:
                batch = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line the kill cut short
            committed.update({int(i): t for i, t in batch})
        lost = reopen_and_check(tmp_path / "mem", committed)
        COUNTS["items_lost"] = lost  # cumulative: every committed item so far is checked each round
        COUNTS["kills_survived"] += 1
    COUNTS["items_committed"] = len(committed)
    print(f"\nkill loop: {KILLS} kills in {time.perf_counter() - t_start:.1f} s, {len(committed)} committed items checked")
    assert COUNTS["items_lost"] == 0 and COUNTS["kills_survived"] == KILLS
    s = MemoryStore(tmp_path / "mem", FakeEmbedder(), readonly=True)
    assert s.stats()["items"] >= len(committed) and s.index.kind == "ivf"  # the kills spanned the IVF switch
