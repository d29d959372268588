"""How well tool retrieval (mmagent/backends/tool_retrieval.py) keeps the tools a request needs and
drops the ones none needs, per item kind, for a grid of thresholds; and the separation of "no offered
tool fits" by the best cosine (ROC AUC). No chat model runs: this is the encoder alone.

Calibrate on data the model may see, never on a test suite: the generator's training families with a
seed the shipped data did not use (the held-out families never appear in its open-world part), e.g.

    .venv/bin/python -m mmagent.recipes.open_world_mix --out runs/cal --seed 1 --n-open-world 800 --n-train 100 --no-distill
    .venv/bin/python bench/tool_retrieval.py runs/cal/open-world-train.jsonl [--report recipes/suites/open-world-heldout-families.jsonl ...]

"kept" = every tool the item's first reply calls is still offered (for no-tool items: nothing is offered).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def items(path: Path) -> list[tuple[str, str, list[dict], set[str]]]:
    """(kind, request, offered tools, tools the first reply calls) of the text-only items with their own tools:
    a training file (conversations with `messages`) or a suite (read and checked by `load_suite`)."""
    first = json.loads(path.read_text().split("\n", 1)[0])
    if "messages" not in first:
        from mmagent.training.scoring import load_suite

        return [(it.kind or "?", it.prompt, it.tools, {c.name for c in it.expected})
                for it in load_suite(path) if it.tools and not it.images and not it.audio]
    out = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r.get("tools") and not r.get("images") and not r.get("audio"):
            reply = next(m for m in r["messages"] if m["role"] == "assistant")
            out.append((r["kind"], r["messages"][0]["content"], r["tools"], {c["name"] for c in reply.get("tool_calls", [])}))
    return out


def table(path: Path, retriever, grid: list[tuple[float, float]]) -> None:
    from mmagent.protocol.toolcall import function_of

    rows = [(kind, [function_of(t)["name"] for t in tools], retriever.scores(req, tools), called) for kind, req, tools, called in items(path)]
    best = np.array([s.max() for _, _, s, _ in rows])
    fits = np.array([bool(c) for *_, c in rows])
    auc = (best[fits][:, None] > best[~fits][None, :]).mean() if fits.any() and (~fits).any() else float("nan")
    print(f"\n{path} ({len(rows)} items; ROC AUC of the best cosine for 'some tool fits': {auc:.3f})")
    kinds = sorted({k for k, *_ in rows})
    print("| min_score | margin | " + " | ".join(f"{k} kept (tools left)" for k in kinds) + " |")
    print("|---|---|" + "---|" * len(kinds))
    for floor, margin in grid:
        cells = []
        for kind in kinds:
            ok, left = [], []
            for k, names, s, called in rows:
                if k != kind:
                    continue
                keep = {n for n, v in zip(names, s) if v >= floor and v >= s.max() - margin}
                ok.append(called <= keep if called else not keep)
                left.append(len(keep))
            cells.append(f"{100 * np.mean(ok):.0f}% ({np.mean(left):.1f})")
        print(f"| {floor} | {margin} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="calibration items (a generated open-world-train.jsonl)")
    ap.add_argument("--report", type=Path, nargs="*", default=[], help="suites to report with the same grid (never to calibrate on)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    torch.set_num_threads(a.threads)
    from mmagent.backends.tool_retrieval import ToolRetrieval, ToolRetriever

    d = ToolRetrieval()
    grid = [(f, m) for f in (0.15, d.min_score, 0.25, 0.3) for m in (0.1, d.margin, 1.0)]
    retriever = ToolRetriever()
    print(f"MiniLM-L6 on {a.threads} thread(s); the default: min_score {d.min_score}, margin {d.margin}")
    for path in [a.data, *a.report]:
        table(path, retriever, grid)


if __name__ == "__main__":
    main()
