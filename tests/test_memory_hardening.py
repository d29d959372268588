"""The memory's reliability issue, items 2, 6, 9 and 10b: hostile import bundles, limits checked
before the expensive work, a corrupt snapshot rebuilt once, bad `--image` input before any model
loads, and memory scoped per namespace."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import mmagent.cli.memory as memory_cli
import numpy as np
import pytest
from memory_fakes import FakeEmbedder
from memory_hostile import BOMB_SIDE, bomb_png, hostile_bundles, read_items, sparse_png, text_as_png, tree
from mmagent.cli.app import app
from mmagent.memory.embedders import UnsupportedContentError
from mmagent.memory.store import MemoryStore, NamespaceError
from mmagent.tools.base import ToolContext
from mmagent.tools.memory_tools import remember, search_memory
from mmagent.tools.registry import ToolRegistry
from PIL import Image, ImageFile
from typer.testing import CliRunner

from mmagent.errors import UserError
from mmagent.media.artifacts import ArtifactError, ArtifactStore


@pytest.fixture()
def no_decoding(monkeypatch):
    """Any pixel decode (ImageFile.load) or whole-file read fails the test at once: the refusal
    must come from the file's metadata and the image header alone."""
    calls = []
    real_load, real_read = ImageFile.ImageFile.load, Path.read_bytes

    def load(self):
        if self.size[0] * self.size[1] > 40_000_000:
            calls.append(("decode", self.size))
            raise AssertionError(f"decoded a {self.size} image before checking its pixel count")
        return real_load(self)

    def read_bytes(self):
        if self.stat().st_size > 100 * 1024 * 1024:
            calls.append(("read", str(self)))
            raise AssertionError(f"read all of {self} before checking its size")
        return real_read(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return calls


# --- item 6: limits before reading or decoding ---------------------------------------------------

def test_the_pixel_limit_is_defined_once():
    import mmagent.model.encoders.preprocess as preprocess
    from mmagent.media import images

    assert images.MAX_PIXELS == 40_000_000
    assert images.ImageLimits().max_pixels is images.MAX_PIXELS
    assert preprocess.MAX_PIXELS is images.MAX_PIXELS  # imported, not written again


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the test opens the bomb lazily itself
def test_bomb_png_is_refused_from_its_header_everywhere(tmp_path, no_decoding):
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100_000
    store = ArtifactStore(tmp_path / "art", "s")
    mem = MemoryStore(tmp_path / "mem", FakeEmbedder())
    mem.add_text("a memory so that searches have something to search")
    want = f"{BOMB_SIDE}x{BOMB_SIDE} = {BOMB_SIDE * BOMB_SIDE:,} pixels, over the limit of 40,000,000"
    entries = {
        "artifact path": lambda: store.add_image(bomb),
        "artifact bytes": lambda: store.add_image(bomb.read_bytes()),
        "artifact PIL": lambda: store.add_image(Image.open(bomb)),  # lazily opened: only the header read
        "memory path": lambda: mem.add_image(bomb),
        "memory PIL": lambda: mem.add_image(Image.open(bomb)),
        "memory search": lambda: mem.search(Image.open(bomb)),
        "embedder": lambda: FakeEmbedder().embed_images([Image.open(bomb)]),
    }
    for name, call in entries.items():
        t0 = time.perf_counter()
        with pytest.raises(UserError) as info:
            call()
        assert time.perf_counter() - t0 < 1.0, name
        assert want in str(info.value) and "downscale" in str(info.value), (name, str(info.value))
    assert no_decoding == [] and store.list() == [] and mem.stats()["items"] == 1


def test_sparse_1_5_gb_file_is_refused_from_stat_without_reading(tmp_path, no_decoding):
    huge = sparse_png(tmp_path / "huge.png")
    assert huge.stat().st_size == 1_500_000_000
    store = ArtifactStore(tmp_path / "art", "s")
    mem = MemoryStore(tmp_path / "mem", FakeEmbedder())
    wav = tmp_path / "huge.wav"
    with open(wav, "wb") as f:
        f.write(b"RIFF")
        f.truncate(1_500_000_000)
    for name, call, limit in [
        ("artifact image", lambda: store.add_image(huge), "52,428,800"),
        ("memory image", lambda: mem.add_image(huge), "52,428,800"),
        ("artifact audio", lambda: store.add_audio(wav), "104,857,600"),
    ]:
        t0 = time.perf_counter()
        with pytest.raises((ArtifactError, UnsupportedContentError)) as info:
            call()
        assert time.perf_counter() - t0 < 1.0, name
        msg = str(info.value)
        assert "1,500,000,000 bytes" in msg and f"over the limit of {limit}" in msg, (name, msg)
        assert "recompress" in msg, msg
    assert no_decoding == []


def test_images_within_limits_still_go_in_everywhere(tmp_path):
    p = tmp_path / "ok.png"
    Image.new("RGB", (64, 48), (0, 0, 255)).save(p)
    assert ArtifactStore(tmp_path / "art", "s").add_image(p).meta["width"] == 64
    mem = MemoryStore(tmp_path / "mem", FakeEmbedder())
    item = mem.add_image(p, caption="a blue card")
    assert mem.search(Image.open(p), k=1)[0].id == item.id


# --- item 2: hostile import bundles ------------------------------------------------------------

@pytest.fixture()
def export(tmp_path):
    src = MemoryStore(tmp_path / "src", FakeEmbedder())
    src.add_text("the spare key is under the blue pot", tags=["home"])
    src.add_image(Image.new("RGB", (8, 8), (0, 200, 0)), caption="a green square")
    src.export(tmp_path / "good")
    src.close()
    return tmp_path / "good"


@pytest.mark.parametrize("attack", ["dotdot", "absolute", "symlink-file", "symlink-dir", "symlink-items", "altered-media", "bomb-media", "subfolder"])
def test_hostile_bundle_is_refused_and_writes_nothing(tmp_path, export, attack):
    work = tmp_path / "work"
    bundle = hostile_bundles(export, work)[attack]
    store_dir = work / "stores" / "s"  # `../../outside` from store/media would land in work/stores/outside
    store = MemoryStore(store_dir, FakeEmbedder())
    store.add_text("already here")
    store.close()
    before, outside_before = tree(store_dir), tree(work / "outside")
    store = MemoryStore(store_dir, FakeEmbedder())
    with pytest.raises(UserError) as info:
        store.import_(bundle)
    assert "refused" in str(info.value) or "altered" in str(info.value), str(info.value)
    assert store.stats()["items"] == 1 and store.stats()["consistent"]
    store.close()
    assert tree(store_dir) == before  # no new media, nothing else
    assert tree(work / "outside") == outside_before
    assert not (work / "stores" / "payload.txt").exists()  # where `../../payload.txt` would have landed


def test_refused_bundle_through_the_cli_creates_no_store(tmp_path, export, monkeypatch):
    monkeypatch.setattr(memory_cli, "make_embedder", lambda spec: FakeEmbedder())
    bundle = hostile_bundles(export, tmp_path / "work")["dotdot"]
    r = CliRunner().invoke(app, ["memory", "import", str(bundle), "--path", str(tmp_path / "new")])
    assert isinstance(r.exception, UserError) and not (tmp_path / "new").exists()


def test_good_bundle_still_imports_with_its_media(tmp_path, export):
    store = MemoryStore(tmp_path / "dst", FakeEmbedder())
    assert len(store.import_(export)) == 2
    (media,) = [r["media"] for r in read_items(export) if r.get("media")]
    assert (tmp_path / "dst" / "media" / media).is_file()
    assert store.search("green square", k=1)[0].modality == "image"
    assert store.rebuild(reembed=True)["consistent"]  # the copied media re-embed


# --- item 9: a corrupt snapshot is rebuilt once; bad --image input before any model ------------

def test_corrupt_snapshot_is_rebuilt_once_by_read_only_opens(tmp_path, caplog, monkeypatch):
    s = MemoryStore(tmp_path, FakeEmbedder())
    s.add_texts([f"memory {i}" for i in range(30)])
    s.close()  # snapshot at seq 30, log pruned
    s = MemoryStore(tmp_path, FakeEmbedder())
    s.add_text("memory 30")  # a logged change past the snapshot
    del s  # no close: no new snapshot
    (snap,) = tmp_path.glob("index-*.faiss")
    snap.write_bytes(b"\x00garbage")
    db = sqlite3.connect(tmp_path / "memory.sqlite")
    log_before = db.execute("SELECT * FROM changes").fetchall()
    rebuilds = []
    real = MemoryStore._rebuild_index
    monkeypatch.setattr(MemoryStore, "_rebuild_index", lambda self: (rebuilds.append(1), real(self))[1])
    with caplog.at_level(logging.WARNING):
        r1 = MemoryStore(tmp_path, FakeEmbedder(), readonly=True)
    assert len(rebuilds) == 1 and "rebuilding" in caplog.text
    assert r1.search("memory 7", k=1)[0].text == "memory 7"
    caplog.clear()
    for _ in range(3):
        r = MemoryStore(tmp_path, FakeEmbedder(), readonly=True)
        assert r.stats()["consistent"] and r.index.ntotal == 31
        r.close()
    assert len(rebuilds) == 1 and "rebuilding" not in caplog.text  # loaded from the new snapshot
    assert db.execute("SELECT * FROM changes").fetchall() == log_before  # SQLite, the truth, untouched
    assert log_before and db.execute("SELECT count(*) FROM items").fetchone()[0] == 31
    assert not snap.exists() or snap.read_bytes() != b"\x00garbage"


def test_rebuild_is_not_persisted_while_a_writer_holds_the_lock(tmp_path):
    s = MemoryStore(tmp_path, FakeEmbedder())
    s.add_texts(["a", "b", "c"])
    s.close()
    for f in tmp_path.glob("index-*.faiss"):
        f.unlink()
    from filelock import FileLock

    with FileLock(str(tmp_path / "writer.lock")):
        r = MemoryStore(tmp_path, FakeEmbedder(), readonly=True)
        assert r.index.ntotal == 3 and not list(tmp_path.glob("index-*.faiss"))


@pytest.mark.parametrize("kind", ["text", "bomb", "sparse", "missing"])
def test_cli_search_by_a_bad_image_fails_before_any_model_loads(tmp_path, monkeypatch, kind):
    MemoryStore(tmp_path / "mem", FakeEmbedder(space="default")).add_text("hello")
    loaded = []
    monkeypatch.setattr(memory_cli, "make_embedder", lambda spec: loaded.append(spec) or FakeEmbedder(space="default"))
    files = {"text": lambda p: text_as_png(p), "bomb": bomb_png, "sparse": sparse_png, "missing": lambda p: p}
    img = files[kind](tmp_path / "q.png")
    for cmd in (["search", "--image", str(img)], ["add", "caption", "--image", str(img)]):
        r = CliRunner().invoke(app, ["memory", *cmd, "--path", str(tmp_path / "mem")])
        assert r.exit_code != 0 and loaded == [], (cmd, r.output)
        if kind == "missing":
            assert r.exit_code == 2 and "no such file" in r.output
        else:
            assert isinstance(r.exception, UserError), r.exception
            assert ("limit" in str(r.exception)) == (kind in ("bomb", "sparse")), str(r.exception)


# --- item 10b: memory scoped per namespace -----------------------------------------------------

@pytest.fixture()
def reg():
    return ToolRegistry([remember, search_memory])


def test_tools_never_see_another_sessions_memories(tmp_path, reg):
    mem = MemoryStore(tmp_path / "mem", FakeEmbedder())
    art = ArtifactStore(tmp_path / "art", "x")
    alice = ToolContext(artifacts=art, memory=mem, session="alice-1")
    bob = ToolContext(artifacts=art, memory=mem, session="bob-1")
    assert reg.call("remember", {"text": "my bank pin is 4321"}, alice).ok
    img = art.add_image(Image.new("RGB", (8, 8), (0, 0, 255)))
    assert reg.call("remember", {"image": img.id, "text": "alice's passport"}, alice).ok
    assert reg.call("search_memory", {"query": "bank pin"}, bob).output["hits"] == []
    assert reg.call("search_memory", {"image": img.id}, bob).output["hits"] == []
    hits = reg.call("search_memory", {"query": "bank pin"}, alice).output["hits"]
    assert hits[0]["text"] == "my bank pin is 4321"
    assert {i.namespace for i in [mem.get(h["id"]) for h in hits]} == {"alice-1"}
    props = reg.get("search_memory").schema()["function"]["parameters"]["properties"]
    assert set(props) == {"query", "image", "k", "modality", "tags"}  # no widening argument for the model


def test_a_scoped_store_is_shared_by_its_sessions_and_nobody_else(tmp_path, reg):
    MemoryStore(tmp_path / "mem", FakeEmbedder()).add_text("added with the cli: the spare key is under the pot")
    art = ArtifactStore(tmp_path / "art", "x")
    alice = MemoryStore(tmp_path / "mem", FakeEmbedder(), namespace="alice")
    bob = MemoryStore(tmp_path / "mem", FakeEmbedder(), namespace="bob")
    shared = MemoryStore(tmp_path / "mem", FakeEmbedder(), namespace="default")
    assert reg.call("remember", {"text": "alice likes green tea"}, ToolContext(artifacts=art, memory=alice, session="s1")).ok
    found = reg.call("search_memory", {"query": "green tea"}, ToolContext(artifacts=art, memory=alice, session="s2")).output["hits"]
    assert [h["text"] for h in found] == ["alice likes green tea"]  # another session of alice's
    assert reg.call("search_memory", {"query": "green tea"}, ToolContext(artifacts=art, memory=bob, session="s1")).output["hits"] == []
    key = reg.call("search_memory", {"query": "spare key"}, ToolContext(artifacts=art, memory=shared, session="s9")).output["hits"]
    assert [h["text"] for h in key] == ["added with the cli: the spare key is under the pot"]
    tea_id = found[0]["id"]
    with pytest.raises(KeyError):
        bob.get(tea_id)
    assert bob.delete([tea_id]) == [] and alice.get(tea_id).namespace == "alice"
    with pytest.raises(NamespaceError):
        bob.search("tea", filters={"namespace": "alice"})
    with pytest.raises(NamespaceError):
        bob.add_text("x", namespace="alice")
    everything = MemoryStore(tmp_path / "mem", FakeEmbedder())  # unscoped: the owner (CLI) sees all
    assert len(everything.search("tea key", k=10)) == 2
    assert [h.text for h in everything.search("tea", k=10, filters={"namespace": "alice"})] == ["alice likes green tea"]
    assert everything.stats()["namespaces"] == 2


def test_cli_namespace_option(tmp_path, monkeypatch):
    monkeypatch.setattr(memory_cli, "make_embedder", lambda spec: FakeEmbedder())
    home = ["--path", str(tmp_path / "mem")]

    def run(*args):
        return CliRunner().invoke(app, ["memory", *args, *home])

    assert run("add", "alice's note about tulips", "--namespace", "alice").exit_code == 0
    assert run("search", "tulips", "--namespace", "bob", "--json").output.strip() == "[]"
    assert "tulips" in run("search", "tulips", "--namespace", "alice").output
    assert "tulips" in run("search", "tulips").output


def _old_schema_store(path: Path) -> None:
    """A store as the version before namespaces wrote it (no `namespace` column)."""
    s = MemoryStore(path, FakeEmbedder())
    s.add_texts(["an old memory about boats", "another about trains"])
    s.close()
    db = sqlite3.connect(path / "memory.sqlite")
    db.execute("DROP INDEX items_by_namespace")
    db.execute("ALTER TABLE items DROP COLUMN namespace")
    db.commit()
    db.close()


def test_old_stores_stay_readable_and_migrate_on_the_first_write(tmp_path):
    _old_schema_store(tmp_path)
    ro = MemoryStore(tmp_path, FakeEmbedder(), readonly=True)
    assert not ro.db.has_namespace
    hit = ro.search("boats", k=1)[0]
    assert hit.text == "an old memory about boats" and hit.namespace == "default"
    assert len(ro.search("boats", filters={"namespace": "default"})) == 2
    assert ro.search("boats", filters={"namespace": "alice"}) == []
    assert MemoryStore(tmp_path, FakeEmbedder(), readonly=True, namespace="alice").search("boats") == []
    ro.export(tmp_path / "exp")
    rw = MemoryStore(tmp_path, FakeEmbedder())  # migrates
    assert rw.db.has_namespace and {rw.get(i).namespace for i in (1, 2)} == {"default"}
    rw.add_text("a new one", namespace="alice")
    assert [h.text for h in rw.search("new", filters={"namespace": "alice"})] == ["a new one"]
    assert ro.search("boats", k=1)[0].text == "an old memory about boats"  # the old reader still reads
    assert MemoryStore(tmp_path / "imp", FakeEmbedder()).import_(tmp_path / "exp") == [1, 2]


def test_export_import_keeps_namespaces_and_a_scoped_import_takes_its_own(tmp_path):
    s = MemoryStore(tmp_path / "a", FakeEmbedder())
    s.add_text("for alice", namespace="alice")
    s.add_text("for everyone")
    s.export(tmp_path / "exp")
    t = MemoryStore(tmp_path / "b", FakeEmbedder())
    t.import_(tmp_path / "exp")
    assert sorted(t.get(i).namespace for i in (1, 2)) == ["alice", "default"]
    u = MemoryStore(tmp_path / "c", FakeEmbedder(), namespace="carol")
    u.import_(tmp_path / "exp")
    assert {u.get(i).namespace for i in (1, 2)} == {"carol"}
    MemoryStore(tmp_path / "a", FakeEmbedder(), namespace="alice").export(tmp_path / "only-alice")
    assert [r["text"] for r in read_items(tmp_path / "only-alice")] == ["for alice"]
    assert np.load(tmp_path / "only-alice" / "vectors.npy").shape == (1, 32)
