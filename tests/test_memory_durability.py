"""Crash safety and concurrency: kill -9 a writer mid-batch, readers in other processes, one writer."""

from __future__ import annotations

import json
import sqlite3
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from memory_fakes import FakeEmbedder

from mmagent.memory.index import IndexConfig
from mmagent.memory.metadata import NewItem
from mmagent.memory.store import MemoryStore, MemoryStoreError

TESTS = Path(__file__).parent
CONFIG = "IndexConfig(exact_max=150, nprobe=64)"  # crosses into IVF (training + snapshot) while killed

WRITER = f"""
import sys
from memory_fakes import FakeEmbedder
from mmagent.memory.index import IndexConfig
from mmagent.memory.metadata import NewItem
from mmagent.memory.store import MemoryStore
s = MemoryStore(sys.argv[1], FakeEmbedder(), checkpoint_every=7, config={CONFIG})
i = 0
while True:
    batch = [f"memory number {{i + j}} word{{(i + j) % 13}}" for j in range(5)]
    s.add_texts(batch, tags=["t%d" % (i % 3)])
    if i % 4 == 0:
        s.delete([s.add_text("short lived").id])
    if i % 6 == 0:
        s.retag(1, add=["r%d" % i])
    i += 5
    print(i, flush=True)
"""

READER = """
import json, sys, time
from memory_fakes import FakeEmbedder
from mmagent.memory.store import MemoryStore
s = MemoryStore(sys.argv[1], FakeEmbedder(), readonly=True)
want = int(sys.argv[2])
deadline = time.time() + 60
while time.time() < deadline:
    hits = s.search("memory number", k=want + 5)
    if len(hits) >= want:
        break
    time.sleep(0.05)
ids = sorted(int(i) for i in s.index.ids())
print(json.dumps({"hits": len(hits), "ids": ids, "consistent": s.stats()["consistent"]}))
"""


def child(code: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def assert_consistent(path: Path) -> MemoryStore:
    s = MemoryStore(path, FakeEmbedder(), checkpoint_every=7, config=IndexConfig(exact_max=150, nprobe=64))
    sql_ids = sorted(r[0] for r in s.db.conn.execute("SELECT id FROM items"))
    vec_ids = sorted(r[0] for r in s.db.conn.execute("SELECT id FROM vectors"))
    assert sql_ids == vec_ids
    assert sorted(int(i) for i in s.index.ids()) == sql_ids  # the index is exactly SQLite's items
    if sql_ids:
        probe = s.db.get([sql_ids[-1]])[0]
        assert probe.id in [h.id for h in s.search(probe.text, k=20)]
    return s


@pytest.mark.slow
def test_kill_9_mid_batch_reopens_consistent(tmp_path):
    rng = np.random.default_rng(0)
    counts = []
    for round_ in range(4):
        p = child(WRITER, str(tmp_path))
        # Wait until it has written something this round, then kill at a random moment.
        first = p.stdout.readline()
        assert first, p.stderr.read()
        time.sleep(float(rng.uniform(0.05, 0.6)))
        p.send_signal(signal.SIGKILL)
        p.wait()
        s = assert_consistent(tmp_path)
        counts.append(s.db.count())
        s.close()
    assert counts == sorted(counts) and counts[-1] > counts[0]  # each round added on top of the last
    s = MemoryStore(tmp_path, FakeEmbedder())
    assert s.stats()["items"] > 0 and s.index.kind == "ivf"  # the kills spanned the IVF switch


def test_a_failing_batch_leaves_nothing(tmp_path):
    s = MemoryStore(tmp_path, FakeEmbedder())
    s.add_text("kept")
    bad = [NewItem("text", "fine"), NewItem("video", "not a modality")]  # the 2nd row violates a CHECK
    with pytest.raises(sqlite3.IntegrityError):
        s._insert(bad, np.ones((2, 32), np.float32))
    st = s.stats()
    assert st["items"] == 1 and st["consistent"] and s.db.changes_since(0)[-1][1] == 1


def test_readers_in_other_processes_see_new_writes_without_reopening(tmp_path):
    w = MemoryStore(tmp_path, FakeEmbedder(), checkpoint_every=10)
    w.add_text("memory number zero")
    readers = [child(READER, str(tmp_path), "40") for _ in range(2)]
    time.sleep(1.0)  # readers have opened (and hold a one-item index)
    for i in range(1, 40):
        w.add_text(f"memory number {i}")  # crosses two snapshots + log pruning: readers reload
    outs = [json.loads(r.communicate(timeout=90)[0].strip().splitlines()[-1]) for r in readers]
    expected = sorted(int(i) for i in w.index.ids())
    for out in outs:
        assert out["hits"] >= 40 and out["ids"] == expected and out["consistent"]


def test_second_writer_waits_then_fails_clearly(tmp_path):
    MemoryStore(tmp_path, FakeEmbedder()).add_text("x")
    holder = child(
        "import sys, time\nfrom filelock import FileLock\nl = FileLock(sys.argv[1] + '/writer.lock')\nl.acquire()\nprint('held', flush=True)\ntime.sleep(30)",
        str(tmp_path),
    )
    assert holder.stdout.readline().strip() == "held"
    try:
        s = MemoryStore(tmp_path, FakeEmbedder(), lock_timeout_s=0.3)
        assert s.search("x", k=1)[0].text == "x"  # reading needs no lock
        with pytest.raises(MemoryStoreError, match="another process is writing"):
            s.add_text("y")
        assert s.stats()["items"] == 1
    finally:
        holder.kill()
        holder.wait()
    s.add_text("y")  # the lock is free again
    assert s.stats()["items"] == 2
