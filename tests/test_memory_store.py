"""memory/store.py with a tiny deterministic embedder: operations, filters + top-k, bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from memory_fakes import FakeEmbedder
from PIL import Image

from mmagent.memory.embedders import UnsupportedContentError
from mmagent.memory.index import IndexConfig
from mmagent.memory.store import EmbedderMismatchError, MemoryStore, MemoryStoreError

WORDS = "cat dog bird fish tree car boat sun moon star rain snow hill lake road city".split()


def fill(store: MemoryStore, n: int = 60) -> list[int]:
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 3)) for _ in range(n)]
    ids = []
    for i, t in enumerate(texts):
        item = store.add_text(t, tags=["even" if i % 2 == 0 else "odd"], session=f"s{i % 3}")
        ids.append(item.id)
    return ids


def brute(store: MemoryStore, query: str, k: int, allowed: list[int]) -> list[int]:
    got, vecs = store.db.vectors(allowed, store.dim)
    q = store.embedder.embed_texts([query])[0]
    return got[np.argsort(-(vecs @ q))[:k]].tolist()


def test_add_search_get_delete_retag_update(tmp_path):
    s = MemoryStore(tmp_path, FakeEmbedder())
    a = s.add_text("the cat sat on the mat", tags=["pets"], source="user", session="s1")
    b = s.add_text("stock market news")
    img = s.add_image(Image.new("RGB", (8, 8), (250, 10, 10)), caption="a red square", artifact_id="image_1")
    au = s.add_audio(transcript="  hello from the radio  ")
    assert [h.id for h in s.search("cat mat", k=1)] == [a.id]
    assert s.search("red square", k=1)[0].id == img.id and s.get(img.id).artifact_id == "image_1"
    assert s.search(Image.new("RGB", (4, 4), (255, 0, 0)), k=1, filters={"modality": "image"})[0].id == img.id
    assert s.get(au.id).text == "hello from the radio" and s.get(au.id).modality == "audio"
    assert s.retag(a.id, add=["cute"], remove=["pets"]) == ["cute"]
    assert s.retag(a.id, replace=["x", "y"]) == ["x", "y"]
    s.update(b.id, "cat on a mat")
    assert s.get(b.id).text == "cat on a mat" and {h.id for h in s.search("cat mat", k=2)} == {a.id, b.id}
    assert s.delete([a.id, 12345]) == [a.id]
    with pytest.raises(KeyError, match=f"no memory item with id {a.id}"):
        s.get(a.id)
    assert a.id not in [h.id for h in s.search("cat mat", k=10)]
    st = s.stats()
    assert st["items"] == 3 and st["consistent"] and st["by_modality"] == {"text": 1, "image": 1, "audio": 1}
    s.close()


@pytest.mark.parametrize("brute_force_max", [4096, 0])  # exact-from-SQLite path and IDSelector path
@pytest.mark.parametrize("exact_max", [10_000, 20])  # flat and IVF
def test_filters_combine_correctly_with_top_k(tmp_path, brute_force_max, exact_max):
    s = MemoryStore(tmp_path, FakeEmbedder(), brute_force_max=brute_force_max, config=IndexConfig(exact_max=exact_max, nprobe=1))
    fill(s, 60)
    assert s.index.kind == ("ivf" if exact_max == 20 else "flat")
    for filters in ({"tags_any": ["odd"]}, {"session": "s1", "tags_all": ["even"]}, {"modality": ["text"], "session": "s2"}):
        allowed = s.db.filter_ids(s_filter(filters)).tolist()
        hits = s.search("cat dog lake", k=5, filters=filters)
        assert len(hits) == min(5, len(allowed))
        assert [h.id for h in hits] == brute(s, "cat dog lake", 5, allowed)
        assert all(h.score >= hits[-1].score for h in hits)
    assert s.search("cat", k=5, filters={"session": "nobody"}) == []


def s_filter(f):
    from mmagent.memory.metadata import MemoryFilter

    return MemoryFilter.parse(f)


def test_bad_input_gets_clear_errors(tmp_path):
    s = MemoryStore(tmp_path, FakeEmbedder())
    s.add_text("something")
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            s.search("x", k=k)
    with pytest.raises(UnsupportedContentError, match="empty"):
        s.add_text("   ")
    with pytest.raises(UnsupportedContentError, match="cannot search by a dict"):
        s.search({"q": 1})
    with pytest.raises(ValueError, match="malformed memory filter"):
        s.search("x", filters={"modality": "smell"})
    with pytest.raises(FileNotFoundError, match="no image file"):
        s.add_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UnsupportedContentError, match="not a readable image"):
        s.add_image(tmp_path / "bad.png")
    with pytest.raises(UnsupportedContentError, match="transcript"):
        s.add_audio(transcript="")
    with pytest.raises(ValueError, match=r"vectors must be \[N, 32\]"):
        s.add_vectors(np.ones((2, 8)))
    with pytest.raises(ValueError, match="tags must be non-empty"):
        s.add_text("ok", tags=[""])
    assert s.stats()["items"] == 1  # nothing was lost or half-added


def test_switching_embedders_is_refused_then_reembedded(tmp_path):
    s = MemoryStore(tmp_path, FakeEmbedder(dim=32))
    a = s.add_text("cat and dog")
    s.add_image(Image.new("RGB", (8, 8), (0, 0, 255)), caption="blue sky")
    s.close()
    with pytest.raises(EmbedderMismatchError, match=r"32-d vectors of space 'fake-words'.*16-d.*reembed=True"):
        MemoryStore(tmp_path, FakeEmbedder(dim=16, space="other"))
    s2 = MemoryStore(tmp_path, FakeEmbedder(dim=16, space="other"), reembed=True)
    assert s2.dim == 16 and s2.space == "other" and s2.stats()["consistent"]
    assert s2.search("cat dog", k=1)[0].id == a.id
    assert s2.search("blue sky", k=1)[0].modality == "image"  # re-embedded from the stored pixels + caption


def test_reembedding_reports_progress_once_per_item(tmp_path):
    s = MemoryStore(tmp_path, FakeEmbedder(dim=32))
    s.add_texts(["one", "two", "three"])
    s.close()
    seen = []
    s2 = MemoryStore(tmp_path, FakeEmbedder(dim=16, space="other"), reembed=True, on_reembed=lambda d, n: seen.append((d, n)))
    assert s2.reembedded and seen == [(1, 3), (2, 3), (3, 3)]
    again = []
    s2.rebuild(reembed=True, on_item=lambda d, n: again.append(d))  # same space: re-embeds on request
    assert again == [1, 2, 3] and s2.stats()["consistent"]


def test_missing_or_corrupt_index_is_rebuilt_from_sqlite(tmp_path, caplog):
    s = MemoryStore(tmp_path, FakeEmbedder())
    ids = fill(s, 30)
    s.close()
    (snap,) = tmp_path.glob("index-*.faiss")
    snap.write_bytes(b"\x00garbage")
    leftover = tmp_path / ".index-000000000099.faiss.tmp-4242"  # a snapshot write killed midway
    leftover.write_bytes(b"half")
    with caplog.at_level(logging.WARNING):
        s2 = MemoryStore(tmp_path, FakeEmbedder())
    assert "rebuilt from SQLite" in caplog.text or "rebuilding" in caplog.text
    assert sorted(s2.index.ids()) == ids
    s2.checkpoint()
    assert not leftover.exists()  # dead temp files go at the next snapshot
    s2.close()
    for f in tmp_path.glob("index-*.faiss"):
        f.unlink()
    s3 = MemoryStore(tmp_path, FakeEmbedder())
    assert sorted(s3.index.ids()) == ids and s3.stats()["consistent"]


def test_reopen_replays_changes_past_the_snapshot(tmp_path):
    s = MemoryStore(tmp_path, FakeEmbedder(), checkpoint_every=10_000, config=IndexConfig(exact_max=5))
    ids = fill(s, 20)  # crosses exact_max: IVF trained and snapshotted at once
    snap_seq = s.saved_seq
    s.delete(ids[:3])
    new = s.add_text("a brand new memory about boats")
    assert s.saved_seq == snap_seq  # no snapshot since
    del s  # no close(): as if the process died
    s2 = MemoryStore(tmp_path, FakeEmbedder(), checkpoint_every=10_000, config=IndexConfig(exact_max=5))
    assert s2.index.kind == "ivf"
    assert sorted(s2.index.ids()) == sorted(ids[3:] + [new.id])
    assert s2.search("brand new boats", k=1)[0].id == new.id


def test_readonly_refuses_writes(tmp_path):
    with pytest.raises(FileNotFoundError, match="no memory store"):
        MemoryStore(tmp_path / "none", readonly=True)
    MemoryStore(tmp_path, FakeEmbedder()).add_text("x")
    r = MemoryStore(tmp_path, FakeEmbedder(), readonly=True)
    assert r.search("x", k=1)[0].text == "x"
    with pytest.raises(MemoryStoreError, match="read-only"):
        r.add_text("y")


def test_export_import_roundtrip(tmp_path):
    s = MemoryStore(tmp_path / "a", FakeEmbedder())
    fill(s, 10)
    s.add_image(Image.new("RGB", (8, 8), (0, 255, 0)), caption="green field", tags=["photo"])
    assert s.export(tmp_path / "exp") == 11
    with pytest.raises(FileExistsError, match="not empty"):
        s.export(tmp_path / "exp")
    t = MemoryStore(tmp_path / "b", FakeEmbedder())
    new_ids = t.import_(tmp_path / "exp")
    assert len(new_ids) == 11 and t.stats()["items"] == 11
    hit = t.search("green field", k=1)[0]
    assert hit.modality == "image" and hit.tags == ["photo"]
    assert (tmp_path / "exp" / "vectors.npy").is_file() and not list((tmp_path / "exp").glob("*.pkl"))
    other = MemoryStore(tmp_path / "c", FakeEmbedder(dim=16, space="other"))
    other.add_text("x")
    with pytest.raises(ValueError, match="space 'fake-words'.*rebuild --reembed"):
        other.import_(tmp_path / "exp")


def test_rebuild_and_compact(tmp_path):
    s = MemoryStore(tmp_path, FakeEmbedder(), config=IndexConfig(exact_max=10))
    ids = fill(s, 40)
    s.delete(ids[:20])
    st = s.compact()
    assert st["items"] == 20 and st["consistent"] and st["index"]["kind"] == "ivf"
    assert len(list(tmp_path.glob("index-*.faiss"))) == 1
