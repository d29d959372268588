"""Adapter versions with lineage, training-data hashes and metrics; atomic promote and rollback.

Layout under `root` (default `<home>/adapters`):

    versions/v0003/adapter/        the peft adapter folder (`save_pretrained` output)
    versions/v0003/version.json    a `VersionRecord`: parent, data hash, method, metrics
    current                        JSON `{"version": "v0003", "previous": ["v0002", "v0001"]}`

A version is written into a temp folder and appears with one `os.rename`, so a half-written
version never exists. Which version serves is the `current` file alone, replaced with one
`os.replace`: a promotion killed at any point leaves either the old or the new pointer, never a
mix. Rollback pops `previous` in the same single replace. The serving version is never edited
in place; loaders call `AdapterRegistry.serving()` at session start, so a promotion reaches new
sessions without a restart.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mmagent.atomic import atomic_write_text as atomic_write
from mmagent.errors import UserError

ADAPTER_FILES = ("adapter_config.json",)  # what a complete peft adapter folder must hold


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


class RegistryError(ValueError, UserError):
    """A user-facing registry problem (unknown version, nothing to roll back to, ...)."""


class AdapterRegistry:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.pointer_file = self.root / "current"

    # -- reading ---------------------------------------------------------------------------
    def list(self) -> list[VersionRecord]:
        if not self.versions_dir.is_dir():
            return []
        recs = [self._read_record(p.name) for p in sorted(self.versions_dir.iterdir()) if (p / "version.json").is_file()]
        return recs

    def get(self, version: str) -> VersionRecord:
        if not (self.versions_dir / version / "version.json").is_file():
            known = ", ".join(r.version for r in self.list()) or "none yet"
            raise RegistryError(f"unknown adapter version {version!r} (known: {known}); see `mmagent adapters list`")
        return self._read_record(version)

    def adapter_path(self, version: str) -> Path:
        return self.versions_dir / version / "adapter"

    def pointer(self) -> Pointer | None:
        if not self.pointer_file.is_file():
            return None
        return Pointer.model_validate_json(self.pointer_file.read_text())

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
        rec = (record or VersionRecord(version="")).model_copy(update={**fields, "version": self._next_name()})
        tmp = Path(tempfile.mkdtemp(prefix=f".{rec.version}.", dir=self.versions_dir))
        try:
            shutil.copytree(adapter_dir, tmp / "adapter")
            _write_json(tmp / "version.json", rec.model_dump())
            os.rename(tmp, self.versions_dir / rec.version)  # the version appears whole or not at all
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return rec

    def update_metrics(self, version: str, metrics: dict[str, Any]) -> VersionRecord:
        rec = self.get(version)
        rec.metrics.update(metrics)
        atomic_write(self.versions_dir / version / "version.json", json.dumps(rec.model_dump(), indent=2))
        return rec

    def promote(self, version: str) -> Pointer:
        """Makes `version` serve new sessions; one os.replace, so an interruption changes nothing."""
        self.get(version)
        if not (self.adapter_path(version) / "adapter_config.json").is_file():
            raise RegistryError(f"version {version} has no complete adapter folder; refusing to promote it")
        old = self.pointer()
        if old and old.version == version:
            return old
        previous = ([old.version] + old.previous) if old else []
        ptr = Pointer(version=version, previous=previous)
        atomic_write(self.pointer_file, ptr.model_dump_json())
        return ptr

    def rollback(self) -> Pointer | None:
        """Serves the previously promoted version again (None: back to the base/shipped default)."""
        old = self.pointer()
        if old is None:
            raise RegistryError("nothing to roll back: no adapter version has been promoted")
        if not old.previous:
            os.replace(self.pointer_file, self.pointer_file.with_suffix(".rolled-back"))
            return None
        ptr = Pointer(version=old.previous[0], previous=old.previous[1:])
        atomic_write(self.pointer_file, ptr.model_dump_json())
        return ptr

    def clean_partials(self) -> list[str]:
        """Removes temp folders a killed `add` left behind (never a finished version)."""
        if not self.versions_dir.is_dir():
            return []
        gone = [p.name for p in self.versions_dir.iterdir() if p.name.startswith(".")]
        for name in gone:
            shutil.rmtree(self.versions_dir / name, ignore_errors=True)
        return gone

    # -- internals -------------------------------------------------------------------------
    def _read_record(self, version: str) -> VersionRecord:
        return VersionRecord.model_validate_json((self.versions_dir / version / "version.json").read_text())

    def _next_name(self) -> str:
        nums = [int(p.name[1:]) for p in self.versions_dir.iterdir() if p.name.startswith("v") and p.name[1:].isdigit()]
        return f"v{max(nums, default=0) + 1:04d}"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2))


def default_registry() -> AdapterRegistry:
    from mmagent.config import get_settings

    return AdapterRegistry(get_settings().home / "adapters")
