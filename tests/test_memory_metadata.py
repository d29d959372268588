"""memory/metadata.py: filters, the change log, vectors as float32 blobs."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mmagent.memory.metadata import MemoryFilter, MetadataDB, NewItem


@pytest.fixture()
def db(tmp_path):
    d = MetadataDB(tmp_path / "m.sqlite")
    vecs = np.eye(4, dtype=np.float32)
    now = time.time()
    d.insert(
        [
            NewItem("text", "a", session="s1", tags=["x", "y"], created_at=now - 100),
            NewItem("image", "b", session="s1", tags=["x"], created_at=now - 50),
            NewItem("audio", "c", session="s2", tags=["y"], source="mic", created_at=now - 10),
            NewItem("text", "d", session="s2", created_at=now),
        ],
        vecs,
    )
    yield d, now
    d.close()


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"modality": "text"}, [1, 4]),
        ({"modality": ["image", "audio"]}, [2, 3]),
        ({"tags_any": ["x", "y"]}, [1, 2, 3]),
        ({"tags_all": ["x", "y"]}, [1]),
        ({"session": "s2"}, [3, 4]),
        ({"source": "mic"}, [3]),
        ({"session": "s1", "modality": "image", "tags_any": ["x"]}, [2]),
        ({"tags_all": ["y"], "modality": "text"}, [1]),
    ],
)
def test_filters_combine_with_and(db, filters, expected):
    d, _ = db
    assert d.filter_ids(MemoryFilter.parse(filters)).tolist() == expected


def test_time_range(db):
    d, now = db
    assert d.filter_ids(MemoryFilter.parse({"since": now - 60, "until": now})).tolist() == [2, 3]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"modality": "video"}, "modality"),
        ({"tag": ["x"]}, "tag"),
        ({"since": "yesterday-ish"}, "since"),
        ({"since": 10, "until": 5}, "empty time range"),
        ("modality=text", "must be a dict"),
    ],
)
def test_malformed_filters_say_what_is_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        MemoryFilter.parse(bad)


def test_change_log_vectors_and_prune(db):
    d, _ = db
    assert [c[2] for c in d.changes_since(0)] == ["add"] * 4
    assert d.delete([2, 99]) == [2]
    d.update_vectors([1], np.full((1, 4), 0.5, np.float32), ["a2"], [None])
    assert [c[1:] for c in d.changes_since(4)] == [(2, "delete"), (1, "update")]
    ids, vecs = d.vectors([1, 2, 3], 4)
    assert ids.tolist() == [1, 3] and vecs.dtype == np.float32 and vecs[0].tolist() == [0.5] * 4
    assert d.get([1])[0].text == "a2"
    d.prune_changes(d.last_seq())
    assert d.changes_since(0) == [] and d.changes_floor() == 6
    assert d.insert([NewItem("text", "e")], np.ones((1, 4), np.float32)) == [5]  # ids never reused


def test_insert_is_all_or_nothing(db):
    d, _ = db
    with pytest.raises(Exception):
        d.insert([NewItem("text", "ok"), NewItem("video", "bad")], np.ones((2, 4), np.float32))
    assert d.count() == 4 and d.last_seq() == 4
