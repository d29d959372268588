"""The artifact store: content addressing, ids, persistence across processes, limits, EXIF."""

from __future__ import annotations

import io
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmagent.media.artifacts import ArtifactError, ArtifactLimits, ArtifactStore
from mmagent.media.images import ImageLimits


def png(color=(255, 0, 0), size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def wav(seconds=0.1, rate=8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(np.zeros(int(seconds * rate), np.int16).tobytes())
    return buf.getvalue()


@pytest.fixture()
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "art", session="s1")


def test_ids_are_per_kind_and_sequential(store):
    assert store.add_image(png((1, 0, 0))).id == "image_1"
    assert store.add_image(png((2, 0, 0))).id == "image_2"
    assert store.add_audio(wav()).id == "audio_1"
    assert store.add_text("hello").id == "text_1"
    assert [a.id for a in store.list()] == ["audio_1", "image_1", "image_2", "text_1"]
    assert [a.id for a in store.list("image")] == ["image_1", "image_2"]


def test_dedup_same_bytes_same_id_one_blob(store, tmp_path):
    a, b = store.add_image(png()), store.add_image(png())
    assert a.id == b.id and a.sha256 == b.sha256
    other = ArtifactStore(tmp_path / "art", session="s2")
    c = other.add_image(png())
    assert c.id == "image_1" and c.sha256 == a.sha256
    blobs = [p for p in (tmp_path / "art" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1 and not any(p.name.startswith(".tmp") for p in blobs)


def test_sessions_are_isolated(store, tmp_path):
    store.add_image(png())
    other = ArtifactStore(tmp_path / "art", session="s2")
    with pytest.raises(ArtifactError, match="unknown artifact id 'image_1' in session 's2'"):
        other.get("image_1")


def test_reopened_in_a_new_process_sees_same_ids(store, tmp_path):
    store.add_image(png((9, 9, 9)))
    store.add_text("persist me")
    code = (
        "from mmagent.media.artifacts import ArtifactStore;"
        f"s = ArtifactStore({str(tmp_path / 'art')!r}, 's1');"
        "print(s.read_text('text_1'), s.load_image('image_1').getpixel((0, 0)), s.add_image(__import__('PIL.Image').Image.new('RGB', (2, 2))).id)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "persist me (9, 9, 9) image_2"
    assert store.get("image_2").meta["width"] == 2  # and this process sees what the other added


def test_pil_image_input_and_meta(store):
    art = store.add_image(Image.new("L", (5, 4), 128), meta={"source": "test"})
    assert art.mime == "image/png" and art.meta == {"width": 5, "height": 4, "format": "PNG", "source": "test"}
    im = store.load_image(art.id)
    assert im.mode == "RGB" and im.size == (5, 4)


def test_unknown_id_lists_known(store):
    store.add_image(png())
    with pytest.raises(ArtifactError, match="known ids: image_1"):
        store.get("image_7")


def test_wrong_kind(store):
    store.add_text("hi")
    with pytest.raises(ArtifactError, match="text_1 is a text artifact, not an image"):
        store.load_image("text_1")
    with pytest.raises(ArtifactError, match="not an audio"):
        store.audio_path("text_1")


def test_undecodable_and_disallowed_images_are_refused_and_nothing_written(store, tmp_path):
    with pytest.raises(ArtifactError, match="not a recognised image"):
        store.add_image(b"definitely not an image")
    with pytest.raises(ArtifactError, match="truncated or corrupt"):
        noisy = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(noisy, format="PNG")
        store.add_image(noisy.getvalue()[: len(noisy.getvalue()) // 2])
    ico = io.BytesIO()
    Image.new("RGB", (16, 16)).save(ico, format="ICO")
    with pytest.raises(ArtifactError, match="format ICO is not allowed"):
        store.add_image(ico.getvalue())
    with pytest.raises(ArtifactError, match="no such file"):
        store.add_image(tmp_path / "missing.png")
    assert store.list() == []
    assert not [p for p in (tmp_path / "art" / "blobs").rglob("*") if p.is_file()]


def test_decompression_bomb_guard(tmp_path):
    # A 5000x5000 PNG of one colour compresses to a few KB but would decode to 75 MB.
    buf = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buf, format="PNG")
    assert len(buf.getvalue()) < 10_000
    small = ArtifactStore(tmp_path / "a", "s", ArtifactLimits(image=ImageLimits(max_pixels=1_000_000)))
    with pytest.raises(ArtifactError, match="decompression-bomb guard"):
        small.add_image(buf.getvalue())


def test_byte_limit(tmp_path):
    s = ArtifactStore(tmp_path / "a", "s", ArtifactLimits(image=ImageLimits(max_bytes=100), max_text_bytes=3))
    with pytest.raises(ArtifactError, match="over the limit of 100"):
        s.add_image(png(size=(64, 64)) + b"\0" * 200)
    with pytest.raises(ArtifactError, match="over the limit of 3"):
        s.add_text("four")


def test_exif_orientation_is_applied(store):
    # Stored 4 wide x 2 high, EXIF orientation 6 (rotate 90 CW to display): upright it is 2x4.
    im = Image.new("RGB", (4, 2), (0, 0, 255))
    im.putpixel((0, 0), (255, 0, 0))  # red at top-left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, format="PNG", exif=exif)  # PNG: lossless, so pixel values are exact
    art = store.add_image(buf.getvalue())
    assert (art.meta["width"], art.meta["height"]) == (2, 4)
    up = store.load_image(art.id)
    assert up.size == (2, 4) and up.getpixel((1, 0)) == (255, 0, 0)  # top-left went to top-right


def test_transparent_images_composite_on_white(store):
    im = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert store.load_image(store.add_image(im).id).getpixel((0, 0)) == (255, 255, 255)


def test_audio_checks(store):
    art = store.add_audio(wav(0.5, 8000))
    assert art.meta == {"sample_rate": 8000, "channels": 1, "duration_s": 0.5} and art.mime == "audio/wav"
    assert store.audio_path(art.id).read_bytes()[:4] == b"RIFF"
    with pytest.raises(ArtifactError, match="not WAV, FLAC, OGG or MP3"):
        store.add_audio(b"\x00" * 100)
    with pytest.raises(ArtifactError, match="WAV header is not valid"):
        store.add_audio(b"RIFF" + b"\x00" * 40)


def test_bad_session_name(tmp_path):
    with pytest.raises(ArtifactError, match="session name"):
        ArtifactStore(tmp_path, "../escape")


def test_open_uses_settings_artifact_root(tmp_path, monkeypatch):
    from mmagent.config import get_settings

    monkeypatch.setenv("MMAGENT_ARTIFACT_ROOT", str(tmp_path / "configured"))
    get_settings.cache_clear()
    s = ArtifactStore.open("x")
    assert s.root == tmp_path / "configured" and s.add_text("a").id == "text_1"


def test_concurrent_adds_from_threads_get_unique_ids(store):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: store.add_image(png((i, 0, 0))).id, range(16)))
    assert sorted(ids, key=lambda s: int(s.split("_")[1])) == [f"image_{i}" for i in range(1, 17)]
    assert len(store.list("image")) == 16


def test_concurrent_adds_from_processes_get_unique_ids(tmp_path):
    code = (
        "import sys; from PIL import Image; from mmagent.media.artifacts import ArtifactStore;"
        "s = ArtifactStore(sys.argv[1], 'shared'); k = int(sys.argv[2]);"
        "print(' '.join(s.add_image(Image.new('RGB', (2, 2), (k, i, 0))).id for i in range(10)))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "art"), str(k)], stdout=subprocess.PIPE, text=True) for k in range(3)]
    ids = [i for p in procs for i in p.communicate()[0].split()]
    assert len(ids) == len(set(ids)) == 30


def test_failed_blob_write_leaves_nothing(store, tmp_path, monkeypatch):
    import mmagent.atomic as atomic_mod

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_mod.os, "replace", disk_full)  # fault injection at the blob's rename
    with pytest.raises(OSError, match="No space left"):
        store.add_image(png())
    monkeypatch.undo()
    assert store.list() == []
    assert not [p for p in (tmp_path / "art" / "blobs").rglob("*") if p.is_file()]  # no temp file either
    assert store.add_image(png()).id == "image_1"  # and the store still works


def test_jpeg_exif_rotation_180(store):
    im = Image.new("RGB", (40, 20), (255, 255, 255))
    im.paste((0, 0, 0), (0, 0, 10, 10))  # dark block top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180 to display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif, quality=95)
    up = store.load_image(store.add_image(buf.getvalue()).id)
    assert up.size == (40, 20)
    assert sum(up.getpixel((35, 15))) < 60 and sum(up.getpixel((5, 5))) > 700  # the block is now bottom-right


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "BMP", "TIFF"])
def test_other_allowed_formats(store, fmt):
    buf = io.BytesIO()
    Image.new("RGB", (6, 4), (10, 200, 30)).save(buf, format=fmt)
    art = store.add_image(buf.getvalue())
    assert art.meta["format"] == fmt and store.load_image(art.id).size == (6, 4)


def test_an_image_is_decoded_once_and_each_caller_gets_its_own_copy(tmp_path, monkeypatch):
    from PIL import ImageDraw

    from mmagent.media import artifacts as A

    store = A.ArtifactStore(tmp_path / "art")
    art = store.add_image(Image.new("RGB", (32, 24), (10, 20, 30)))
    calls = []
    real = A.decode_image
    monkeypatch.setattr(A, "decode_image", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = store.load_image(art.id)
    ImageDraw.Draw(first).rectangle((0, 0, 31, 23), fill=(255, 0, 0))  # a tool drawing on its copy
    second = store.load_image(art.id)
    assert len(calls) == 1 and second.getpixel((5, 5)) == (10, 20, 30)
