"""Index snapshots on disk: `index-<seq>.faiss`, the checkpoint marker in the file name.

A snapshot reflects every change in SQLite's log up to `seq`. It is written to a temp file,
fsynced and renamed (`VectorIndex.save`), so a file with a final name is always whole and its
name always tells which log entries to replay on top of it: marker and data change in one
atomic rename. Older snapshots are deleted only after a newer one is in place.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mmagent.memory.index import IndexConfig, VectorIndex

log = logging.getLogger(__name__)
_NAME = re.compile(r"^index-(\d{12})\.faiss$")


def snapshot_path(folder: Path, seq: int) -> Path:
    return folder / f"index-{seq:012d}.faiss"


def list_snapshots(folder: Path) -> list[tuple[int, Path]]:
    """(seq, path) of every snapshot, newest first."""
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found, reverse=True)


def load_newest(folder: Path, dim: int, config: IndexConfig, min_seq: int) -> tuple[VectorIndex, int] | None:
    """The newest readable snapshot at or past `min_seq` (older ones cannot be replayed: their
    log entries were pruned), or None. Unreadable files are skipped with a warning."""
    for seq, path in list_snapshots(folder):
        if seq < min_seq:
            break
        try:
            index = VectorIndex.load(path, dim, config)
        except FileNotFoundError:  # removed by a writer's checkpoint between listing and reading
            continue
        except ValueError as err:
            log.warning("skipping snapshot: %s; the index will be rebuilt from SQLite", err)
            continue
        if index.kind == "ivf":
            # k-means was fitted with nlist = 2*sqrt(2n): recover n for the retrain rule.
            index.trained_n = int((index.index.nlist / 2) ** 2 / 2) if config.nlist is None else index.ntotal
        return index, seq
    return None


def remove_older(folder: Path, keep_seq: int) -> None:
    """Deletes snapshots older than `keep_seq` and temp files of dead writes (call under the writer lock)."""
    for seq, path in list_snapshots(folder):
        if seq < keep_seq:
            path.unlink(missing_ok=True)
    for tmp in folder.glob(".index-*.faiss.tmp-*"):
        tmp.unlink(missing_ok=True)



def readable(path: Path, dim: int, config: IndexConfig) -> bool:
    try:
        VectorIndex.load(path, dim, config)
    except (ValueError, FileNotFoundError):
        return False
    return True


def remove_unreadable(folder: Path, dim: int, config: IndexConfig, keep: Path | None = None) -> list[Path]:
    """Deletes snapshots that cannot be loaded (corrupt, another dimension); call under the writer
    lock, after a good snapshot is in place. Returns what was deleted."""
    gone = []
    for _, path in list_snapshots(folder):
        if path != keep and not readable(path, dim, config):
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone
