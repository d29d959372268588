"""The gate's evaluations on every core: one version's suites answered by worker processes.

A round scores the serving version and its candidate on a few hundred regression items, one model
call after another (~1.5 s each on one core for the embedded default): most of a round's wall time.
`SuiteWorkers` starts `n` processes that each load the model with the version (as the gate would,
`serving.folder_chat_models`) and answer every n-th item of each suite (`run_suite(shard=(k, n))`);
the round merges their results back in item order, so the results, the score cache and the verdict
are those of one process.

Why processes, not threads: a model's decoder keeps one KV cache and one active adapter, and its
Python parts (grammar masks, the decode loop) hold the GIL; a process per core has its own model and
no lock. A worker's start (imports + a lean model load from the decoder cache) costs ~10 s, small beside
a version's ~200 items; `LearnConfig.eval_workers` sets how many (1: the round's own process).

    python -m mmagent.continual.eval_workers SPEC.json OUT.json    (what `SuiteWorkers` runs)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mmagent.continual.serving import folder_chat_models
from mmagent.continual.suites import ItemResult, run_suite


class WorkerSpec(BaseModel):
    """What one worker answers: the version, the suites (path, item limit), and its shard."""

    folder: Path  # the composed MM-LLM's folder
    model: str  # its name (the chat models' and the log's)
    slot: str | None = None
    retrieval: bool = False  # behind the agent's tool retrieval (a model that routes replies)
    adapter: Path | None = None  # the version's adapter folder; None: the model's own
    tools: list[dict[str, Any]]
    known: list[str] | None = None
    suites: list[tuple[Path, int | None]]
    shard: int
    shards: int


class SuiteWorkers:
    """`(suites, tools, known) -> results per suite` of one version, over `workers` processes.

    `home` is the mmagent home the workers load models and caches from (the round's); the other
    arguments are `folder_chat_models`' and the version's adapter folder (None: the model's own)."""

    def __init__(self, home: Path, folder: Path, model: str, slot: str | None, retrieval: bool, adapter: Path | None, workers: int):
        if workers < 2:
            raise ValueError("SuiteWorkers needs >= 2 workers (1: evaluate in the round's own process)")
        self.home, self.workers = Path(home), workers
        self.version = {"folder": Path(folder), "model": model, "slot": slot, "retrieval": retrieval, "adapter": adapter}

    def __call__(self, suites: Sequence[tuple[Path, int | None]], tools: list[dict[str, Any]],
                 known: set[str] | None) -> list[list[ItemResult]]:
        n = self.workers
        with tempfile.TemporaryDirectory(prefix="mmagent-eval-workers-") as tmp:
            procs = []
            for k in range(n):
                spec = WorkerSpec(**self.version, tools=tools,
                                  known=sorted(known) if known is not None else None, suites=list(suites), shard=k, shards=n)
                files = [Path(tmp) / f"{name}{k}.json" for name in ("spec", "out", "err")]
                files[0].write_text(spec.model_dump_json())
                with open(files[2], "w") as err:
                    procs.append((subprocess.Popen([sys.executable, "-m", __name__, str(files[0]), str(files[1])],
                                                   env=_worker_env(self.home), stdout=subprocess.DEVNULL, stderr=err), files))
            shards = [_collect(proc, files) for proc, files in procs]
        # worker k answered items k, k + n, ... of each suite: item i is shard i % n's (i // n)-th
        merged = []
        for s in range(len(suites)):
            parts = [shard[s] for shard in shards]
            merged.append([parts[i % n][i // n] for i in range(sum(map(len, parts)))])
        return merged


def _worker_env(home: Path) -> dict[str, str]:
    # One thread per worker: n workers on n cores; more would oversubscribe (20-80x slower).
    return {**os.environ, "MMAGENT_HOME": str(home), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _collect(proc: subprocess.Popen, files: list[Path]) -> list[list[ItemResult]]:
    code = proc.wait()
    if code != 0 or not files[1].is_file():
        tail = files[2].read_text(errors="replace").strip().splitlines()[-15:]
        raise RuntimeError(f"an evaluation worker failed (exit {code}):\n" + "\n".join(tail))
    return [[ItemResult.model_validate(r) for r in suite] for suite in json.loads(files[1].read_text())]


def work(spec: WorkerSpec) -> list[list[ItemResult]]:
    """One worker's answers: its shard of each suite, by the gate's chat model of the version."""
    import torch

    torch.set_num_threads(1)
    chat = folder_chat_models(spec.folder, spec.model, spec.slot, spec.retrieval)(spec.adapter)
    known = set(spec.known) if spec.known is not None else None
    return [run_suite(chat, suite, spec.tools, known, limit, shard=(spec.shard, spec.shards)) for suite, limit in spec.suites]


def main(argv: list[str]) -> None:
    from mmagent.atomic import atomic_write_text

    spec = WorkerSpec.model_validate_json(Path(argv[0]).read_text())
    results = work(spec)
    atomic_write_text(Path(argv[1]), json.dumps([[r.model_dump() for r in suite] for suite in results]))


if __name__ == "__main__":
    main(sys.argv[1:])
