"""Export and import of a memory: JSON Lines + a .npy of vectors + media files (no pickle).

    folder/
      meta.json       {"format": 1, "space", "dim", "count"}
      items.jsonl     one item per line (row i <-> vectors.npy[i])
      vectors.npy     [N, D] float32 (np.save, allow_pickle=False on load)
      media/          stored images referred to by items

Importing into a store of another embedding space is refused (vectors would be meaningless);
import into a fresh store or one of the same space. Ids are assigned anew on import.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmagent.errors import UserError
from mmagent.memory.metadata import NewItem

if TYPE_CHECKING:
    from mmagent.memory.store import MemoryStore

FORMAT = 1


class ExportError(ValueError, UserError):
    """A folder that is no readable export for this store (format, JSON, shapes, embedding space)."""


def export_store(store: "MemoryStore", folder: Path) -> int:
    """Writes every item; returns how many."""
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"export folder {folder} is not empty: choose a new folder")
    (folder / "media").mkdir(parents=True, exist_ok=True)
    dim = store.dim or 0
    vectors = []
    with open(folder / "items.jsonl", "w", encoding="utf-8") as out:
        for row, blob in store.db.iter_rows():
            rec = {k: getattr(row, k) for k in ("id", "modality", "text", "artifact_id", "source", "session", "created_at", "media", "caption", "tags")}
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            vectors.append(np.frombuffer(blob, dtype="<f4"))
            if row.media:
                shutil.copy2(store.path / "media" / row.media, folder / "media" / row.media)
    arr = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
    np.save(folder / "vectors.npy", arr, allow_pickle=False)
    (folder / "meta.json").write_text(json.dumps({"format": FORMAT, "space": store.space, "dim": dim, "count": len(vectors)}, indent=1))
    return len(vectors)


def read_export(folder: Path) -> tuple[dict, list[dict], np.ndarray]:
    """(meta, records, vectors [N, D]) of an export folder, checked for consistency."""
    for name in ("meta.json", "items.jsonl", "vectors.npy"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a memory export: {name} is missing")
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("format") != FORMAT:
        raise ExportError(f"{folder}: export format {meta.get('format')!r} is not supported (expected {FORMAT})")
    records = []
    with open(folder / "items.jsonl", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ExportError(f"{folder / 'items.jsonl'} line {n} is not JSON ({err})") from None
    vectors = np.load(folder / "vectors.npy", allow_pickle=False)
    if vectors.ndim != 2 or len(vectors) != len(records) or (len(records) and vectors.shape[1] != meta["dim"]):
        raise ExportError(f"{folder}: {len(records)} items but vectors of shape {list(vectors.shape)} (dim {meta['dim']})")
    return meta, records, vectors.astype(np.float32)


def import_store(store: "MemoryStore", folder: Path) -> list[int]:
    """Adds every exported item to `store` in one transaction; returns the new ids."""
    meta, records, vectors = read_export(folder)
    if not records:
        return []
    if store.space is None:
        store.db.set_meta({"space": meta["space"], "dim": str(meta["dim"])})
    elif (store.space, store.dim) != (meta["space"], meta["dim"]):
        raise ExportError(
            f"{folder} holds {meta['dim']}-d vectors of space {meta['space']!r}, the store at {store.path} has "
            f"{store.dim}-d {store.space!r}: import into a new store, then re-embed it (`mmagent memory rebuild --reembed`)"
        )
    items = []
    for r in records:
        media = r.get("media")
        if media:
            src = folder / "media" / media
            if not src.is_file():
                raise FileNotFoundError(f"{folder}: item {r.get('id')} refers to media/{media}, which is missing")
            dest = store.path / "media" / media
            if not dest.exists():
                shutil.copy2(src, dest)
        items.append(
            NewItem(r["modality"], r.get("text") or "", r.get("artifact_id"), r.get("source"), r.get("session"),
                    list(r.get("tags") or []), media=media, caption=r.get("caption"), created_at=r.get("created_at"))
        )
    return store._insert(items, vectors)
