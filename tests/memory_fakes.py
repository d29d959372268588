"""A tiny deterministic embedder for memory tests: bag of hashed words, no model.

Each word maps to a fixed random unit vector (seeded by its sha256); a text is the normalized
sum of its words, so texts sharing words are similar. Images embed their caption (or their
mean colour as a word like "red") the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image

from mmagent.memory.embedders import ImageEmbeddings, check_images, check_texts, unit_rows


class FakeEmbedder:
    def __init__(self, dim: int = 32, space: str = "fake-words"):
        self.dim, self.space = dim, space

    def word(self, w: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(w.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        return unit_rows(np.stack([sum(self.word(w) for w in re.findall(r"\w+", t.lower())) for t in texts]))

    def embed_images(self, images: Sequence[Image.Image], captions: Sequence[str | None] | None = None) -> ImageEmbeddings:
        images = check_images(images)
        captions = list(captions or [None] * len(images))
        texts = [c or colour_word(im) for im, c in zip(images, captions)]
        return ImageEmbeddings(self.embed_texts(texts), texts)


def colour_word(im: Image.Image) -> str:
    r, g, b = np.asarray(im.convert("RGB")).reshape(-1, 3).mean(0)
    return ["red", "green", "blue"][int(np.argmax([r, g, b]))]
