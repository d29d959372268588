"""memory/index.py: exact flat search, IVF past a size, stable ids, filters, snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from mmagent.memory.index import IndexConfig, VectorIndex, normalize


def clustered(n: int, dim: int = 16, clusters: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cents = normalize(rng.standard_normal((clusters, dim)))
    return normalize(cents[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim)))


def exact(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(x @ q[0]))[:k]]


def test_flat_is_exact_and_ids_survive_removal():
    x = clustered(200)
    ids = np.arange(1000, 1200, dtype=np.int64)
    idx = VectorIndex(16)
    idx.add(ids, x)
    q = x[5:6]
    assert list(idx.search(q, 5)[1][0]) == list(exact(x, ids, q, 5))
    assert idx.remove([1005, 1006, 99999]) == 2
    keep = ~np.isin(ids, [1005, 1006])
    assert list(idx.search(q, 5)[1][0]) == list(exact(x[keep], ids[keep], q, 5))
    assert sorted(idx.ids()) == sorted(ids[keep])


def test_grows_into_ivf_with_high_recall():
    x = clustered(3000, seed=1)
    ids = np.arange(1, 3001, dtype=np.int64)
    idx = VectorIndex(16, IndexConfig(exact_max=500, nprobe=32))
    idx.add(ids, x)
    assert idx.needs_training()
    idx.retrain(len(x), lambda m: x[:m], lambda: [(ids, x)])
    assert idx.kind == "ivf" and idx.ntotal == 3000 and not idx.needs_training()
    q = clustered(50, seed=2)
    rec = np.mean([len(set(idx.search(v[None], 10)[1][0]) & set(exact(x, ids, v[None], 10))) / 10 for v in q])
    assert rec >= 0.9
    assert idx.remove(ids[:100]) == 100 and idx.ntotal == 2900
    assert sorted(idx.ids()) == list(range(101, 3001))


def test_filtered_ivf_search_widens_the_probe_until_k_found():
    x = clustered(2000, seed=3)
    ids = np.arange(1, 2001, dtype=np.int64)
    idx = VectorIndex(16, IndexConfig(exact_max=0, nprobe=1, nlist=64))
    idx.retrain(len(x), lambda m: x[:m], lambda: [(ids, x)])
    allowed = ids[::97]  # scattered over many cells: one probe cannot hold 10 of them
    scores, got = idx.search(x[:1], 10, allowed=allowed)
    assert (got[0] >= 0).sum() == 10 and set(got[0]) <= set(allowed)
    assert list(got[0]) == list(exact(x[allowed - 1], allowed, x[:1], 10))


def test_save_load_roundtrip_and_corrupt_file(tmp_path):
    x = clustered(100)
    idx = VectorIndex(16)
    idx.add(np.arange(100, dtype=np.int64), x)
    idx.save(tmp_path / "a.faiss")
    assert not list(tmp_path.glob(".*tmp*"))
    back = VectorIndex.load(tmp_path / "a.faiss", 16)
    assert np.array_equal(back.search(x[:3], 4)[1], idx.search(x[:3], 4)[1])
    with pytest.raises(ValueError, match="dimension 16"):
        VectorIndex.load(tmp_path / "a.faiss", 32)
    (tmp_path / "b.faiss").write_bytes(b"not an index")
    with pytest.raises(ValueError, match="unreadable"):
        VectorIndex.load(tmp_path / "b.faiss", 16)
