"""Hostile inputs for the memory and the artifact store, shared by the hardening and reliability tests.

Nothing here costs real memory or disk: the "bomb" PNG claims 12000x12000 pixels in ~20 KB
(one IDAT of zeros, zlib level 9), the 1.5 GB file is sparse (`truncate`), and the bundles are
copies of a real export with one field or file changed.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

from PIL import Image

BOMB_SIDE = 12_000  # 144 MP: 3.6x the 40 MP limit, under Pillow's own error threshold (~179 MP)
SPARSE_BYTES = 1_500_000_000


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, side: int = BOMB_SIDE) -> Path:
    """A valid 1-bit greyscale PNG of side x side pixels, ~20 KB on disk (~430 MB once RGB)."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)  # filter byte + packed bits
    raw = zlib.compress(row * side, 9)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b""))
    return path


def sparse_png(path: Path, size: int = SPARSE_BYTES) -> Path:
    """A small real PNG header followed by a sparse hole: `size` bytes on paper, ~nothing on disk."""
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    with open(path, "r+b") as f:
        f.truncate(size)
    return path


def text_as_png(path: Path) -> Path:
    path.write_text("this is not an image, whatever its name says\n")
    return path


def truncated_png(path: Path) -> Path:
    import io

    import numpy as np

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def bad_image_files(folder: Path) -> dict[str, Path]:
    """name -> a file (or not-a-file) that no image entry may accept."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.png").write_bytes(b"")
    (folder / "a-folder.png").mkdir(exist_ok=True)
    return {
        "text-named-png": text_as_png(folder / "text.png"),
        "empty": folder / "empty.png",
        "truncated": truncated_png(folder / "truncated.png"),
        "bomb-144MP": bomb_png(folder / "bomb.png"),
        "sparse-1.5GB": sparse_png(folder / "huge.png"),
        "folder": folder / "a-folder.png",
        "missing": folder / "missing.png",
    }


# --- hostile export bundles -------------------------------------------------------------------

def read_items(bundle: Path) -> list[dict]:
    return [json.loads(line) for line in (bundle / "items.jsonl").read_text().splitlines()]


def write_items(bundle: Path, items: list[dict]) -> None:
    (bundle / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))


def _with_media(bundle: Path, media: str) -> None:
    items = read_items(bundle)
    next(r for r in items if r.get("media"))["media"] = media
    write_items(bundle, items)


def hostile_bundles(good: Path, work: Path) -> dict[str, Path]:
    """Copies of the export `good` (which has one image item), each altered in one hostile way.

    Files the attacks point at live under `work/outside/`; the caller checks none was copied into
    (or written next to) the store."""
    outside = work / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    media_name = next(r["media"] for r in read_items(good) if r.get("media"))
    secret = outside / "secret.png"
    Image.new("RGB", (8, 8), (200, 0, 0)).save(secret)
    (work / "payload.txt").write_text("written by a hostile bundle\n")
    out: dict[str, Path] = {}

    def copy(name: str) -> Path:
        dest = work / name
        shutil.copytree(good, dest, symlinks=True)
        out[name] = dest
        return dest

    # 1. `..`: the media name climbs out of the bundle (work/payload.txt) and, as a destination,
    #    out of the store's media/ (a store at work/stores/s would get work/stores/payload.txt).
    b = copy("dotdot")
    _with_media(b, "../../payload.txt")
    # 2. an absolute path.
    b = copy("absolute")
    _with_media(b, str(secret))
    # 3. a media file that is a symlink to a file outside the bundle (name and all else valid).
    b = copy("symlink-file")
    (b / "media" / media_name).unlink()
    os.symlink(secret, b / "media" / media_name)
    # 4. the media folder itself a symlink to a folder outside.
    b = copy("symlink-dir")
    shutil.rmtree(b / "media")
    evil = outside / "media"
    evil.mkdir(exist_ok=True)
    shutil.copy2(good / "media" / media_name, evil / media_name)
    os.symlink(evil, b / "media")
    # 5. items.jsonl a symlink out of the bundle.
    b = copy("symlink-items")
    shutil.copy2(b / "items.jsonl", outside / "items.jsonl")
    (b / "items.jsonl").unlink()
    os.symlink(outside / "items.jsonl", b / "items.jsonl")
    # 6. a media file whose bytes are not what its (content-addressed) name says.
    b = copy("altered-media")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(b / "media" / media_name, format="PNG")
    # 7. a decompression bomb as media, named after its own sha256 like a real one.
    b = copy("bomb-media")
    _rename_to_sha(b, media_name, bomb_png(b / "media" / "bomb.png"))
    # 8. a name with a folder in it that stays inside the bundle (still not a media name).
    b = copy("subfolder")
    (b / "media" / "sub").mkdir()
    shutil.copy2(good / "media" / media_name, b / "media" / "sub" / media_name)
    _with_media(b, f"sub/{media_name}")
    return out


def _rename_to_sha(bundle: Path, old_name: str, new_file: Path) -> None:
    import hashlib

    name = hashlib.sha256(new_file.read_bytes()).hexdigest() + ".png"
    new_file.rename(bundle / "media" / name)
    (bundle / "media" / old_name).unlink()
    _with_media(bundle, name)


def tree(folder: Path) -> dict[str, int]:
    """Every file under `folder` (relative name -> size), SQLite's side files left out (opening
    a WAL database may create or grow them without any change to the data)."""
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm", ".lock"))
    }
