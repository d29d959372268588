"""Adapter versions with lineage, training-data hashes and metrics; atomic promote and rollback.

Layout under `root` (default `<home>/adapters`):

    versions/v0003/adapter/        the peft adapter folder (`save_pretrained` output)
    versions/v0003/version.json    a `VersionRecord`: parent, data hash, method, metrics
    current                        JSON `{"version": "v0003", "previous": ["v0002", "v0001"]}`
    current.bak                    a mirror of `current`, read only when `current` is corrupt
    .lock                          held (flock) by a writer: add, promote, rollback, update_metrics

A version is written into a temp folder and appears with one `os.rename`, so a half-written
version never exists. Which version serves is the `current` file alone, replaced with one
`os.replace`: a promotion killed at any point leaves either the old or the new pointer, never a
mix. Rollback pops `previous` in the same single replace; `previous` holds each version once,
newest first, at most `MAX_HISTORY`. The serving version is never edited in place; loaders call
`AdapterRegistry.serving()` at session start, so a promotion reaches new sessions without a restart.

A version is loaded (config and every tensor) before it may be promoted. A corrupt `current`
falls back to its mirror (else to the base) and says so in `read_pointer().problem`; promote and
rollback rewrite it. Opening a registry removes what killed writers left (temp files and
folders) unless a live writer holds the lock; listings never show a temp folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mmagent.atomic import atomic_write_text as atomic_write
from mmagent.errors import UserError

ADAPTER_FILES = ("adapter_config.json",)  # what a complete peft adapter folder must hold
WEIGHTS_FILE = "adapter_model.safetensors"  # what serving loads (`mmagent.model.lora.load_adapter`)
MAX_HISTORY = 20  # versions `previous` remembers for rollback
LOCK_TIMEOUT_S = 60.0
_VERSION = re.compile(r"^v[0-9]{4,}$")
log = logging.getLogger(__name__)


class VersionRecord(BaseModel):
    """One adapter version: where it came from, what trained it, how it scored."""

    version: str
    parent: str | None = None
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    method: str = "base"  # replay | olora | ewc | base (imported)
    data_hash: str | None = None  # sha256 over the training examples (see continual.dataset)
    n_examples: int = 0
    metrics: dict[str, Any] = Field(default_factory=dict)  # gate report: regression, learning, decision
    note: str = ""


class Pointer(BaseModel):
    version: str
    previous: list[str] = Field(default_factory=list)  # most recent first; rollback pops from here


@dataclass(frozen=True)
class Serving:
    version: str
    path: Path  # the peft adapter folder to load


@dataclass(frozen=True)
class PointerRead:
    pointer: Pointer | None  # the pointer in effect (None: the base model / shipped default serves)
    problem: str | None = None  # why `current` could not be used as it is (then `pointer` is its mirror's, or None)


class RegistryError(ValueError, UserError):
    """A user-facing registry problem (unknown version, nothing to roll back to, ...)."""


class AdapterRegistry:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.pointer_file = self.root / "current"
        self.mirror_file = self.root / "current.bak"
        self.lock_file = self.root / ".lock"
        self._clean_on_open()

    # -- reading ---------------------------------------------------------------------------
    def list(self) -> list[VersionRecord]:
        """Finished versions only (a writer's temp folder never lists), oldest first."""
        if not self.versions_dir.is_dir():
            return []
        names = sorted((p.name for p in self.versions_dir.iterdir() if _VERSION.match(p.name) and (p / "version.json").is_file()),
                       key=lambda n: int(n[1:]))
        return [self._read_record(n, listing=True) for n in names]

    def get(self, version: str) -> VersionRecord:
        if not (_VERSION.match(version) and (self.versions_dir / version / "version.json").is_file()):
            known = ", ".join(r.version for r in self.list()) or "none yet"
            raise RegistryError(f"unknown adapter version {version!r} (known: {known}); see `mmagent adapters list`")
        return self._read_record(version)

    def adapter_path(self, version: str) -> Path:
        return self.versions_dir / version / "adapter"

    def read_pointer(self) -> PointerRead:
        """The pointer in effect: `current`, or when that is corrupt its mirror (`current.bak`,
        else the base), with the problem said; never raises for a bad file."""
        if not self.pointer_file.exists():
            return PointerRead(None)
        try:
            return PointerRead(_parse_pointer(self.pointer_file))
        except (OSError, ValueError) as err:
            problem = f"the serving pointer {self.pointer_file} is corrupt ({_short(err)})"
        try:
            mirror = _parse_pointer(self.mirror_file)
        except (OSError, ValueError):
            return PointerRead(None, f"{problem}, and so is its copy: the base model serves; "
                                     "`mmagent adapters promote VERSION` rewrites it")
        return PointerRead(mirror, f"{problem}: serving {mirror.version} from its copy {self.mirror_file.name}; "
                                   "`mmagent adapters promote VERSION` or `rollback` rewrites it")

    def pointer(self) -> Pointer | None:
        return self.read_pointer().pointer

    def serving(self) -> Serving | None:
        """The version new sessions should load, or None to serve the base model / shipped default."""
        ptr = self.pointer()
        return Serving(ptr.version, self.adapter_path(ptr.version)) if ptr else None

    def lineage(self, version: str) -> list[str]:
        """`version`, its parent, its grandparent ... back to the first version."""
        chain, seen = [], set()
        cur: str | None = version
        while cur and cur not in seen:
            seen.add(cur)
            chain.append(cur)
            cur = self.get(cur).parent
        return chain

    # -- writing ---------------------------------------------------------------------------
    def add(self, adapter_dir: Path, record: VersionRecord | None = None, **fields: Any) -> VersionRecord:
        """Copies a finished adapter folder in as the next version (not serving until promoted)."""
        adapter_dir = Path(adapter_dir)
        missing = [f for f in ADAPTER_FILES if not (adapter_dir / f).is_file()]
        if missing:
            raise RegistryError(f"{adapter_dir} is not a complete peft adapter folder (missing {missing})")
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            rec = (record or VersionRecord(version="")).model_copy(update={**fields, "version": self._next_name()})
            tmp = Path(tempfile.mkdtemp(prefix=f".{rec.version}.", dir=self.versions_dir))
            try:
                shutil.copytree(adapter_dir, tmp / "adapter")
                _write_json(tmp / "version.json", rec.model_dump())
                _fsync_tree(tmp)  # `current` is fsynced: what it may point to must be on disk first
                os.rename(tmp, self.versions_dir / rec.version)  # the version appears whole or not at all
                _fsync_dir(self.versions_dir)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return rec

    def update_metrics(self, version: str, metrics: dict[str, Any]) -> VersionRecord:
        with self._locked():
            rec = self.get(version)
            rec.metrics.update(metrics)
            atomic_write(self.versions_dir / version / "version.json", json.dumps(rec.model_dump(), indent=2))
        return rec

    def verify(self, version: str) -> None:
        """Loads `version`'s adapter (config and every tensor); RegistryError says what is wrong."""
        self.get(version)
        try:
            verify_adapter(self.adapter_path(version))
        except RegistryError as err:
            raise RegistryError(f"version {version} cannot serve: {err}") from err

    def promote(self, version: str) -> Pointer:
        """Makes `version` serve new sessions once it loads; one os.replace, so an interruption changes nothing."""
        self.verify(version)
        with self._locked():
            read = self.read_pointer()
            old = read.pointer
            if old and old.version == version and read.problem is None:
                return old
            history = [old.version, *old.previous] if old else []
            ptr = Pointer(version=version, previous=[v for v in dict.fromkeys(history) if v != version][:MAX_HISTORY])
            self._write_pointer(ptr)
        return ptr

    def rollback(self) -> Pointer | None:
        """Serves the previously promoted version again (None: back to the base/shipped default).
        Works on a corrupt pointer too: from its mirror, else straight to the base."""
        with self._locked():
            read = self.read_pointer()
            old = read.pointer
            if old is None and read.problem is None:
                raise RegistryError("nothing to roll back: no adapter version has been promoted")
            previous = [v for v in dict.fromkeys(old.previous) if v != old.version] if old else []
            if not previous:
                os.replace(self.pointer_file, self.pointer_file.with_suffix(".corrupt" if old is None else ".rolled-back"))
                self.mirror_file.unlink(missing_ok=True)
                _fsync_dir(self.root)
                return None
            ptr = Pointer(version=previous[0], previous=previous[1:MAX_HISTORY + 1])
            self._write_pointer(ptr)
        return ptr

    def clean_partials(self) -> list[str]:
        """Removes what killed writers left: temp folders of `add`, temp files of promote /
        rollback / update_metrics (never a finished version); waits for a live writer first."""
        if not self.root.is_dir():
            return []
        with self._locked():
            return self._clean()

    # -- internals -------------------------------------------------------------------------
    def _clean_on_open(self) -> None:
        """`clean_partials` when no live writer holds the lock (theirs is work in progress)."""
        if not self.root.is_dir():
            return
        from filelock import FileLock, Timeout

        try:
            with FileLock(self.lock_file, timeout=0):
                gone = self._clean()
        except (Timeout, OSError):  # a writer is at work, or a read-only home: nothing of ours to clean
            return
        if gone:
            log.info("adapter registry %s: removed %d leftover(s) of killed writers: %s", self.root, len(gone), ", ".join(gone))

    def _clean(self) -> list[str]:
        dirs = [self.root]
        if self.versions_dir.is_dir():
            dirs.append(self.versions_dir)
            dirs += [p for p in self.versions_dir.iterdir() if _VERSION.match(p.name) and p.is_dir()]
        gone = []
        for d in dirs:
            for p in d.iterdir():
                temp_file = p.name.startswith(".") and p.name.endswith(".tmp") and not p.is_dir()  # atomic_write's
                temp_dir = d == self.versions_dir and p.name.startswith(".") and p.is_dir()  # add's
                if temp_dir:
                    shutil.rmtree(p, ignore_errors=True)
                elif temp_file:
                    p.unlink(missing_ok=True)
                else:
                    continue
                gone.append(str(p.relative_to(self.root)))
        return gone

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time, across processes (flock: a killed holder releases it)."""
        from filelock import FileLock, Timeout

        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(self.lock_file, timeout=LOCK_TIMEOUT_S):
                yield
        except Timeout as err:
            raise RegistryError(f"another process has been writing the adapter registry {self.root} for "
                                f"{LOCK_TIMEOUT_S:.0f} s (`mmagent learn`?); try again when it is done") from err

    def _write_pointer(self, ptr: Pointer) -> None:
        text = ptr.model_dump_json()
        atomic_write(self.pointer_file, text)  # this is the switch; the mirror follows
        atomic_write(self.mirror_file, text)

    def _read_record(self, version: str, listing: bool = False) -> VersionRecord:
        path = self.versions_dir / version / "version.json"
        try:
            return VersionRecord.model_validate_json(path.read_text())
        except (OSError, ValueError) as err:
            if listing:  # a listing shows the version and what is wrong with it
                return VersionRecord(version=version, note=f"unreadable version.json: {_short(err)}")
            raise RegistryError(f"version {version}: {path} is unreadable ({_short(err)})") from err

    def _next_name(self) -> str:
        nums = [int(p.name[1:]) for p in self.versions_dir.iterdir() if _VERSION.match(p.name)]
        return f"v{max(nums, default=0) + 1:04d}"


def verify_adapter(folder: Path) -> None:
    """Loads a peft LoRA folder the way serving will, without a base model: the config parses as
    a LoRA config and every tensor of the weights file loads and is finite. Raises RegistryError."""
    folder = Path(folder)
    cfg_path, weights = folder / "adapter_config.json", folder / WEIGHTS_FILE
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as err:
        raise RegistryError(f"{cfg_path} does not load ({_short(err)})") from err
    if not isinstance(cfg, dict) or cfg.get("peft_type") != "LORA" or not isinstance(cfg.get("r"), int) or cfg["r"] < 1:
        raise RegistryError(f"{cfg_path} is not a peft LoRA config (needs peft_type LORA and a rank r >= 1)")
    if not weights.is_file():
        raise RegistryError(f"{folder} has no {WEIGHTS_FILE}")
    import torch
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(weights))
    except Exception as err:  # noqa: BLE001 - SafetensorError (truncated, bad header) and OSError alike
        raise RegistryError(f"{weights} does not load ({type(err).__name__}: {_short(err)})") from err
    lora = {k: t for k, t in tensors.items() if "lora_" in k}
    if not lora:
        raise RegistryError(f"{weights} holds no LoRA tensors")
    for k, t in lora.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise RegistryError(f"{weights}: {k} is not finite (NaN or inf): a diverged training run?")
        if "lora_A" in k and t.dim() == 2 and not cfg.get("rank_pattern") and t.shape[0] != cfg["r"]:
            raise RegistryError(f"{weights}: {k} has rank {t.shape[0]} but the config says r={cfg['r']}")


def _parse_pointer(path: Path) -> Pointer:
    ptr = Pointer.model_validate_json(path.read_bytes())
    if not _VERSION.match(ptr.version) or not all(_VERSION.match(v) for v in ptr.previous):
        raise ValueError(f"names no adapter version: {ptr.version!r}")
    return ptr


def _short(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines()]
    text = ": ".join(lines[:2]).split(" [type=")[0]  # pydantic: "1 validation error for X: what [type=..., input=...]"
    return (text or type(err).__name__)[:200]


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2))


def _fsync_tree(folder: Path) -> None:
    for dirpath, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def default_registry() -> AdapterRegistry:
    from mmagent.config import get_settings

    return AdapterRegistry(get_settings().home / "adapters")
