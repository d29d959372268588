"""SQLite: the memory's source of truth.

Every item lives here — its metadata, its tags and its vector (float32 little-endian blob) — and
every change to the vector set is appended to a `changes` log with a monotonically increasing
`seq`. The FAISS index is only a cache of this table: a saved index records the `seq` it
reflects, and reopening replays the log past it (see `store.py`). Ids come from
`AUTOINCREMENT`, so a deleted id is never handed out again (stable int64 ids for FAISS).

WAL mode: readers in other processes never block the writer and see only committed
transactions; a process killed at any point leaves the last committed state.

Every item belongs to one `namespace` (a user, a tenant, an agent session: whoever must not see
another's memories; `"default"` unless said otherwise). Stores made before namespaces existed get
the column on their first writable open (`ALTER TABLE ... DEFAULT 'default'`, one transaction);
opened read-only they stay readable, every item in `"default"`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

Modality = Literal["text", "image", "audio"]
DEFAULT_NAMESPACE = "default"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    modality TEXT NOT NULL CHECK (modality IN ('text', 'image', 'audio')),
    artifact_id TEXT,
    text TEXT NOT NULL DEFAULT '',
    source TEXT,
    session TEXT,
    created_at REAL NOT NULL,
    media TEXT,
    caption TEXT,
    namespace TEXT NOT NULL DEFAULT 'default'
);
-- Vectors apart from the metadata: filters and counts scan small rows, not 1.5 KB blobs.
CREATE TABLE IF NOT EXISTS vectors(
    id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_session ON items(session);
CREATE INDEX IF NOT EXISTS items_by_created ON items(created_at);
CREATE TABLE IF NOT EXISTS tags(
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (item_id, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_tag ON tags(tag, item_id);
CREATE TABLE IF NOT EXISTS changes(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'delete', 'update'))
);
"""


class MemoryFilter(BaseModel):
    """Which items a search may return; all given conditions must hold (AND).

    `tags_any`: at least one of these tags; `tags_all`: every one of them. Times are datetimes
    or epoch seconds; `since` is inclusive, `until` exclusive.
    """

    model_config = ConfigDict(extra="forbid")

    modality: list[Modality] | None = None
    tags_any: list[str] | None = None
    tags_all: list[str] | None = None
    session: str | None = None
    source: str | None = None
    since: datetime | float | None = None
    until: datetime | float | None = None
    namespace: str | None = None

    @field_validator("modality", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _range(self) -> "MemoryFilter":
        lo, hi = _epoch(self.since), _epoch(self.until)
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"empty time range: since ({self.since}) must be before until ({self.until})")
        return self

    @classmethod
    def parse(cls, filters: "MemoryFilter | dict | None") -> "MemoryFilter | None":
        """Validates user filters; a malformed one is a ValueError that names the bad field."""
        if filters is None or isinstance(filters, MemoryFilter):
            return filters
        if not isinstance(filters, dict):
            raise ValueError(f"filters must be a dict or MemoryFilter, got {type(filters).__name__}")
        try:
            return cls.model_validate(filters)
        except ValidationError as err:
            fields = ", ".join(sorted(MemoryFilter.model_fields))
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'filters'}: {e['msg']}" for e in err.errors())
            raise ValueError(f"malformed memory filter ({problems}); allowed fields: {fields}") from None

    def is_empty(self) -> bool:
        return all(v is None for v in self.model_dump().values())


def _epoch(t: datetime | float | None) -> float | None:
    if t is None or isinstance(t, (int, float)):
        return t
    return t.timestamp()


@dataclass
class NewItem:
    """One item about to be inserted (its vector travels beside it)."""

    modality: Modality
    text: str = ""
    artifact_id: str | None = None
    source: str | None = None
    session: str | None = None
    tags: list[str] = field(default_factory=list)
    media: str | None = None  # file name under the store's media/ folder (images, for re-embedding)
    caption: str | None = None  # the user's caption of an image (re-embedding needs it apart from OCR/labels)
    created_at: float | None = None
    namespace: str = DEFAULT_NAMESPACE


@dataclass
class ItemRow:
    id: int
    modality: Modality
    text: str
    artifact_id: str | None
    source: str | None
    session: str | None
    created_at: float
    media: str | None
    caption: str | None
    tags: list[str]
    namespace: str = DEFAULT_NAMESPACE


def to_blob(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def from_blobs(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    """[N, dim] float32 from N blobs (one copy)."""
    out = np.frombuffer(b"".join(blobs), dtype="<f4")
    return out.reshape(len(blobs), dim).astype(np.float32, copy=False)


class MetadataDB:
    """The SQLite file: items, tags, vectors and the change log."""

    def __init__(self, path: Path, readonly: bool = False, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        if readonly and not self.path.exists():
            raise FileNotFoundError(f"no memory database at {self.path}: create the store first (open it without readonly)")
        self.conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA foreign_keys=ON")
        if not readonly:
            # WAL: readers never block the writer. synchronous=NORMAL survives any process kill;
            # only a power cut may lose the last commits (never corrupts).
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
            self._migrate()

    def _migrate(self) -> None:
        """Brings a store made by an older version up to this schema (idempotent, one transaction)."""
        if not self.has_namespace:
            with self._write():
                if not self._columns_have("namespace"):  # another process may have migrated meanwhile
                    self.conn.execute(f"ALTER TABLE items ADD COLUMN namespace TEXT NOT NULL DEFAULT '{DEFAULT_NAMESPACE}'")
        self.conn.execute("CREATE INDEX IF NOT EXISTS items_by_namespace ON items(namespace)")

    @property
    def has_namespace(self) -> bool:
        """False only for a store of an older version opened read-only (then every item is "default")."""
        if not getattr(self, "_has_namespace", False):
            self._has_namespace = self._columns_have("namespace")
        return self._has_namespace

    def _columns_have(self, name: str) -> bool:
        return any(r[1] == name for r in self.conn.execute("PRAGMA table_info(items)"))

    def _cols(self, prefix: str = "") -> str:
        ns = f"{prefix}namespace" if self.has_namespace else f"'{DEFAULT_NAMESPACE}'"
        return f"{prefix}id, modality, text, artifact_id, source, session, created_at, media, caption, {ns}"

    def close(self) -> None:
        self.conn.close()

    # --- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, values: dict[str, str]) -> None:
        with self._write():
            self.conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(values.items()))

    # --- writes (each one transaction) ------------------------------------------------------
    def insert(self, items: Sequence[NewItem], vectors: np.ndarray) -> list[int]:
        """Inserts items with their [N, D] vectors atomically; returns the new ids in order."""
        now = time.time()
        if len(items) != len(vectors):
            raise ValueError(f"{len(items)} items but {len(vectors)} vectors")
        with self._write():
            # Inside BEGIN IMMEDIATE no one else inserts, and AUTOINCREMENT hands out
            # max(ever)+1 per row: the batch's ids are the next len(items) integers.
            row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name='items'").fetchone()
            start = (row[0] if row else 0) + 1
            self.conn.executemany(
                "INSERT INTO items(id, modality, artifact_id, text, source, session, created_at, media, caption, namespace) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(start + j, it.modality, it.artifact_id, it.text, it.source, it.session, it.created_at or now, it.media, it.caption,
                  it.namespace) for j, it in enumerate(items)],
            )
            ids = list(range(start, start + len(items)))
            self.conn.executemany("INSERT INTO vectors(id, vector) VALUES (?, ?)", [(i, to_blob(v)) for i, v in zip(ids, vectors)])
            self.conn.executemany("INSERT OR IGNORE INTO tags(item_id, tag) VALUES (?, ?)", [(i, t) for i, it in zip(ids, items) for t in it.tags])
            self.conn.executemany("INSERT INTO changes(item_id, op) VALUES (?, 'add')", [(i,) for i in ids])
        return ids

    def delete(self, ids: Sequence[int]) -> list[int]:
        """Deletes the items that exist; returns which ones were deleted."""
        with self._write():
            found = self._existing(ids)
            self.conn.executemany("DELETE FROM items WHERE id=?", [(i,) for i in found])
            self.conn.executemany("INSERT INTO changes(item_id, op) VALUES (?, 'delete')", [(i,) for i in found])
        return found

    def update_vectors(self, ids: Sequence[int], vectors: np.ndarray, texts: Sequence[str], captions: Sequence[str | None],
                       meta: dict[str, str] | None = None) -> None:
        """New vectors (and texts/captions) for existing items, logged as updates; `meta` is set in
        the same transaction (a re-embed switches the space atomically with its vectors)."""
        with self._write():
            self.conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list((meta or {}).items()))
            for i, vec, text, caption in zip(ids, vectors, texts, captions, strict=True):
                self.conn.execute("UPDATE items SET text=?, caption=? WHERE id=?", (text, caption, i))
                self.conn.execute("UPDATE vectors SET vector=? WHERE id=?", (to_blob(vec), i))
            self.conn.executemany("INSERT INTO changes(item_id, op) VALUES (?, 'update')", [(i,) for i in ids])

    def retag(self, item_id: int, add: Sequence[str] = (), remove: Sequence[str] = (), replace: Sequence[str] | None = None) -> list[str]:
        """Changes tags only (no vector change, so nothing for the index to replay)."""
        with self._write():
            if not self._existing([item_id]):
                raise KeyError(f"no memory item with id {item_id}")
            if replace is not None:
                self.conn.execute("DELETE FROM tags WHERE item_id=?", (item_id,))
                add = list(replace)
            self.conn.executemany("DELETE FROM tags WHERE item_id=? AND tag=?", [(item_id, t) for t in remove])
            self.conn.executemany("INSERT OR IGNORE INTO tags(item_id, tag) VALUES (?, ?)", [(item_id, t) for t in add])
        return self.tags_of([item_id])[item_id]

    def prune_changes(self, upto_seq: int) -> None:
        """Drops log entries a saved index already reflects; readers behind it reload."""
        with self._write():
            self.conn.execute("DELETE FROM changes WHERE seq <= ?", (upto_seq,))
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('changes_floor', ?)", (str(upto_seq),))

    # --- reads ------------------------------------------------------------------------------
    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM items").fetchone()[0]

    def last_seq(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name='changes'").fetchone()
        return row[0] if row else 0

    def changes_floor(self) -> int:
        return int(self.get_meta("changes_floor") or 0)

    def changes_since(self, seq: int) -> list[tuple[int, int, str]]:
        return self.conn.execute("SELECT seq, item_id, op FROM changes WHERE seq > ? ORDER BY seq", (seq,)).fetchall()

    def get(self, ids: Sequence[int]) -> list[ItemRow]:
        """Rows for the ids that exist, in the order asked."""
        if not ids:
            return []
        rows = {}
        for chunk in _chunks(list(ids), 900):
            q = f"SELECT {self._cols()} FROM items WHERE id IN ({','.join('?' * len(chunk))})"
            rows.update({r[0]: r for r in self.conn.execute(q, chunk)})
        tags = self.tags_of(list(rows))
        return [ItemRow(*rows[i][:9], tags=tags[i], namespace=rows[i][9]) for i in ids if i in rows]

    def tags_of(self, ids: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {i: [] for i in ids}
        for chunk in _chunks(list(ids), 900):
            q = f"SELECT item_id, tag FROM tags WHERE item_id IN ({','.join('?' * len(chunk))}) ORDER BY tag"
            for i, t in self.conn.execute(q, chunk):
                out[i].append(t)
        return out

    def vectors(self, ids: Sequence[int], dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids that exist [M] int64, their vectors [M, dim])."""
        got_ids, blobs = [], []
        for chunk in _chunks(list(ids), 900):
            q = f"SELECT id, vector FROM vectors WHERE id IN ({','.join('?' * len(chunk))})"
            for i, b in self.conn.execute(q, chunk):
                got_ids.append(i)
                blobs.append(b)
        return np.asarray(got_ids, dtype=np.int64), from_blobs(blobs, dim) if blobs else np.zeros((0, dim), np.float32)

    def iter_vectors(self, dim: int, batch: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (ids [B], vectors [B, dim]) in id order, a batch at a time (bounded memory)."""
        last = -1
        while True:
            rows = self.conn.execute("SELECT id, vector FROM vectors WHERE id > ? ORDER BY id LIMIT ?", (last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield np.fromiter((r[0] for r in rows), np.int64, len(rows)), from_blobs([r[1] for r in rows], dim)

    def iter_rows(self, batch: int = 1000) -> Iterator[tuple[ItemRow, bytes]]:
        last = -1
        while True:
            rows = self.conn.execute(
                f"SELECT {self._cols('i.')}, vector FROM items i JOIN vectors v ON v.id = i.id WHERE i.id > ? ORDER BY i.id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            tags = self.tags_of([r[0] for r in rows])
            for r in rows:
                yield ItemRow(*r[:9], tags=tags[r[0]], namespace=r[9]), r[10]

    def filter_ids(self, f: MemoryFilter) -> np.ndarray:
        """Ids of items matching every condition of `f` (int64, sorted)."""
        where, params = filter_sql(f, self.has_namespace)
        q = f"SELECT id FROM items WHERE {where} ORDER BY id"
        return np.fromiter((r[0] for r in self.conn.execute(q, params)), np.int64)

    def stats(self) -> dict:
        by_modality = dict(self.conn.execute("SELECT modality, count(*) FROM items GROUP BY modality").fetchall())
        n_tags = self.conn.execute("SELECT count(DISTINCT tag) FROM tags").fetchone()[0]
        sessions = self.conn.execute("SELECT count(DISTINCT session) FROM items").fetchone()[0]
        namespaces = self.conn.execute("SELECT count(DISTINCT namespace) FROM items").fetchone()[0] if self.has_namespace else int(bool(by_modality))
        span = self.conn.execute("SELECT min(created_at), max(created_at) FROM items").fetchone()
        return {"items": sum(by_modality.values()), "by_modality": by_modality, "tags": n_tags, "sessions": sessions,
                "namespaces": namespaces, "oldest": span[0], "newest": span[1]}

    # --- helpers ----------------------------------------------------------------------------
    def _existing(self, ids: Sequence[int]) -> list[int]:
        found: set[int] = set()
        for chunk in _chunks([int(i) for i in ids], 900):
            q = f"SELECT id FROM items WHERE id IN ({','.join('?' * len(chunk))})"
            found.update(r[0] for r in self.conn.execute(q, chunk))
        return [int(i) for i in ids if int(i) in found]

    def _write(self) -> "_Transaction":
        return _Transaction(self.conn)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees one committed state (WAL snapshot isolation)."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (all or nothing)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def filter_sql(f: MemoryFilter, has_namespace: bool = True) -> tuple[str, list]:
    """A WHERE clause (and its parameters) for one filter; conditions are ANDed."""
    where, params = ["1=1"], []
    if f.namespace is not None:
        # A store from before namespaces (opened read-only) has every item in the default one.
        where.append("namespace = ?" if has_namespace else f"? = '{DEFAULT_NAMESPACE}'")
        params.append(f.namespace)
    if f.modality:
        where.append(f"modality IN ({','.join('?' * len(f.modality))})")
        params += f.modality
    if f.session is not None:
        where.append("session = ?")
        params.append(f.session)
    if f.source is not None:
        where.append("source = ?")
        params.append(f.source)
    if f.since is not None:
        where.append("created_at >= ?")
        params.append(_epoch(f.since))
    if f.until is not None:
        where.append("created_at < ?")
        params.append(_epoch(f.until))
    if f.tags_any:
        where.append(f"id IN (SELECT item_id FROM tags WHERE tag IN ({','.join('?' * len(f.tags_any))}))")
        params += f.tags_any
    if f.tags_all:
        tags = sorted(set(f.tags_all))
        where.append(f"id IN (SELECT item_id FROM tags WHERE tag IN ({','.join('?' * len(tags))}) GROUP BY item_id HAVING count(*) = ?)")
        params += [*tags, len(tags)]
    return " AND ".join(where), params


def _chunks(xs: list, n: int) -> Iterator[list]:
    for i in range(0, len(xs), n):
        yield xs[i : i + n]

