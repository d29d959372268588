"""Tool latency: cold (first call, model load included) and warm (median of N) for every embedded
tool through `ToolRegistry.call` (validation, artifact checks, worker thread, timeout). Side by side
in the same process: read_text with rapidocr's default detector sizing (baseline: shorter side
scaled to 736 px) and with `max_side=960` (only shrink), on a drawn sign and on skimage's `page`;
detect_faces on a 2048x2048 photo at full size (baseline) and shrunk to 1024 first (the default);
and the calling path's own cost, `registry.call` vs a direct `tool.invoke` of a no-op tool.

    MMAGENT_CACHE_DIR=~/.cache/mmagent-test-models .venv/bin/python bench/tools.py [--n 5] [--threads 1]

Inputs are made here: text drawn with DejaVuSans (read_text), the skimage astronaut (faces,
crop/resize/draw), chelsea (classify), speech from piper if the `speak` extra is installed else
espeak-ng else a tone (transcribe_audio), the embedded digits generator if trained.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import wave
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _speech(ctx) -> tuple[str, str]:
    """An audio id of a spoken sentence, and where the speech came from."""
    from mmagent.tools.audio import Speak, default_voice
    from mmagent.tools.registry import ToolRegistry

    text = "please open the door and turn on the lights in the kitchen"
    if Speak.available() and default_voice() is not None:
        r = ToolRegistry([Speak()]).call("speak", {"text": text}, ctx)
        return r.output["audio"], "piper joe (22.05 kHz)"
    if shutil.which("espeak-ng"):
        path = Path(tempfile.mkdtemp()) / "s.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True)
        return ctx.artifacts.add_audio(path).id, "espeak-ng (22.05 kHz)"
    import numpy as np

    x = 0.3 * np.sin(2 * np.pi * 220 * np.arange(3 * 22050) / 22050)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(22050)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return ctx.artifacts.add_audio(buf.getvalue()).id, "tone (22.05 kHz)"


def _inputs(ctx) -> dict[str, tuple[dict, str]]:
    import matplotlib
    import skimage.data
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(matplotlib.get_data_path() + "/fonts/ttf/DejaVuSans.ttf", 36)
    sign = Image.new("RGB", (640, 240), "white")
    draw = ImageDraw.Draw(sign)
    for i, line in enumerate(["Hello World", "OPEN 9 TO 5", "Exit 12"]):
        draw.text((20, 20 + 70 * i), line, font=font, fill="black")
    text_id = ctx.artifacts.add_image(sign).id
    astro = ctx.artifacts.add_image(Image.fromarray(skimage.data.astronaut())).id
    astro_big = ctx.artifacts.add_image(Image.fromarray(skimage.data.astronaut()).resize((2048, 2048), Image.Resampling.BICUBIC)).id
    cat = ctx.artifacts.add_image(Image.fromarray(skimage.data.chelsea())).id
    audio, audio_src = _speech(ctx)
    page = ctx.artifacts.add_image(Image.fromarray(skimage.data.page())).id
    face = {"x0": 177, "y0": 67, "x1": 270, "y1": 160}
    return {
        "read_text": ({"image": text_id}, "sign 640x240, 3 lines"),
        "read_text ": ({"image": page}, "skimage page 384x191"),
        "read_text max_side=960": ({"image": text_id}, "sign 640x240, 3 lines"),
        "read_text max_side=960 ": ({"image": page}, "skimage page 384x191"),
        "detect_faces": ({"image": astro}, "astronaut 512x512"),
        "detect_faces max_side=None": ({"image": astro_big}, "astronaut upscaled 2048x2048"),
        "detect_faces max_side=1024": ({"image": astro_big}, "astronaut upscaled 2048x2048"),
        "classify_image": ({"image": cat, "top_k": 5}, "chelsea 451x300"),
        "transcribe_audio": ({"audio": audio}, audio_src),
        "crop_image": ({"image": astro, "box": face}, "astronaut -> 93x93"),
        "resize_image": ({"image": astro, "width": 256}, "astronaut -> 256x256"),
        "draw_boxes": ({"image": astro, "boxes": [{**face, "label": "face", "score": 0.9}]}, "astronaut, 1 box"),
        "generate_image": ({"prompt": "a handwritten 7", "steps": 25, "seed": 0}, "digits 8x8 -> 64x64, 25 DDIM steps"),
    }


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5, help="warm calls per tool (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    a = ap.parse_args()
    os.environ["MMAGENT_THREADS"] = str(a.threads)

    import torch

    torch.set_num_threads(a.threads)
    from mmagent.tools.base import ToolContext
    from mmagent.tools.registry import ToolRegistry, default_registry

    from mmagent.config import get_settings
    from mmagent.media.artifacts import ArtifactStore
    from mmagent.model.digits_pipeline import DEFAULT_WEIGHTS

    get_settings.cache_clear()
    ctx = ToolContext(ArtifactStore(Path(tempfile.mkdtemp()) / "artifacts", "bench"))
    reg = default_registry()
    inputs = _inputs(ctx)
    from mmagent.tools.faces import DetectFaces
    from mmagent.tools.ocr import ReadText

    variants = {  # side-by-side configurations, each in its own registry
        "read_text max_side=960": ToolRegistry([ReadText(max_side=960)]),
        "detect_faces max_side=None": ToolRegistry([DetectFaces(max_side=None)]),
        "detect_faces max_side=1024": ToolRegistry([DetectFaces(max_side=1024)]),
    }
    rows = []
    for label, (args, what) in inputs.items():
        name = label.split()[0]
        if name == "generate_image" and not (DEFAULT_WEIGHTS / "model_index.json").is_file():
            rows.append((label, what, None, None, "skipped: embedded digits generator not trained yet"))
            continue
        r = variants.get(label.strip(), reg)
        t0 = time.perf_counter()
        first = r.call(name, args, ctx, timeout_s=600)
        cold = time.perf_counter() - t0
        if not first.ok:
            rows.append((label, what, cold, None, f"failed: {first.error}"))
            continue
        warm = _median_ms(lambda: r.call(name, args, ctx, timeout_s=600), a.n)
        rows.append((label, what, cold, warm, _summary(first.output)))
    print(f"\nTool latency, {a.threads} thread(s) (torch + onnxruntime), warm = median of {a.n}; {os.cpu_count()} cores visible\n")
    print("| tool | input | cold s (first call, incl. load) | warm ms (median) | result |")
    print("|---|---|---:|---:|---|")
    for label, what, cold, warm, summary in rows:
        fmt = lambda v, p=1: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
        print(f"| {label.strip()} | {what} | {fmt(cold, 2)} | {fmt(warm)} | {summary} |")
    _overhead(ctx)


def _overhead(ctx, n: int = 300) -> None:
    """What validation + artifact lookup + the worker thread cost, on a tool that does nothing."""
    from mmagent.tools.base import ImageId, tool
    from mmagent.tools.registry import ToolRegistry

    @tool
    def noop(image: ImageId, k: int = 1) -> int:
        """Does nothing.

        Args:
            image: Any image id.
            k: Any integer.
        """
        return k

    reg = ToolRegistry([noop])
    args = {"image": "image_1", "k": 3}
    validated = noop.input_model.model_validate(args)
    direct = _median_ms(lambda: noop.invoke(validated, ctx), n)
    full = _median_ms(lambda: reg.call("noop", args, ctx), n)
    bad = _median_ms(lambda: reg.call("noop", {"image": "nope"}, ctx), n)
    print(f"\nCalling-path cost (no-op tool, median of {n}): direct invoke {direct:.3f} ms | registry.call {full:.3f} ms "
          f"(validate + artifact check + worker thread) | rejected call {bad:.3f} ms")
    _png_levels()


def _png_levels(n: int = 7) -> None:
    """Writing a tool's output image: Pillow's default zlib level 6 (baseline) vs level 1 (ours)."""
    import skimage.data
    from PIL import Image

    im = Image.fromarray(skimage.data.astronaut())
    sizes = {}

    def write(level: int) -> None:
        buf = io.BytesIO()
        im.save(buf, format="PNG", compress_level=level)
        sizes[level] = buf.tell()

    base, ours = _median_ms(lambda: write(6), n), _median_ms(lambda: write(1), n)
    print(f"PNG write of a 512x512 photo (median of {n}): level 6 (Pillow default) {base:.1f} ms, {sizes[6] / 1e3:.0f} KB | "
          f"level 1 (encode_png) {ours:.1f} ms, {sizes[1] / 1e3:.0f} KB | {base / ours:.1f}x faster\n")


def _summary(out: dict) -> str:
    if "lines" in out:
        return f"{len(out['lines'])} lines: " + repr(out["text"].replace("\n", " / "))[:56]
    if "text" in out:
        return repr(out["text"])[:60]
    if "faces" in out:
        return f"{out['count']} face(s): " + ", ".join(f"{b['x1'] - b['x0']}px" for b in out["faces"])
    if "labels" in out:
        return f"{out['labels'][0]['label']} {out['labels'][0]['probability']:.2f}"
    if "image" in out:
        return f"{out['image']} {out['width']}x{out['height']}"
    return str(out)[:60]


if __name__ == "__main__":
    main()
