"""The artifact store: media that users attach or tools produce, referred to by session-scoped ids.

    root/
      blobs/ab/abcdef...    content-addressed by sha256 (one copy however many sessions use it)
      artifacts.sqlite      (session, id) -> kind, sha256, mime, size, meta

Ids are `image_1`, `audio_1`, `text_1`, ... numbered per session and kind, and persist in SQLite,
so a session reopened by another process sees the same ids. Adding the same bytes twice in one
session returns the same id. Blobs are written to a temp file and renamed into place, and the row
is inserted only after the blob exists: a crash leaves at most an unreferenced blob, never a row
pointing at half a file. Models and tools only ever see ids; paths stay inside this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import sqlite3
import threading
import wave
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, Field

from mmagent.atomic import atomic_write_bytes
from mmagent.media.errors import MediaError
from mmagent.media.images import (
    MIME,
    DecodedImage,
    ImageDecodeError,
    ImageLimits,
    check_image_size,
    decode_image,
    encode_png,
    read_image_file,
)

Kind = Literal["image", "audio", "text"]
KINDS: tuple[Kind, ...] = ("image", "audio", "text")


class ArtifactError(MediaError):
    """Unknown id, wrong kind, bytes over a limit or not decodable; the message says which and what to do."""


class Artifact(BaseModel):
    id: str  # "image_1"
    kind: Kind
    sha256: str
    mime: str
    size: int  # bytes
    meta: dict[str, Any] = Field(default_factory=dict)  # width/height, sample_rate/duration_s, source ...


@dataclass(frozen=True)
class ArtifactLimits:
    image: ImageLimits = ImageLimits()
    max_audio_bytes: int = 100 * 1024 * 1024
    max_text_bytes: int = 10 * 1024 * 1024


DECODED_CACHE = 4  # decoded images kept per store, each at most DECODED_MAX_PIXELS (~48 MB as RGB)
DECODED_MAX_PIXELS = 16_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    session TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL,
    sha256 TEXT NOT NULL, mime TEXT NOT NULL, size INTEGER NOT NULL, meta TEXT NOT NULL,
    created REAL NOT NULL DEFAULT (julianday('now')),
    PRIMARY KEY (session, id), UNIQUE (session, kind, sha256)
)
"""

# Audio containers recognised by their magic bytes; the decoders (tools/audio.py) read WAV.
_AUDIO_MAGIC = [(b"RIFF", "audio/wav"), (b"fLaC", "audio/flac"), (b"OggS", "audio/ogg"), (b"ID3", "audio/mpeg"), (b"\xff\xfb", "audio/mpeg")]


class ArtifactStore:
    """Session-scoped, content-addressed media store. Thread-safe; safe across processes (SQLite)."""

    def __init__(self, root: Path | str, session: str = "default", limits: ArtifactLimits | None = None) -> None:
        if not session or "/" in session or session.startswith("."):
            raise ArtifactError(f"session name {session!r} is not valid: use a non-empty name without '/'")
        self.root = Path(root).expanduser()
        self.session = session
        self.limits = limits or ArtifactLimits()
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._decoded: OrderedDict[str, tuple[tuple[int, int], DecodedImage]] = OrderedDict()  # sha256 -> (blob stat, decoded), LRU
        self._db = sqlite3.connect(self.root / "artifacts.sqlite", timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    @classmethod
    def open(cls, session: str = "default", settings=None) -> ArtifactStore:
        """The store under the configured `artifact_root` (default `<home>/artifacts`)."""
        from mmagent.config import get_settings

        return cls((settings or get_settings()).artifacts_dir, session)

    # -- adding -----------------------------------------------------------------------------

    def add_image(self, src: Path | str | bytes | Image.Image, meta: dict[str, Any] | None = None) -> Artifact:
        """Stores an image (file, bytes, or PIL image) after checking limits, format and decodability.

        The limits are checked before the expensive work: a file's size from `os.stat` before it is
        read, the pixel count from the header (or a PIL image's `.size`) before anything is decoded
        or encoded."""
        try:
            if isinstance(src, Image.Image):
                check_image_size(src, self.limits.image)
                data = encode_png(src)  # images made in memory (by tools) are stored losslessly
            elif isinstance(src, (bytes, bytearray, memoryview)):
                data = bytes(src)
            else:
                path = Path(src).expanduser()
                if not path.is_file():
                    raise ArtifactError(f"no such file: {path}")
                data = read_image_file(path, self.limits.image)
            decoded = decode_image(data, self.limits.image)
        except ImageDecodeError as err:
            raise ArtifactError(f"cannot add image: {err}") from err
        info = {"width": decoded.width, "height": decoded.height, "format": decoded.format, **(meta or {})}
        return self._add("image", data, MIME[decoded.format], info)

    def add_audio(self, src: Path | str | bytes, meta: dict[str, Any] | None = None) -> Artifact:
        """Stores audio (WAV, FLAC, OGG, MP3 by magic bytes); WAV headers are checked and described."""
        data = self._read_source(src, self.limits.max_audio_bytes, "audio")
        if len(data) > self.limits.max_audio_bytes:
            raise ArtifactError(f"cannot add audio: {len(data):,} bytes is over the limit of {self.limits.max_audio_bytes:,}")
        mime = next((m for magic, m in _AUDIO_MAGIC if data.startswith(magic)), None)
        if mime is None:
            raise ArtifactError("cannot add audio: bytes are not WAV, FLAC, OGG or MP3 (checked by their header)")
        info = _wav_info(data) if mime == "audio/wav" else {}
        return self._add("audio", data, mime, {**info, **(meta or {})})

    def add_text(self, text: str, meta: dict[str, Any] | None = None) -> Artifact:
        data = text.encode("utf-8")
        if len(data) > self.limits.max_text_bytes:
            raise ArtifactError(f"cannot add text: {len(data):,} bytes is over the limit of {self.limits.max_text_bytes:,}")
        return self._add("text", data, "text/plain; charset=utf-8", {"chars": len(text), **(meta or {})})

    # -- reading ----------------------------------------------------------------------------

    def get(self, artifact_id: str) -> Artifact:
        rows = self._query("SELECT id, kind, sha256, mime, size, meta FROM artifacts WHERE session=? AND id=?", (self.session, artifact_id))
        row = rows[0] if rows else None
        if row is None:
            known = [a.id for a in self.list()]
            shown = ", ".join(known[-20:]) or "none yet"
            raise ArtifactError(f"unknown artifact id {artifact_id!r} in session {self.session!r}; known ids: {shown}")
        return _row_to_artifact(row)

    def list(self, kind: Kind | None = None) -> list[Artifact]:
        sql = "SELECT id, kind, sha256, mime, size, meta FROM artifacts WHERE session=?"
        args: tuple = (self.session,)
        if kind:
            sql, args = sql + " AND kind=?", (self.session, kind)
        return [_row_to_artifact(r) for r in self._query(sql + " ORDER BY kind, seq", args)]

    def read_bytes(self, artifact_id: str) -> bytes:
        return self._blob_path(self.get(artifact_id).sha256).read_bytes()

    def load_image(self, artifact_id: str) -> Image.Image:
        """The image as upright RGB (EXIF orientation applied)."""
        return self.decode_image(artifact_id).image

    def decode_image(self, artifact_id: str) -> DecodedImage:
        """The decoded image; decoded once per content while it is among the last `DECODED_CACHE`
        (an agent's turn shows the same image to the model at every step and to its tools): each
        caller gets its own copy, so a tool drawing on it changes nothing for the others."""
        art = self._expect(artifact_id, "image")
        path = self._blob_path(art.sha256)
        try:  # the blob as it is on disk now: a file damaged or replaced since is decoded (and refused) again
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
        with self._lock:
            cached = self._decoded.get(art.sha256)
            if cached is not None and cached[0] == stamp:
                self._decoded.move_to_end(art.sha256)
                hit = cached[1]
            else:
                hit = None
        if hit is None:
            try:
                hit = decode_image(read_image_file(path, self.limits.image, artifact_id), self.limits.image)
            except ImageDecodeError as err:
                raise ArtifactError(f"{artifact_id} could not be decoded: {err}") from err
            if hit.width * hit.height <= DECODED_MAX_PIXELS and stamp is not None:
                with self._lock:
                    self._decoded[art.sha256] = (stamp, hit)
                    while len(self._decoded) > DECODED_CACHE:
                        self._decoded.popitem(last=False)
        return dataclasses.replace(hit, image=hit.image.copy())

    def audio_path(self, artifact_id: str) -> Path:
        """A read-only path to the audio bytes, for decoders that want a file."""
        return self._blob_path(self._expect(artifact_id, "audio").sha256)

    def read_text(self, artifact_id: str) -> str:
        return self._blob_path(self._expect(artifact_id, "text").sha256).read_text("utf-8")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ArtifactStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple) -> list[tuple]:
        # One connection shared by the agent's tool threads: statements are serialised here so a
        # read never interleaves with another thread's id-allocating transaction.
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _expect(self, artifact_id: str, kind: Kind) -> Artifact:
        art = self.get(artifact_id)
        if art.kind != kind:
            raise ArtifactError(f"{artifact_id} is {_a(art.kind)} artifact, not {_a(kind)}; pass a {kind}_N id")
        return art

    def _add(self, kind: Kind, data: bytes, mime: str, meta: dict[str, Any]) -> Artifact:
        sha = hashlib.sha256(data).hexdigest()
        self._write_blob(sha, data)  # blob first: a row never points at a missing file
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # serialises id allocation across processes
            try:
                row = self._db.execute(
                    "SELECT id, kind, sha256, mime, size, meta FROM artifacts WHERE session=? AND kind=? AND sha256=?",
                    (self.session, kind, sha),
                ).fetchone()
                if row is None:
                    (seq,) = self._db.execute(
                        "SELECT COALESCE(MAX(seq), 0) + 1 FROM artifacts WHERE session=? AND kind=?", (self.session, kind)
                    ).fetchone()
                    row = (f"{kind}_{seq}", kind, sha, mime, len(data), json.dumps(meta, default=str))
                    self._db.execute(
                        "INSERT INTO artifacts (session, id, kind, seq, sha256, mime, size, meta) VALUES (?,?,?,?,?,?,?,?)",
                        (self.session, row[0], kind, seq, sha, mime, len(data), row[5]),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return _row_to_artifact(row)

    def _blob_path(self, sha: str) -> Path:
        return self.root / "blobs" / sha[:2] / sha

    def _write_blob(self, sha: str, data: bytes) -> None:
        path = self._blob_path(sha)
        if path.exists() and path.stat().st_size == len(data):
            return  # content-addressed: same name, same bytes
        atomic_write_bytes(path, data)

    @staticmethod
    def _read_source(src: Path | str | bytes, max_bytes: int, kind: str) -> bytes:
        """Bytes as given, or a file's bytes: its size from `os.stat` is checked before it is read,
        and at most `max_bytes` + 1 are read (a file that grows meanwhile is still refused)."""
        if isinstance(src, (bytes, bytearray, memoryview)):
            return bytes(src)
        path = Path(src).expanduser()
        if not path.is_file():
            raise ArtifactError(f"no such file: {path}")
        size = path.stat().st_size
        if size > max_bytes:
            raise ArtifactError(f"cannot add {kind}: {path} is {size:,} bytes, over the limit of {max_bytes:,} bytes; shorten or recompress it")
        with open(path, "rb") as f:
            return f.read(max_bytes + 1)


def _row_to_artifact(row: tuple) -> Artifact:
    aid, kind, sha, mime, size, meta = row
    return Artifact(id=aid, kind=kind, sha256=sha, mime=mime, size=size, meta=json.loads(meta))


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _wav_info(data: bytes) -> dict[str, Any]:
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, ch, frames = w.getframerate(), w.getnchannels(), w.getnframes()
    except (wave.Error, EOFError) as err:
        raise ArtifactError(f"cannot add audio: WAV header is not valid ({err}); export it as PCM WAV") from err
    return {"sample_rate": rate, "channels": ch, "duration_s": round(frames / rate, 3) if rate else 0.0}


def is_artifact_id(value: Any, kind: Kind | None = None) -> bool:
    if not isinstance(value, str) or "_" not in value:
        return False
    k, _, n = value.rpartition("_")
    return n.isdigit() and (k == kind if kind else k in KINDS)


__all__ = ["Artifact", "ArtifactError", "ArtifactLimits", "ArtifactStore", "KINDS", "Kind", "is_artifact_id"]
