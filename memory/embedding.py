"""The embedder contract every embedder and the image bridge share: the `Embedder` protocol, its
`ImageEmbeddings` output, the one content error and the input checks (embedders.py and
image_bridge.py both build on this module, so neither has to import the other to get them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from mmagent.errors import UserError
from mmagent.media.images import MAX_PIXELS


class UnsupportedContentError(ValueError, UserError):
    """Content the embedder cannot embed (empty text, a modality it has no side for ...)."""


@dataclass
class ImageEmbeddings:
    vectors: np.ndarray  # [N, D] float32, unit rows
    texts: list[str]  # what the embedder read into each image (labels, OCR, caption); "" if nothing


@runtime_checkable
class Embedder(Protocol):
    """Maps content into one vector space. Rows of every output are L2-normalized float32."""

    space: str  # vectors are comparable only within one space
    dim: int

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:  # [N, D]
        ...

    def embed_images(self, images: Sequence[Image.Image], captions: Sequence[str | None] | None = None) -> ImageEmbeddings:
        ...


def check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("embed_texts takes a list of strings, not one string")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise UnsupportedContentError(f"text #{bad[0]} is empty or not a string: give non-empty text to embed")
    return list(texts)


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def check_images(images: Sequence[Image.Image]) -> list[Image.Image]:
    if isinstance(images, Image.Image):
        raise TypeError("embed_images takes a list of PIL images, not one image")
    for i, im in enumerate(images):
        if not isinstance(im, Image.Image):
            raise UnsupportedContentError(f"image #{i} is a {type(im).__name__}, not a PIL image")
        if im.width < 1 or im.height < 1:
            raise UnsupportedContentError(f"image #{i} is empty ({im.width}x{im.height})")
        if im.width * im.height > MAX_PIXELS:  # from .size: refused before convert() decodes it
            raise UnsupportedContentError(
                f"image #{i} is {im.width}x{im.height} = {im.width * im.height:,} pixels, over the limit of {MAX_PIXELS:,}; downscale it first"
            )
    return [im.convert("RGB") for im in images]
