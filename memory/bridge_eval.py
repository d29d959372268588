"""How well the image bridge retrieves images from text: a labeled set and recall@k.

The set: photos that ship with scikit-image and scikit-learn, plus scenes drawn with PIL (signs
with text, shapes, a chart). Each image has natural-language queries written without looking
at the bridge's labels. Metrics per query (one relevant image each): recall@1, recall@5, MRR,
beside the random baseline (k / N). Needs the `data` extra (scikit-image, scikit-learn).
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)


@dataclass
class LabeledImage:
    name: str
    image: Image.Image
    queries: list[str]
    kind: str = "photo"  # photo | drawn-text | drawn-shape


PHOTOS: dict[str, list[str]] = {
    "astronaut": ["an astronaut in a space suit", "a woman in front of the American flag"],
    "camera": ["a man with a camera on a tripod"],
    "chelsea": ["a photo of a cat", "a ginger cat"],
    "coffee": ["a cup of coffee"],
    "rocket": ["a rocket on the launch pad"],
    "page": ["a scanned book page about image segmentation"],
    "horse": ["the silhouette of a horse"],
    "moon": ["the surface of the moon with craters"],
    "hubble_deep_field": ["galaxies in deep space"],
    "immunohistochemistry": ["stained cells under a microscope"],
    "coins": ["old coins"],
    "clock": ["a clock"],
    "brick": ["a brick wall"],
    "stereo_motorcycle": ["a motorcycle"],
    "retina": ["a photograph of the retina of an eye"],
    "colorwheel": ["a color wheel"],
    "china": ["a Chinese temple"],
    "flower": ["a close-up of a flower"],
}

SIGNS: dict[str, tuple[str, str, tuple[int, int, int], list[str]]] = {
    # name: (text, shape, colour, queries)
    "stop_sign": ("STOP", "octagon", (200, 20, 20), ["a stop sign"]),
    "exit_sign": ("EXIT", "rect", (20, 140, 40), ["an emergency exit sign"]),
    "open_sign": ("OPEN 24 HOURS", "rect", (30, 30, 30), ["a shop that is open day and night"]),
    "parking_sign": ("NO PARKING", "rect", (240, 240, 240), ["parking is not allowed here"]),
    "sale_banner": ("SALE 50% OFF", "rect", (250, 200, 0), ["a discount sale banner"]),
    "street_sign": ("MAIN STREET", "rect", (20, 60, 160), ["a street name sign"]),
}

SHAPES: dict[str, list[str]] = {
    "red_circle": ["a red circle"],
    "blue_square": ["a blue square"],
    "bar_chart": ["a bar chart"],
    "smiley": ["a smiley face"],
}


def labeled_images(names: list[str] | None = None) -> list[LabeledImage]:
    """The evaluation set (or the named subset of it)."""
    out = [LabeledImage(n, _photo(n), q) for n, q in PHOTOS.items() if names is None or n in names]
    out += [LabeledImage(n, _sign(*spec[:3]), spec[3], "drawn-text") for n, spec in SIGNS.items() if names is None or n in names]
    out += [LabeledImage(n, _shape(n), q, "drawn-shape") for n, q in SHAPES.items() if names is None or n in names]
    return out


def _photo(name: str) -> Image.Image:
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(f"{name}.jpg"))
    import skimage.data

    arr = getattr(skimage.data, name)()
    arr = arr[0] if isinstance(arr, tuple) else arr  # stereo_motorcycle -> (left, right, disparity)
    if arr.dtype == bool:
        arr = (~arr * 255).astype(np.uint8) if name == "horse" else arr.astype(np.uint8) * 255
    return Image.fromarray(arr).convert("RGB")


def _font(size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"), size)


def _sign(text: str, shape: str, colour: tuple[int, int, int]) -> Image.Image:
    im = Image.new("RGB", (480, 320), (150, 190, 225))  # sky
    d = ImageDraw.Draw(im)
    d.rectangle([232, 200, 248, 320], fill=(110, 110, 110))  # post
    if shape == "octagon":
        d.regular_polygon((240, 130, 110), 8, rotation=22.5, fill=colour, outline="white", width=6)
    else:
        d.rounded_rectangle([30, 60, 450, 210], 12, fill=colour, outline="white", width=6)
    ink = (0, 0, 0) if sum(colour) > 500 else (255, 255, 255)
    font = _font(64 if len(text) < 8 else 44)
    d.text((240, 135), text, fill=ink, font=font, anchor="mm")
    return im


def _shape(name: str) -> Image.Image:
    im = Image.new("RGB", (320, 320), "white")
    d = ImageDraw.Draw(im)
    if name == "red_circle":
        d.ellipse([60, 60, 260, 260], fill=(220, 20, 20))
    elif name == "blue_square":
        d.rectangle([70, 70, 250, 250], fill=(20, 40, 220))
    elif name == "bar_chart":
        d.line([40, 20, 40, 280, 300, 280], fill="black", width=3)
        for i, h in enumerate([120, 200, 80, 160]):
            d.rectangle([60 + i * 60, 280 - h, 100 + i * 60, 280], fill=(70, 130, 180))
    elif name == "smiley":
        d.ellipse([40, 40, 280, 280], fill=(255, 220, 0), outline="black", width=4)
        d.ellipse([105, 110, 135, 150], fill="black")
        d.ellipse([185, 110, 215, 150], fill="black")
        d.arc([90, 120, 230, 230], 20, 160, fill="black", width=6)
    return im


@dataclass
class BridgeScore:
    variant: str
    recall_at_1: float
    recall_at_5: float
    mrr: float
    by_kind: dict[str, float] = field(default_factory=dict)  # recall@5 per image kind


def evaluate(image_vecs: np.ndarray, query_vecs: np.ndarray, targets: list[int], kinds: list[str], variant: str) -> BridgeScore:
    """image_vecs [N, D], query_vecs [Q, D] (unit rows); targets[q] = index of its image."""
    sims = query_vecs @ image_vecs.T  # [Q, N]
    ranks = np.array([int((sims[q] > sims[q, t]).sum()) for q, t in enumerate(targets)])  # 0 = first
    by_kind = {k: float(np.mean([r < 5 for r, kk in zip(ranks, kinds) if kk == k])) for k in sorted(set(kinds))}
    return BridgeScore(variant, float(np.mean(ranks < 1)), float(np.mean(ranks < 5)), float(np.mean(1.0 / (ranks + 1))), by_kind)


def random_baseline(n_images: int, targets: list[int], kinds: list[str]) -> BridgeScore:
    """Expected scores of a random ranking (exact, not sampled)."""
    mrr = statistics.fmean(1.0 / r for r in range(1, n_images + 1))
    r5 = min(5, n_images) / n_images
    return BridgeScore("random", 1 / n_images, r5, mrr, {k: r5 for k in sorted(set(kinds))})


def run_bridge(threads: int = 1) -> tuple[list[BridgeScore], int, int]:
    """Scores of the embedded bridge and its ablations on the whole set; (scores, N images, Q queries)."""
    import torch

    from mmagent.memory.embedders import load_text_embedder
    from mmagent.memory.image_bridge import BridgeWeights, ImageBridge, OcrReader, efficientnet_classifier

    torch.set_num_threads(threads)
    data = labeled_images()
    images = [d.image for d in data]
    text = load_text_embedder()
    labels = efficientnet_classifier()(images)  # computed once, shared by the variants
    ocr = OcrReader()
    found = [ocr(im) for im in images]
    queries = [(q, i, d.kind) for i, d in enumerate(data) for q in d.queries]
    qv = text.embed_texts([q for q, _, _ in queries])
    targets, kinds = [t for _, t, _ in queries], [k for _, _, k in queries]
    variants = {
        "labels only": BridgeWeights(labels=1, ocr=0, caption=0),
        "OCR only": BridgeWeights(labels=0, ocr=1, caption=0),
        "labels + OCR (default)": BridgeWeights(),
    }
    scores = [random_baseline(len(data), targets, kinds)]
    for name, w in variants.items():
        it_labels, it_found = iter(labels), iter(found)
        bridge = ImageBridge(text, lambda ims: [next(it_labels) for _ in ims], lambda im: next(it_found), w)
        vecs = bridge.embed_images(images).vectors
        scores.append(evaluate(vecs, qv, targets, kinds, name))
    return scores, len(data), len(queries)


def print_bridge(result: tuple[list[BridgeScore], int, int], threads: int) -> None:
    scores, n, q = result
    kinds = list(scores[0].by_kind)
    print(f"\n## Image bridge: text -> image retrieval ({n} images, {q} queries, one relevant image each; torch threads={threads})\n")
    print("| variant | recall@1 | recall@5 | MRR | " + " | ".join(f"R@5 {k}" for k in kinds) + " |")
    print("|---|---|---|---|" + "---|" * len(kinds))
    for s in scores:
        print(f"| {s.variant} | {s.recall_at_1:.2f} | {s.recall_at_5:.2f} | {s.mrr:.2f} | " + " | ".join(f"{s.by_kind[k]:.2f}" for k in kinds) + " |")
