"""Memory benchmark: the FAISS store at scale, and the embedded image bridge's retrieval quality.

    python bench/memory.py [--sizes 100000 1000000] [--threads 1] [--queries 300] [--skip-bridge]
    python bench/memory.py --bridge-only

Scale (synthetic): clustered 384-d unit vectors — a two-level Gaussian mixture (64 topics, 4096
clusters around them), since i.i.d. Gaussian data makes every ANN index look broken. Each size
is built through the real `MemoryStore.add_vectors` (SQLite rows + float32 blobs + log + FAISS,
IVF training as the store grows) in one process; a *fresh* process then reopens the store (a
snapshot read, no rebuild), measures RSS, and times single-query searches at k=10 with the IVF
index beside exact search (IndexFlatIP over the same vectors) — baseline and optimized in the
same run. Ground truth (exact top-10) is streamed over the generated chunks while building.

Bridge (real models): text->image recall@5 over a labeled image set (skimage and sklearn photos,
PIL-drawn signs and shapes) with natural-language queries, beside the random baseline, with
ablations (labels only, OCR only, both).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384
CHUNK = 10_000


# --- synthetic data ----------------------------------------------------------------------------

def centroids(seed: int = 0, topics: int = 64, clusters: int = 4096) -> np.ndarray:
    """[clusters, DIM] unit centroids, grouped around `topics` topic directions."""
    rng = np.random.default_rng(seed)
    top = _unit(rng.standard_normal((topics, DIM)))
    return _unit(top[rng.integers(0, topics, clusters)] + 0.9 * _unit(rng.standard_normal((clusters, DIM))))


def chunk(cents: np.ndarray, n: int, seed: int, noise: float = 2.0) -> np.ndarray:
    """[n, DIM] unit points: a random cluster centroid + isotropic noise of norm `noise`.

    noise=2.0 makes neighbours hard: the exact top-1 has cosine ~0.3, the 10th ~0.25, and
    clusters overlap, so IVF must scan ~1.5% of the vectors for recall@10 >= 0.95."""
    rng = np.random.default_rng(seed)
    c = cents[rng.integers(0, len(cents), n)]
    return _unit(c + noise * _unit(rng.standard_normal((n, DIM)).astype(np.float32)))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class SyntheticSpace:
    """An embedder stand-in naming the synthetic vector space (vectors come precomputed)."""

    space, dim = "synthetic-384", DIM

    def embed_texts(self, texts):
        raise NotImplementedError("synthetic space: add vectors with add_vectors")

    def embed_images(self, images, captions=None):
        raise NotImplementedError("synthetic space: add vectors with add_vectors")


# --- build (parent process) --------------------------------------------------------------------

def build(path: Path, n: int, queries: np.ndarray, k: int = 10) -> dict:
    """Adds n vectors through MemoryStore; streams the exact top-k of `queries` meanwhile."""
    from mmagent.memory.store import MemoryStore

    cents = centroids()
    store = MemoryStore(path, SyntheticSpace())
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    add_s = 0.0
    for c, start in enumerate(range(0, n, CHUNK)):
        x = chunk(cents, min(CHUNK, n - start), seed=1000 + c)
        t0 = time.perf_counter()
        ids = np.asarray(store.add_vectors(x), np.int64)
        add_s += time.perf_counter() - t0
        sims = queries @ x.T  # [Q, B] exact scores, merged into the running top-k
        all_s = np.concatenate([best_s, sims], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(ids, sims.shape)], axis=1)
        top = np.argpartition(-all_s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(all_s, top, 1), np.take_along_axis(all_i, top, 1)
    t0 = time.perf_counter()
    store.checkpoint()
    store.close()
    add_s += time.perf_counter() - t0
    srt = np.sort(best_s, axis=1)
    return {"add_s": add_s, "gt": best_i, "cos_top1": float(srt[:, -1].mean()), "cos_top10": float(srt[:, 0].mean())}


CHILD = r"""
import json, os, resource, sys, time
import numpy as np, faiss
faiss.omp_set_num_threads({threads})
sys.path.insert(0, {bench_dir!r})
from memory import SyntheticSpace
from mmagent.memory.store import MemoryStore
q = np.load({q!r}); gt = np.load({gt!r})
t0 = time.perf_counter(); store = MemoryStore({path!r}, SyntheticSpace(), readonly=True); reopen = time.perf_counter() - t0
rss = int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024
idx = store.index
def timed(fn):
    ts, res = [], []
    for v in q:
        t = time.perf_counter(); res.append(fn(v[None])); ts.append(time.perf_counter() - t)
    return np.array(ts) * 1e3, res
def recall(ids): return float(np.mean([len(set(i[i >= 0]) & set(g)) / len(g) for i, g in zip(ids, gt)]))
out = {{"reopen_s": reopen, "rss_mb": rss, "kind": idx.kind, "nlist": int(idx.index.nlist) if idx.kind == "ivf" else None, "sweep": []}}
for nprobe in {nprobes}:
    idx.config.nprobe = nprobe
    ms, res = timed(lambda v: idx.search(v, 10)[1][0])
    out["sweep"].append({{"nprobe": nprobe, "p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99)), "recall": recall(res)}})
idx.config.nprobe = {nprobe}
ms, res = timed(lambda v: [h.id for h in store.search(v[0], k=10)])
out["store"] = {{"p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99)), "recall": recall([np.array(r) for r in res])}}
flat = faiss.IndexIDMap2(faiss.IndexFlatIP(q.shape[1]))
for ids, vecs in store.db.iter_vectors(q.shape[1]):
    flat.add_with_ids(vecs, ids)
ms, res = timed(lambda v: flat.search(v, 10)[1][0])
out["exact"] = {{"p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99)), "recall": recall(res)}}
print(json.dumps(out))
"""


def measure(path: Path, qfile: Path, gtfile: Path, threads: int, nprobe: int, nprobes: list[int]) -> dict:
    code = CHILD.format(threads=threads, bench_dir=str(Path(__file__).parent), q=str(qfile), gt=str(gtfile), path=str(path), nprobes=nprobes, nprobe=nprobe)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale(sizes: list[int], threads: int, n_queries: int, nprobe: int, nprobes: list[int], workdir: Path) -> list[dict]:
    import faiss

    faiss.omp_set_num_threads(threads)
    rows = []
    for n in sizes:
        path = workdir / f"store-{n}"
        queries = chunk(centroids(), n_queries, seed=7)
        t0 = time.perf_counter()
        built = build(path, n, queries)
        build_s = time.perf_counter() - t0
        np.save(workdir / "q.npy", queries)
        np.save(workdir / "gt.npy", built["gt"])
        m = measure(path, workdir / "q.npy", workdir / "gt.npy", threads, nprobe, nprobes)
        disk = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        rows.append({"n": n, "add_per_s": n / built["add_s"], "build_s": build_s, "disk_mb": disk / 2**20,
                     "cos_top1": built["cos_top1"], "cos_top10": built["cos_top10"], **m})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def print_scale(rows: list[dict], threads: int, nprobe: int) -> None:
    print(f"\n## Memory at scale (384-d clustered synthetic, k=10, faiss threads={threads}, medians over single queries)\n")
    print("| n | index | add vec/s | reopen s | RSS MB | disk MB | exact p50/p99 ms | exact recall | IVF p50/p99 ms (nprobe) | IVF recall@10 | store.search p50/p99 ms | store recall@10 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ivf = next(s for s in r["sweep"] if s["nprobe"] == nprobe)
        print(
            f"| {r['n']:,} | {r['kind']} nlist={r['nlist']} | {r['add_per_s']:,.0f} | {r['reopen_s']:.2f} | {r['rss_mb']:,.0f} | {r['disk_mb']:,.0f} "
            f"| {r['exact']['p50']:.2f} / {r['exact']['p99']:.2f} | {r['exact']['recall']:.3f} | {ivf['p50']:.2f} / {ivf['p99']:.2f} ({nprobe}) "
            f"| {ivf['recall']:.3f} | {r['store']['p50']:.2f} / {r['store']['p99']:.2f} | {r['store']['recall']:.3f} |"
        )
    print("\nexact neighbour cosine (top-1 / top-10): " + "; ".join(f"n={r['n']:,}: {r['cos_top1']:.2f} / {r['cos_top10']:.2f}" for r in rows))
    print("\nnprobe sweep (index search only): " + "; ".join(
        f"n={r['n']:,}: " + ", ".join(f"{s['nprobe']}: {s['recall']:.3f} @ {s['p50']:.2f} ms" for s in r["sweep"]) for r in rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--threads", type=int, default=1, help="faiss (OpenMP) and torch threads")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--nprobe", type=int, default=24)
    ap.add_argument("--nprobes", type=int, nargs="+", default=[8, 16, 24, 32, 48])
    ap.add_argument("--workdir", type=Path, default=None, help="where stores are built (default: a temp folder, removed)")
    ap.add_argument("--skip-bridge", action="store_true")
    ap.add_argument("--bridge-only", action="store_true")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if not args.bridge_only:
        with tempfile.TemporaryDirectory(prefix="mmagent-bench-memory-", dir=args.workdir) as tmp:
            rows = scale(args.sizes, args.threads, args.queries, args.nprobe, args.nprobes, Path(tmp))
        print_scale(rows, args.threads, args.nprobe)
    if not args.skip_bridge:
        from mmagent.memory.bridge_eval import print_bridge, run_bridge

        print_bridge(run_bridge(args.threads), args.threads)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
