"""The image bridge: images into the MiniLM text space through words (no CLIP weights offline).

An image becomes three kinds of words, each embedded by the text embedder:

    labels:  EfficientNet-Lite0's ImageNet top-k (label, p) -> sum_i p_i * e(label_i) / |.|
    ocr:     the text PP-OCRv4 reads in the image     -> e(ocr text)
    caption: what the user said about it (optional)  -> e(caption)
    vector = normalize(w_labels * labels + w_ocr * ocr + w_caption * caption)   # [D]

This is zero-shot classification run backwards (cf. DeViSE, Frome et al. 2013, and ConSE,
Norouzi et al. 2014, which embed an image as the probability-weighted mean of its class-name
embeddings). It finds what ImageNet has words for and what is written in the image; it is
blind to everything else (scenes, counts, colours, relations). bench/memory.py measures it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mmagent.memory.embedding import Embedder, ImageEmbeddings, check_images, unit_rows
from PIL import Image

log = logging.getLogger(__name__)

# images -> per image [(label, probability)], best first
Classifier = Callable[[list[Image.Image]], list[list[tuple[str, float]]]]
Reader = Callable[[Image.Image], str]  # image -> text found in it ("" if none)


@dataclass
class BridgeWeights:
    labels: float = 1.0
    ocr: float = 1.0
    caption: float = 1.0


class ImageBridge:
    """An `Embedder` whose texts go to `text` and whose images go through labels + OCR + caption."""

    def __init__(self, text: Embedder, classify: Classifier, read: Reader | None = None, weights: BridgeWeights | None = None):
        self.text, self.classify, self.read = text, classify, read
        self.weights = weights or BridgeWeights()
        self.space, self.dim = text.space, text.dim  # images land in the text space
        self._label_vecs: dict[str, np.ndarray] = {}

    @classmethod
    def embedded(cls, text: Embedder, ocr: bool = True, top_k: int = 5) -> "ImageBridge":
        """The bridge over the embedded EfficientNet-Lite0 (+ PP-OCRv4 when `ocr`), each loaded on
        the first image (a store that only sees text never loads them)."""
        return cls(text, _lazy(lambda: efficientnet_classifier(top_k)), _lazy(OcrReader) if ocr else None)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.text.embed_texts(texts)

    def embed_images(self, images: Sequence[Image.Image], captions: Sequence[str | None] | None = None) -> ImageEmbeddings:
        images = check_images(images)
        captions = list(captions) if captions is not None else [None] * len(images)
        if len(captions) != len(images):
            raise ValueError(f"{len(images)} images but {len(captions)} captions")
        labels = self.classify(images)
        vecs, texts = [], []
        for im, cap, lab in zip(images, captions, labels, strict=True):
            found = self._read(im)
            vecs.append(self._combine(lab, found, cap))
            texts.append(describe(lab, found, cap))
        return ImageEmbeddings(np.stack(vecs), texts)

    def _combine(self, labels: list[tuple[str, float]], found: str, caption: str | None) -> np.ndarray:
        parts = [self.weights.labels * self._labels_vector(labels)]
        extra = [(self.weights.ocr, found), (self.weights.caption, caption)]
        texts = [(w, t.strip()) for w, t in extra if t and t.strip() and w > 0]
        if texts:
            parts += [w * v for (w, _), v in zip(texts, self.text.embed_texts([t for _, t in texts]))]
        return unit_rows(np.sum(parts, axis=0))

    def _labels_vector(self, labels: list[tuple[str, float]]) -> np.ndarray:
        """Probability-weighted mean of the label embeddings (label vectors are cached)."""
        new = [name for name, _ in labels if name not in self._label_vecs]
        if new:
            self._label_vecs.update(zip(new, self.text.embed_texts(new)))
        p = np.asarray([s for _, s in labels], np.float32)
        p = p / max(float(p.sum()), 1e-12)  # renormalize over the top-k
        return unit_rows(p @ np.stack([self._label_vecs[name] for name, _ in labels]))

    def _read(self, image: Image.Image) -> str:
        if self.read is None:
            return ""
        try:
            return self.read(image).strip()
        except Exception as err:  # noqa: BLE001 - OCR failing must not lose the memory; labels still embed it
            log.warning("OCR failed on an image (%s); embedding it without its text", err)
            return ""


def describe(labels: list[tuple[str, float]], found: str, caption: str | None) -> str:
    """The human-readable text stored with an image: caption | text read | labels."""
    parts = [caption.strip()] if caption and caption.strip() else []
    if found:
        parts.append(f"text: {' '.join(found.split())}")
    parts.append("looks like: " + ", ".join(f"{name} ({p:.2f})" for name, p in labels))
    return " | ".join(parts)


def _lazy(factory: Callable[[], Callable]) -> Callable:
    """A callable that builds the real one on its first call."""
    built: list[Callable] = []

    def call(*args):
        if not built:
            built.append(factory())
        return built[0](*args)

    return call


def efficientnet_classifier(top_k: int = 5) -> Classifier:
    """EfficientNet-Lite0's ImageNet top-k as (label, probability) pairs."""
    from mmagent.config import apply_thread_policy
    from mmagent.model.encoders.efficientnet import load_efficientnet_lite0

    apply_thread_policy()
    encoder = load_efficientnet_lite0()

    def classify(images: list[Image.Image]) -> list[list[tuple[str, float]]]:
        return [[(p.label, p.score) for p in preds] for preds in encoder.classify(images, k=top_k)]

    return classify


class OcrReader:
    """The `read_text` tool (PP-OCRv4) applied to a PIL image, through a private artifact store."""

    def __init__(self, min_confidence: float = 0.5):
        from mmagent.tools.base import ToolContext
        from mmagent.tools.ocr import ReadText

        from mmagent.media.artifacts import ArtifactStore

        self._tmp = tempfile.TemporaryDirectory(prefix="mmagent-bridge-ocr-")
        self.ctx = ToolContext(artifacts=ArtifactStore(Path(self._tmp.name), session="bridge"))
        self.tool = ReadText()
        self.min_confidence = min_confidence

    def __call__(self, image: Image.Image) -> str:
        art = self.ctx.artifacts.add_image(image)
        args = self.tool.input_model(image=art.id, min_confidence=self.min_confidence)
        return self.tool.invoke(args, self.ctx).text
