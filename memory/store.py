"""`MemoryStore`: the multimodal memory — SQLite truth, FAISS cache, one embedding space.

    path/
      memory.sqlite            items, tags, vectors (float32 blobs), change log  (metadata.py)
      index-<seq>.faiss        FAISS snapshot reflecting the log up to seq        (snapshots.py)
      media/<sha256>.png       stored images, so a new embedder can re-embed them
      writer.lock              one writer at a time (any number of readers)

Write path (under the file lock): catch up on others' changes -> one SQLite transaction
(rows + vectors + log entries) -> apply to the in-memory index -> snapshot every
`checkpoint_every` changes. Read path: before each search, replay log entries past what this
process has applied (one cheap query when nothing changed). Reopen: newest readable snapshot +
replay; no snapshot, a corrupt one, or a count that disagrees with SQLite -> rebuild from SQLite,
and the rebuilt index is snapshotted at once (read-only opens too, when no writer holds the lock:
the snapshot is a cache, SQLite is untouched), so the next open does not rebuild again.
So a kill -9 at any point leaves a store that reopens consistent: SQLite commits atomically and
the index is always derivable from it.

Namespaces: every item belongs to one (`"default"` unless said). `MemoryStore(path, namespace=N)`
is a scoped handle: it writes into N and sees only N (search, get, delete, retag, export); the
default `namespace=None` is the unscoped handle of the owner (the CLI), which sees every item.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Self

import numpy as np
from filelock import FileLock, Timeout
from mmagent.memory import snapshots
from mmagent.memory.content import check_image, clean_tags, open_image, save_media, transcribe
from mmagent.memory.embedders import Embedder, UnsupportedContentError
from mmagent.memory.index import IndexConfig, VectorIndex, normalize
from mmagent.memory.metadata import DEFAULT_NAMESPACE, ItemRow, MemoryFilter, MetadataDB, Modality, NewItem
from PIL import Image
from pydantic import BaseModel

from mmagent.errors import UserError

log = logging.getLogger(__name__)


class MemoryStoreError(RuntimeError):
    """The store cannot do what was asked (locked by another writer, read-only ...)."""


class EmbedderMismatchError(ValueError, UserError):
    """The store's vectors come from another embedding space than the embedder given."""


class NamespaceError(ValueError, UserError):
    """A scoped handle asked to read or write another namespace, or a namespace name that is not valid."""


def check_namespace(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise NamespaceError(f"namespace must be a non-empty name of at most 200 characters, got {name!r}")
    return name


class MemoryItem(BaseModel):
    id: int
    modality: Modality
    text: str
    artifact_id: str | None = None
    source: str | None = None
    session: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    created_at: datetime
    tags: list[str] = []

    @classmethod
    def from_row(cls, row: ItemRow, **extra: Any) -> Self:
        """The item (or hit: `score=` in `extra`) for a metadata row, validated once."""
        return cls(
            id=row.id, modality=row.modality, text=row.text, artifact_id=row.artifact_id, source=row.source,
            session=row.session, namespace=row.namespace, created_at=datetime.fromtimestamp(row.created_at, timezone.utc),
            tags=row.tags, **extra,
        )


class MemoryHit(MemoryItem):
    score: float  # cosine similarity to the query


class MemoryStore:
    """Add, search, get, delete, retag, rebuild, export and import multimodal memories.

    `embedder=None` loads the embedded default (MiniLM + image bridge) on first need, so opening
    a store to read stats or delete never loads a model. `namespace=N` scopes this handle to the
    items of namespace N (see the module docstring); `None` sees every namespace.
    """

    def __init__(
        self,
        path: Path | str,
        embedder: Embedder | None = None,
        *,
        readonly: bool = False,
        config: IndexConfig | None = None,
        checkpoint_every: int = 1000,
        checkpoint_fraction: float = 0.25,
        brute_force_max: int = 4096,
        lock_timeout_s: float = 30.0,
        reembed: bool = False,
        on_reembed: Callable[[int, int], None] | None = None,
        namespace: str | None = None,
    ):
        self.path = Path(path).expanduser()
        self.namespace = None if namespace is None else check_namespace(namespace)
        self.reembedded = False  # True once this object re-embedded the store (reembed=True and a new space)
        self._on_reembed = on_reembed  # (done, total) after each re-embedded item
        self.readonly = readonly
        self.config = config or IndexConfig()
        # Snapshot after max(checkpoint_every, checkpoint_fraction * n) changes: a snapshot costs
        # O(n) to write, so a fixed interval makes bulk loads quadratic; replay after a crash is
        # bounded by the same number of changes.
        self.checkpoint_every = checkpoint_every
        self.checkpoint_fraction = checkpoint_fraction
        self.brute_force_max = brute_force_max  # filtered searches over at most this many items are exact, from SQLite
        self._embedder = embedder
        self._mutex = threading.RLock()
        if not readonly:
            (self.path / "media").mkdir(parents=True, exist_ok=True)
        elif not self.path.is_dir():
            raise FileNotFoundError(f"no memory store at {self.path}: add something to it first")
        self._lock = FileLock(str(self.path / "writer.lock"), timeout=lock_timeout_s)
        self.db = MetadataDB(self.path / "memory.sqlite", readonly=readonly)
        self.index: VectorIndex | None = None
        self.seq = 0  # last log entry applied to self.index
        self.saved_seq = 0  # last log entry in a snapshot on disk
        if embedder is not None:
            self._check_space(embedder, reembed)
        if self.dim is not None:
            self._open_index()

    # --- embedding space --------------------------------------------------------------------
    @property
    def dim(self) -> int | None:
        d = self.db.get_meta("dim")
        return int(d) if d else None

    @property
    def space(self) -> str | None:
        return self.db.get_meta("space")

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from mmagent.memory.embedders import default_embedder

            self._embedder = default_embedder()
            self._check_space(self._embedder, reembed=False)
        return self._embedder

    def _check_space(self, embedder: Embedder, reembed: bool) -> None:
        space, dim = self.space, self.dim
        if space is None:
            if not self.readonly:
                with self._writing(sync=False):
                    self.db.set_meta({"space": embedder.space, "dim": str(embedder.dim)})
            return
        if space == embedder.space and dim == embedder.dim:
            return
        if reembed:
            self._embedder = embedder
            self.rebuild(reembed=True, on_item=self._on_reembed)
            return
        raise EmbedderMismatchError(
            f"the memory at {self.path} holds {dim}-d vectors of space {space!r}, but the embedder given makes "
            f"{embedder.dim}-d vectors of space {embedder.space!r}: open it with the original embedder, or re-embed all "
            f"{self.db.count()} items with the new one (MemoryStore(..., reembed=True) or `mmagent memory rebuild --reembed`)"
        )

    # --- add --------------------------------------------------------------------------------
    def add_text(self, text: str, *, tags: Sequence[str] = (), source: str | None = None, session: str | None = None,
                 artifact_id: str | None = None, namespace: str | None = None) -> MemoryItem:
        """Remembers one piece of text."""
        return self.add_texts([text], tags=tags, source=source, session=session, artifact_ids=[artifact_id], namespace=namespace)[0]

    def add_texts(self, texts: Sequence[str], *, tags: Sequence[str] = (), source: str | None = None, session: str | None = None,
                  artifact_ids: Sequence[str | None] | None = None, namespace: str | None = None) -> list[MemoryItem]:
        """Remembers several texts in one transaction (all or none)."""
        ns = self._write_namespace(namespace)
        vectors = self.embedder.embed_texts(texts)
        ids = artifact_ids or [None] * len(texts)
        items = [NewItem("text", t, a, source, session, clean_tags(tags), namespace=ns) for t, a in zip(texts, ids, strict=True)]
        return self._items(self._insert(items, vectors))

    def add_image(self, image: Image.Image | Path | str, *, caption: str | None = None, tags: Sequence[str] = (),
                  source: str | None = None, session: str | None = None, artifact_id: str | None = None,
                  namespace: str | None = None) -> MemoryItem:
        """Remembers an image (and an optional caption); its pixels are kept under media/ for re-embedding.

        A file over the byte limit (from `os.stat`) or an image over the pixel limit (from its header)
        is refused before it is read or decoded (`mmagent.media.images.MAX_PIXELS`)."""
        ns = self._write_namespace(namespace)
        img = open_image(image)
        emb = self.embedder.embed_images([img], [caption])
        media = save_media(img, self.path / "media")
        item = NewItem("image", emb.texts[0], artifact_id, source, session, clean_tags(tags), media=media, caption=caption, namespace=ns)
        return self._items(self._insert([item], emb.vectors))[0]

    def add_audio(self, audio: Path | str | None = None, *, transcript: str | None = None, tags: Sequence[str] = (),
                  source: str | None = None, session: str | None = None, artifact_id: str | None = None,
                  namespace: str | None = None) -> MemoryItem:
        """Remembers audio through its transcript (recognized from `audio` when not given)."""
        ns = self._write_namespace(namespace)
        if transcript is None:
            if audio is None:
                raise UnsupportedContentError("add_audio needs an audio file or a transcript")
            transcript = transcribe(Path(audio))
        if not transcript or not transcript.strip():
            raise UnsupportedContentError("no speech was recognized in the audio: pass transcript=... to remember it with your own words")
        vectors = self.embedder.embed_texts([transcript])
        item = NewItem("audio", transcript.strip(), artifact_id, source, session, clean_tags(tags), namespace=ns)
        return self._items(self._insert([item], vectors))[0]

    def add_vectors(self, vectors: np.ndarray, texts: Sequence[str] | None = None, *, modality: Modality = "text",
                    tags: Sequence[str] = (), source: str | None = None, session: str | None = None,
                    namespace: str | None = None) -> list[int]:
        """Adds precomputed vectors of this store's space ([N, D]; normalized here). Returns ids."""
        ns = self._write_namespace(namespace)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or (self.dim is not None and vectors.shape[1] != self.dim):
            raise ValueError(f"vectors must be [N, {self.dim}], got shape {list(vectors.shape)}")
        if self.dim is None:
            raise MemoryStoreError("this store has no embedding space yet: open it with an embedder first")
        texts = texts or [""] * len(vectors)
        items = [NewItem(modality, t, None, source, session, clean_tags(tags), namespace=ns) for t in texts]
        return self._insert(items, normalize(vectors))

    def _insert(self, items: list[NewItem], vectors: np.ndarray) -> list[int]:
        with self._writing():
            ids = self.db.insert(items, vectors)
            self.index.add(np.asarray(ids, np.int64), vectors)
            self.seq = self.db.last_seq()
            self._after_write()
        return ids

    def _items(self, ids: list[int]) -> list[MemoryItem]:
        return [MemoryItem.from_row(r) for r in self.db.get(ids)]

    # --- search -----------------------------------------------------------------------------
    def search(self, query: str | Image.Image | np.ndarray, k: int = 5, filters: MemoryFilter | dict | None = None) -> list[MemoryHit]:
        """The k most similar items to a text, an image or a vector, among those matching `filters`
        (a scoped store: only among its namespace's items)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        f = self._scope(MemoryFilter.parse(filters))
        q = self._embed_query(query)  # [1, D]
        with self._mutex:
            self._sync()
            if self.index is None or self.index.ntotal == 0:
                return []
            scores, ids = self._search(q, int(k), f)
            rows = {r.id: r for r in self.db.get([int(i) for i in ids if i >= 0])}
        return [MemoryHit.from_row(rows[int(i)], score=float(s)) for s, i in zip(scores, ids) if int(i) in rows]

    def _search(self, q: np.ndarray, k: int, f: MemoryFilter | None) -> tuple[np.ndarray, np.ndarray]:
        if f is None or f.is_empty():
            scores, ids = self.index.search(q, k)
            return scores[0], ids[0]
        allowed = self.db.filter_ids(f)
        if len(allowed) <= self.brute_force_max:
            # Few matches: exact scores straight from SQLite's vectors (no ANN miss possible).
            got, vecs = self.db.vectors(allowed.tolist(), self.dim)
            sims = vecs @ q[0]  # [M]
            top = np.argsort(-sims)[:k]
            return sims[top], got[top]
        scores, ids = self.index.search(q, k, allowed=allowed)
        return scores[0], ids[0]

    def _embed_query(self, query: str | Image.Image | np.ndarray) -> np.ndarray:
        if isinstance(query, str):
            return self.embedder.embed_texts([query])
        if isinstance(query, Image.Image):
            return self.embedder.embed_images([check_image(query, what="query image")]).vectors  # pixel limit before any work
        if isinstance(query, np.ndarray):
            q = query.reshape(1, -1).astype(np.float32)
            if q.shape[1] != self.dim:
                raise ValueError(f"query vector has {q.shape[1]} dimensions, the store has {self.dim}")
            return normalize(q)
        raise UnsupportedContentError(f"cannot search by a {type(query).__name__}: give text, a PIL image or a vector")

    # --- get / delete / update / retag ------------------------------------------------------
    def get(self, item_id: int) -> MemoryItem:
        rows = self._visible(self.db.get([int(item_id)]))
        if not rows:
            raise KeyError(f"no memory item with id {item_id} (see `mmagent memory search` for ids)")
        return MemoryItem.from_row(rows[0])

    def delete(self, ids: int | Sequence[int]) -> list[int]:
        """Forgets items; returns the ids that existed (unknown ids are not an error)."""
        ids = [int(ids)] if isinstance(ids, (int, np.integer)) else [int(i) for i in ids]
        with self._writing():
            if self.namespace is not None:  # a scoped handle forgets only its own items
                ids = [r.id for r in self._visible(self.db.get(ids))]
            gone = self.db.delete(ids)
            self.index.remove(gone)
            self.seq = self.db.last_seq()
            self._after_write()
        return gone

    def update(self, item_id: int, text: str) -> MemoryItem:
        """Replaces an item's text (an image's caption, an audio's transcript) and re-embeds it."""
        if not isinstance(text, str) or not text.strip():
            raise UnsupportedContentError("update needs non-empty text")
        row = self.get(item_id)
        vec, new_text, caption = self._reembed_row(self.db.get([row.id])[0], text)
        with self._writing():
            if not self.db.get([row.id]):
                raise KeyError(f"memory item {item_id} was deleted meanwhile")
            self.db.update_vectors([row.id], vec, [new_text], [caption])
            self.index.remove([row.id])
            self.index.add(np.asarray([row.id], np.int64), vec)
            self.seq = self.db.last_seq()
            self._after_write()
        return self.get(item_id)

    def retag(self, item_id: int, add: Sequence[str] = (), remove: Sequence[str] = (), replace: Sequence[str] | None = None) -> list[str]:
        """Adds/removes tags (or replaces them all); returns the item's tags."""
        self._require_writable()
        self.get(item_id)  # KeyError for an unknown id or another namespace's
        with self._lock_file():
            return self.db.retag(int(item_id), clean_tags(add), clean_tags(remove), None if replace is None else clean_tags(replace))

    # --- maintenance ------------------------------------------------------------------------
    def stats(self) -> dict:
        with self._mutex:
            self._sync()
            st = self.db.stats()
            idx = self.index
            st.update(
                path=str(self.path), space=self.space, dim=self.dim,
                index={
                    "kind": idx.kind if idx else None, "ntotal": idx.ntotal if idx else 0,
                    "nlist": int(idx.index.nlist) if idx and idx.kind == "ivf" else None,
                    "nprobe": self.config.nprobe if idx and idx.kind == "ivf" else None,
                    "applied_seq": self.seq, "snapshot_seq": self.saved_seq,
                },
                consistent=(idx.ntotal if idx else 0) == st["items"],
                disk_bytes=sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file()),
            )
        return st

    def checkpoint(self) -> Path | None:
        """Writes an index snapshot now (normally automatic); returns its path."""
        with self._writing():
            return self._checkpoint()

    def rebuild(self, reembed: bool = False, on_item: Callable[[int, int], None] | None = None) -> dict:
        """Rebuilds the index from SQLite (retraining IVF if large); with `reembed`, first re-embeds
        every item with the current embedder (texts, transcripts, and stored images), calling
        `on_item(done, total)` after each (the slow part: a model runs per item)."""
        with self._writing(sync=False):
            if reembed:
                self._reembed_all(on_item)
                self.reembedded = True
            self._rebuild_index()
            self._checkpoint()
        return self.stats()

    def compact(self) -> dict:
        """rebuild() + prune the log + VACUUM + drop media no item refers to."""
        self.rebuild()
        with self._writing():
            used = {r.media for r, _ in self.db.iter_rows() if r.media}
            for f in (self.path / "media").iterdir():
                if f.name not in used:
                    f.unlink()
            self.db.conn.execute("VACUUM")
        return self.stats()

    def close(self) -> None:
        """Snapshots pending changes when cheap or many (replaying a few from SQLite is faster)."""
        with self._mutex:
            pending = self.seq - self.saved_seq
            if not self.readonly and self.index is not None and pending and (pending >= self._checkpoint_interval() or self.index.ntotal <= self.config.exact_max):
                try:
                    self.checkpoint()
                except MemoryStoreError as err:
                    log.warning("no snapshot at close: %s", err)
            self.db.close()

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- export / import --------------------------------------------------------------------
    def export(self, folder: Path | str) -> int:
        from mmagent.memory.transfer import export_store

        with self._mutex, self.db.snapshot():  # one committed state, even while a writer is busy
            return export_store(self, Path(folder))

    def import_(self, folder: Path | str) -> list[int]:
        """Adds the items of an export folder (refused whole, nothing written, if any path in it
        leads outside the bundle or the store, or anything else in it is malformed)."""
        from mmagent.memory.transfer import import_store

        return import_store(self, Path(folder))

    # --- internals: namespaces --------------------------------------------------------------
    def _write_namespace(self, namespace: str | None) -> str:
        if namespace is None:
            return self.namespace or DEFAULT_NAMESPACE
        check_namespace(namespace)
        if self.namespace is not None and namespace != self.namespace:
            raise NamespaceError(f"this store handle is scoped to namespace {self.namespace!r}: it cannot write into {namespace!r}")
        return namespace

    def _scope(self, f: MemoryFilter | None) -> MemoryFilter | None:
        if self.namespace is None:
            return f
        if f is not None and f.namespace is not None and f.namespace != self.namespace:
            raise NamespaceError(f"this store handle is scoped to namespace {self.namespace!r}: it cannot search {f.namespace!r}")
        return (f or MemoryFilter()).model_copy(update={"namespace": self.namespace})

    def _visible(self, rows: list[ItemRow]) -> list[ItemRow]:
        return rows if self.namespace is None else [r for r in rows if r.namespace == self.namespace]

    # --- internals: index lifecycle ---------------------------------------------------------
    def _open_index(self) -> None:
        with self._mutex:
            found = snapshots.load_newest(self.path, self.dim, self.config, min_seq=self.db.changes_floor())
            if found is None:
                if snapshots.list_snapshots(self.path) or self.db.count():
                    log.warning("memory at %s: no usable index snapshot; rebuilding from SQLite", self.path)
                    self._rebuild_index()
                    self._persist_rebuilt()
                else:
                    self._rebuild_index()  # a new, empty store: nothing to snapshot
                return
            self.index, self.seq = found
            self.saved_seq = self.seq
            self._replay()
            if self.index.ntotal != self.db.count():
                log.warning("memory at %s: index has %d vectors, SQLite %d items; rebuilding", self.path, self.index.ntotal, self.db.count())
                self._rebuild_index()
                self._persist_rebuilt()

    def _persist_rebuilt(self) -> None:
        """Snapshots an index just rebuilt from SQLite, so that the next open loads it instead of
        rebuilding again (a read-only open included: the snapshot is a cache of SQLite, which is
        not written). Only when the writer lock is free at once: a busy writer snapshots on its own.
        Unreadable snapshots are deleted, so they are not tried (and warned about) at every open."""
        try:
            with self._lock.acquire(timeout=0):
                if self.seq < self.db.changes_floor():
                    return  # a writer checkpointed meanwhile: its snapshot is newer than this rebuild
                self._replay()  # commits since the rebuild, so the snapshot's name tells the truth
                if self.readonly:
                    path = snapshots.snapshot_path(self.path, self.seq)
                    if not path.exists() or not snapshots.readable(path, self.dim, self.config):
                        self.index.save(path)
                    self.saved_seq = self.seq
                else:
                    path = self._checkpoint()
                snapshots.remove_unreadable(self.path, self.dim, self.config, keep=path)
                log.info("memory at %s: rebuilt index snapshotted as %s", self.path, path.name)
        except Timeout:
            log.info("memory at %s: a writer holds the lock; it will snapshot the index", self.path)
        except OSError as err:  # a read-only disk or folder: rebuild again next time
            log.warning("memory at %s: the rebuilt index could not be snapshotted (%s); the next open rebuilds it again", self.path, err)

    def _rebuild_index(self) -> None:
        """The index from SQLite alone (flat, or IVF trained on a sample when large)."""
        seq = self.db.last_seq()
        n = self.db.count()
        self.index = VectorIndex(self.dim, self.config)
        if n > self.config.exact_max:
            self._retrain(n)
        else:
            for ids, vecs in self.db.iter_vectors(self.dim):
                self.index.add(ids, vecs)
        self.seq = seq
        self.saved_seq = 0

    def _retrain(self, n: int) -> None:
        ids = self.index.ids()
        if len(ids) < n:  # index empty (rebuild): sample ids from SQLite
            ids = np.fromiter((r[0] for r in self.db.conn.execute("SELECT id FROM items")), np.int64)
        rng = np.random.default_rng(0)

        def sample(m: int) -> np.ndarray:
            return self.db.vectors(rng.choice(ids, size=min(m, len(ids)), replace=False).tolist(), self.dim)[1]

        self.index.reset_flat()  # drop the old index before building the new one: one index in memory
        self.index.retrain(n, sample, lambda: self.db.iter_vectors(self.dim))

    def _sync(self) -> None:
        """Applies log entries other processes committed since this one last looked."""
        if self.index is None:
            if self.dim is None:
                return
            self._open_index()
            return
        if self.db.last_seq() == self.seq:
            return
        if self.seq < self.db.changes_floor():  # the log we need was pruned: a newer snapshot exists
            self._open_index()
        else:
            self._replay()

    def _replay(self) -> None:
        """Idempotent: every item touched since `seq` is removed, then re-added if it still exists."""
        with self.db.snapshot():  # the log and the vectors read from one committed state
            changes = self.db.changes_since(self.seq)
            touched = sorted({c[1] for c in changes})
            ids, vecs = self.db.vectors(touched, self.dim)
        if not changes:
            return
        self.index.remove(touched)
        self.index.add(ids, vecs)
        self.seq = changes[-1][0]

    def _after_write(self) -> None:
        if self.index.needs_training():
            self._retrain(self.index.ntotal)
            self._checkpoint()  # a trained IVF is expensive: persist it at once
        elif self.seq - self.saved_seq >= self._checkpoint_interval():
            self._checkpoint()

    def _checkpoint_interval(self) -> int:
        return max(self.checkpoint_every, int(self.checkpoint_fraction * self.index.ntotal))

    def _checkpoint(self) -> Path | None:
        if self.index is None:
            return None
        path = snapshots.snapshot_path(self.path, self.seq)
        if self.saved_seq != self.seq or not path.exists():
            self.index.save(path)
        self.saved_seq = self.seq
        self.db.prune_changes(self.seq)
        snapshots.remove_older(self.path, self.seq)
        return path

    # --- internals: locking -----------------------------------------------------------------
    def _require_writable(self) -> None:
        if self.readonly:
            raise MemoryStoreError(f"the memory at {self.path} was opened read-only: open it without readonly=True to change it")

    @contextmanager
    def _lock_file(self) -> Iterator[None]:
        try:
            with self._lock:
                yield
        except Timeout:
            raise MemoryStoreError(
                f"another process is writing to the memory at {self.path} (lock {self._lock.lock_file} held for "
                f"{self._lock.timeout:.0f} s): wait for it to finish, or open this store with readonly=True to search"
            ) from None

    @contextmanager
    def _writing(self, sync: bool = True) -> Iterator[None]:
        """Writer lock (across processes) + mutex (across threads), caught up with the log."""
        self._require_writable()
        with self._mutex, self._lock_file():
            if sync:
                self._sync()
                if self.index is None:
                    self.embedder  # noqa: B018 - a first write fixes the space (loads the default embedder)
                    self._open_index()
            yield

    # --- internals: content -----------------------------------------------------------------
    def _reembed_row(self, row: ItemRow, text: str | None = None) -> tuple[np.ndarray, str, str | None]:
        """(vector [1, D], text, caption) of a row under the current embedder; `text` replaces
        a text item's text, an image's caption or an audio's transcript."""
        if row.modality == "image" and row.media:
            caption = row.caption if text is None else text
            emb = self.embedder.embed_images([open_image(self.path / "media" / row.media)], [caption])
            return emb.vectors, emb.texts[0], caption
        text = row.text if text is None else text
        if not text.strip():
            raise UnsupportedContentError(f"item {row.id} has no text to embed")
        return self.embedder.embed_texts([text]), text, None

    def _reembed_all(self, on_item: Callable[[int, int], None] | None = None) -> None:
        emb = self.embedder
        # Rows are read in full first: updating while iterating would re-read updated rows.
        # Everything is embedded first, then written in one transaction: a crash midway leaves the
        # old space intact, never a mix of two spaces.
        rows = [row for row, _ in self.db.iter_rows()]
        done = []
        for r in rows:
            done.append(self._reembed_row(r))
            if on_item:
                on_item(len(done), len(rows))
        vecs = np.concatenate([d[0] for d in done]) if done else np.zeros((0, emb.dim), np.float32)
        self.db.update_vectors([r.id for r in rows], vecs, [d[1] for d in done], [d[2] for d in done],
                               meta={"space": emb.space, "dim": str(emb.dim)})
