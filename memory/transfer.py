"""Export and import of a memory: JSON Lines + a .npy of vectors + media files (no pickle).

    folder/
      meta.json       {"format": 1, "space", "dim", "count"}
      items.jsonl     one item per line (row i <-> vectors.npy[i])
      vectors.npy     [N, D] float32 (np.save, allow_pickle=False on load)
      media/          stored images referred to by items

Importing into a store of another embedding space is refused (vectors would be meaningless);
import into a fresh store or one of the same space. Ids are assigned anew on import.

A bundle is untrusted input. Before anything is written, every record is checked, and every path
it names must stay inside the bundle (no absolute path, no `..`, no symlink leading out: each one
is resolved and compared) and land inside the store's `media/`; a media file must be a readable
image within the limits whose name is the sha256 of its bytes (as `save_media` names them). Any
failure refuses the whole bundle and leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from mmagent.memory.index import normalize
from mmagent.memory.metadata import DEFAULT_NAMESPACE, NewItem

from mmagent.errors import UserError

if TYPE_CHECKING:
    from mmagent.memory.store import MemoryStore

FORMAT = 1
MEDIA_NAME = re.compile(r"^[0-9a-f]{64}\.png$")  # what save_media writes: sha256 of the bytes + .png
MODALITIES = ("text", "image", "audio")


class ExportError(ValueError, UserError):
    """A folder that is no readable export for this store (format, JSON, shapes, embedding space)."""


def export_store(store: "MemoryStore", folder: Path) -> int:
    """Writes every item (of a scoped store: its namespace's); returns how many."""
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"export folder {folder} is not empty: choose a new folder")
    (folder / "media").mkdir(parents=True, exist_ok=True)
    dim = store.dim or 0
    vectors = []
    with open(folder / "items.jsonl", "w", encoding="utf-8") as out:
        for row, blob in store.db.iter_rows():
            if store.namespace is not None and row.namespace != store.namespace:
                continue
            rec = {k: getattr(row, k) for k in ("id", "modality", "text", "artifact_id", "source", "session", "namespace", "created_at", "media", "caption", "tags")}
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            vectors.append(np.frombuffer(blob, dtype="<f4"))
            if row.media:
                shutil.copy2(store.path / "media" / row.media, folder / "media" / row.media)
    arr = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
    np.save(folder / "vectors.npy", arr, allow_pickle=False)
    (folder / "meta.json").write_text(json.dumps({"format": FORMAT, "space": store.space, "dim": dim, "count": len(vectors)}, indent=1))
    return len(vectors)


@dataclass
class Bundle:
    """An export folder that passed every check: what import writes, and nothing else."""

    folder: Path
    meta: dict
    items: list[NewItem]
    vectors: np.ndarray  # [N, D] float32, unit rows
    media: dict[str, Path]  # file name -> resolved source path inside the bundle


def _inside(path: Path, root: Path, what: str) -> Path:
    """`path` resolved (symlinks followed); refused unless it stays under `root` (resolved)."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop
        raise ExportError(f"{what} cannot be resolved ({err}): the bundle is refused, nothing was imported") from None
    if not real.is_relative_to(root):
        raise ExportError(f"{what} leads outside the bundle ({path} -> {real}): the bundle is refused, nothing was imported")
    return real


def read_export(folder: Path) -> tuple[dict, list[dict], np.ndarray]:
    """(meta, records, vectors [N, D]) of an export folder, checked for consistency."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no memory export at {folder}: give the folder `mmagent memory export` wrote")
    root = folder.resolve()
    for name in ("meta.json", "items.jsonl", "vectors.npy"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a memory export: {name} is missing")
        _inside(folder / name, root, name)
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportError(f"{folder / 'meta.json'} is not JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ExportError(f"{folder}: export format {meta.get('format') if isinstance(meta, dict) else None!r} is not supported (expected {FORMAT})")
    if not isinstance(meta.get("space"), (str, type(None))) or isinstance(meta.get("dim"), bool) or not isinstance(meta.get("dim"), int) or meta["dim"] < 0:
        raise ExportError(f"{folder / 'meta.json'}: 'space' must be a name and 'dim' a non-negative integer")
    records = []
    with open(folder / "items.jsonl", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ExportError(f"{folder / 'items.jsonl'} line {n} is not JSON ({err})") from None
    try:
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
    except ValueError as err:
        raise ExportError(f"{folder / 'vectors.npy'} is not a plain .npy array ({err})") from None
    if records and (not meta.get("space") or meta["dim"] < 1):
        raise ExportError(f"{folder / 'meta.json'}: {len(records)} items but no embedding space (space {meta.get('space')!r}, dim {meta['dim']})")
    if vectors.ndim != 2 or len(vectors) != len(records) or (len(records) and vectors.shape[1] != meta["dim"]):
        raise ExportError(f"{folder}: {len(records)} items but vectors of shape {list(vectors.shape)} (dim {meta['dim']})")
    if not np.issubdtype(vectors.dtype, np.floating) or not np.isfinite(vectors).all():
        raise ExportError(f"{folder / 'vectors.npy'}: vectors must be finite floats")
    return meta, records, vectors.astype(np.float32)


def check_bundle(folder: Path, media_dir: Path) -> Bundle:
    """Every check an import needs, none of which writes: records, paths, media files.

    `media_dir` is the store's media folder (it need not exist yet): every destination is checked
    to resolve inside it."""
    from mmagent.media.images import ImageDecodeError, decode_image, read_image_file

    meta, records, vectors = read_export(folder)
    root = folder.resolve()
    dest_root = media_dir.resolve()
    items, media = [], {}
    for n, r in enumerate(records, 1):
        where = f"{folder / 'items.jsonl'} line {n}"
        if not isinstance(r, dict):
            raise ExportError(f"{where}: an item must be a JSON object")
        if r.get("modality") not in MODALITIES:
            raise ExportError(f"{where}: modality {r.get('modality')!r} is none of {', '.join(MODALITIES)}")
        strs = {k: r.get(k) for k in ("artifact_id", "source", "session", "caption")}
        if not isinstance(r.get("text") or "", str) or any(v is not None and not isinstance(v, str) for v in strs.values()):
            raise ExportError(f"{where}: text, artifact_id, source, session and caption must be strings")
        tags = r.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
            raise ExportError(f"{where}: tags must be a list of non-empty strings")
        created = r.get("created_at")
        if created is not None and (isinstance(created, bool) or not isinstance(created, (int, float)) or not math.isfinite(created)):
            raise ExportError(f"{where}: created_at must be epoch seconds")
        namespace = r.get("namespace") or DEFAULT_NAMESPACE
        if not isinstance(namespace, str):
            raise ExportError(f"{where}: namespace must be a string")
        name = r.get("media")
        if name is not None:
            if not isinstance(name, str) or not MEDIA_NAME.match(name):
                raise ExportError(
                    f"{where}: media {name!r} is not a media file name (sha256.png, no folders): the bundle is refused, nothing was imported"
                )
            src = _inside(folder / "media" / name, root, f"{where}: media/{name}")
            if (dest_root / name).resolve().parent != dest_root:
                raise ExportError(f"{where}: media/{name} would be written outside the store's media folder: the bundle is refused")
            if name not in media:
                if not src.is_file():
                    raise FileNotFoundError(f"{folder}: item {r.get('id')} refers to media/{name}, which is missing")
                try:
                    data = read_image_file(src, what=f"media/{name}")  # size from stat, pixels from the header first
                    decode_image(data)  # whole: a truncated file would fail only at the next re-embed
                except ImageDecodeError as err:
                    raise ExportError(f"{where}: {err}; the bundle is refused, nothing was imported") from None
                if hashlib.sha256(data).hexdigest() + ".png" != name:
                    raise ExportError(f"{where}: media/{name} does not hold the bytes its name (sha256) promises: the bundle was altered")
                media[name] = src
        items.append(
            NewItem(r["modality"], r.get("text") or "", strs["artifact_id"], strs["source"], strs["session"], list(tags),
                    media=name, caption=strs["caption"], created_at=created, namespace=namespace)
        )
    return Bundle(folder, meta, items, normalize(vectors) if len(vectors) else vectors, media)


def import_store(store: "MemoryStore", folder: Path, bundle: Bundle | None = None) -> list[int]:
    """Adds every exported item to `store` in one transaction; returns the new ids.

    The whole bundle is checked first (`check_bundle`, or `bundle` checked already against this
    store's media folder); a refusal writes nothing. A scoped store imports every item into its
    own namespace."""
    store._require_writable()
    if bundle is None or bundle.folder != folder:
        bundle = check_bundle(folder, store.path / "media")
    meta = bundle.meta
    if not bundle.items:
        return []
    if store.space is not None and (store.space, store.dim) != (meta["space"], meta["dim"]):
        raise ExportError(
            f"{folder} holds {meta['dim']}-d vectors of space {meta['space']!r}, the store at {store.path} has "
            f"{store.dim}-d {store.space!r}: import into a new store, then re-embed it (`mmagent memory rebuild --reembed`)"
        )
    if store.namespace is not None:
        for it in bundle.items:
            it.namespace = store.namespace
    if store.space is None:
        store.db.set_meta({"space": meta["space"], "dim": str(meta["dim"])})
    dest_root = store.path / "media"
    for name, src in bundle.media.items():  # before the rows: a row never points at a missing file
        dest = dest_root / name
        if not dest.exists():
            _copy_atomic(src, dest)
    return store._insert(bundle.items, bundle.vectors)


def _copy_atomic(src: Path, dest: Path) -> None:
    """Temp file + rename: a kill mid-copy leaves no half file under the final (content-addressed) name."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
