"""The FAISS index: stable int64 ids, cosine similarity as inner product of unit vectors.

Two layouts, chosen by size (`IndexConfig.exact_max`):

- flat: `IndexIDMap2(IndexFlatIP)` — exact; ids map to rows, `remove_ids` compacts.
- ivf:  an inverted file over k-means cells (Jégou et al. 2011; faiss `IVF{nlist}_HNSW32,SQfp16`):
  an HNSW graph over the centroids finds the `nprobe` nearest cells (Malkov & Yashunin 2018),
  so the coarse step does not scan all centroids; list entries are fp16 (half the bytes a
  query streams; single-query search is memory-bound). Ids are native to IVF: it is *not*
  wrapped in `IndexIDMap2`, whose `remove_ids` assumes the inner index renumbers rows like a
  flat index, which IVF does not (ids would drift after a delete). IVF rather than HNSW over
  all vectors: building HNSW over 1M 384-d vectors takes far longer on 2 cores than k-means +
  assignment, and HNSW cannot remove vectors.

The IVF is retrained when the store has grown `retrain_growth` times past the size it was
trained at; nlist is sized for the middle of that growth (2 * sqrt(2n)), so cells neither start
nearly empty nor end overfull. Nothing here knows about SQLite; `store.py` supplies vectors.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
from pydantic import BaseModel, Field

log = logging.getLogger(__name__)


class IndexConfig(BaseModel):
    """When the index stops being exact, and how the approximate one is shaped."""

    exact_max: int = Field(50_000, ge=0, description="Exact (flat) search up to this many vectors; IVF past it.")
    nlist: int | None = Field(None, ge=1, description="IVF cells; default 2*sqrt(2n) at training time (k-means cost grows as nlist^2).")
    nprobe: int = Field(24, ge=1, description="IVF cells scanned per query (recall vs speed).")
    codec: Literal["fp16", "flat"] = Field("fp16", description="How IVF lists store vectors: fp16 (half the bytes) or float32.")
    hnsw_quantizer_min: int = Field(1024, ge=1, description="Use an HNSW graph over the centroids from this many cells up.")
    train_per_list: int = Field(40, ge=10, description="Training vectors per IVF cell (k-means sample size).")
    kmeans_iters: int = Field(10, ge=1)
    retrain_growth: float = Field(4.0, gt=1.0, description="Retrain the IVF when n exceeds this times the size it was trained at.")


def normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalization ([N, D] float32) so inner product is cosine similarity."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class VectorIndex:
    """A FAISS index over unit vectors with stable external ids."""

    def __init__(self, dim: int, config: IndexConfig | None = None, index: faiss.Index | None = None, trained_n: int = 0):
        self.dim = dim
        self.config = config or IndexConfig()
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.trained_n = trained_n
        if self.index.d != dim:
            raise ValueError(f"index has dimension {self.index.d}, expected {dim}")

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self.index, faiss.IndexIVF) else "flat"

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Adds [N] ids with their [N, D] unit vectors."""
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: Iterable[int]) -> int:
        arr = np.fromiter(ids, dtype=np.int64)
        return int(self.index.remove_ids(faiss.IDSelectorBatch(arr))) if len(arr) else 0

    def ids(self) -> np.ndarray:
        """Every id in the index (int64) — for consistency checks."""
        if self.kind == "flat":
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        invlists = self.index.invlists
        parts = [faiss.rev_swig_ptr(invlists.get_ids(l), invlists.list_size(l)).copy() for l in range(self.index.nlist) if invlists.list_size(l)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores [Q, k], ids [Q, k]; -1 where fewer exist) among `allowed` ids if given.

        With a filter on IVF, the allowed items may sit in cells the probe skips; nprobe grows
        (x4) until every query has min(k, |allowed|) hits or all cells are scanned, so a filter
        never silently returns fewer than k.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64)) if allowed is not None else None
        if self.kind == "flat":
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
            return self.index.search(q, k, params=params)
        want = min(k, self.ntotal if allowed is None else len(allowed))
        nprobe = min(self.config.nprobe, self.index.nlist)
        while True:
            scores, ids = self.index.search(q, k, params=faiss.SearchParametersIVF(nprobe=nprobe, sel=sel))
            if sel is None or nprobe >= self.index.nlist or (ids >= 0).sum(axis=1).min() >= want:
                return scores, ids
            nprobe = min(nprobe * 4, self.index.nlist)

    # --- growth -----------------------------------------------------------------------------
    def needs_training(self) -> bool:
        n = self.ntotal
        if self.kind == "flat":
            return n > self.config.exact_max
        return n > self.config.retrain_growth * max(self.trained_n, 1)

    def retrain(self, n: int, sample: Callable[[int], np.ndarray], batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]) -> None:
        """Rebuilds as IVF fitted to `n` vectors: k-means on `sample(m)` then adds `batches()`.

        The old index is dropped before the new one fills, so peak memory is one index.
        """
        nlist = self.config.nlist or max(16, int(2 * math.sqrt(2 * n)))
        train = sample(min(n, nlist * self.config.train_per_list))
        nlist = min(nlist, max(1, len(train) // 10))
        coarse = f"IVF{nlist}_HNSW32" if nlist >= self.config.hnsw_quantizer_min else f"IVF{nlist}"
        index = faiss.index_factory(self.dim, f"{coarse},{'SQfp16' if self.config.codec == 'fp16' else 'Flat'}", faiss.METRIC_INNER_PRODUCT)
        faiss.extract_index_ivf(index).cp.niter = self.config.kmeans_iters
        index.train(train)
        self.index = index
        for ids, vecs in batches():
            self.add(ids, vecs)
        self.trained_n = n
        log.info("index retrained: IVF nlist=%d on %d vectors (%d training)", nlist, n, len(train))

    def reset_flat(self) -> None:
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self.trained_n = 0

    # --- persistence ------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """faiss.write_index to a temp file, fsync, then one rename: never half-written."""
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    @classmethod
    def load(cls, path: Path, dim: int, config: IndexConfig | None = None, trained_n: int = 0) -> "VectorIndex":
        """Reads a saved index; raises ValueError if it is unreadable or of another shape."""
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise ValueError(f"index file {path} is unreadable ({str(err).splitlines()[0][:200]})") from err
        if not isinstance(index, (faiss.IndexIDMap2, faiss.IndexIVF)):
            raise ValueError(f"index file {path} holds a {type(index).__name__}, not an mmagent memory index")
        if index.d != dim:
            raise ValueError(f"index file {path} has dimension {index.d}, the store has {dim}")
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = (config or IndexConfig()).nprobe
        return cls(dim, config, index, trained_n)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
