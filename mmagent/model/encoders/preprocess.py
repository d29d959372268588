"""Image preprocessing with PIL and numpy only (no torchvision: it has no CPU build that works
with the pinned CPU torch: `import torchvision` fails beside it).

Decoding untrusted bytes is not done here: that is `mmagent.media.images.decode_image` (format from
the header, pixel count checked before decoding). This module takes PIL images that exist and
turns them into the tensors an encoder expects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

# MAX_PIXELS: the project's one pixel limit (40 MP), defined with the decoder of untrusted images.
from mmagent.media.images import MAX_PIXELS


class ImageInputError(ValueError):
    """An image the encoder cannot take; the message says which and why."""


def check_image(image: object, max_pixels: int = MAX_PIXELS, what: str = "image") -> Image.Image:
    """Refuses anything that is not a PIL image within the pixel limit; returns it as RGB."""
    if not isinstance(image, Image.Image):
        raise ImageInputError(f"{what} is a {type(image).__name__}, expected a PIL image (load bytes through the artifact store)")
    w, h = image.size
    if w * h > max_pixels:
        raise ImageInputError(f"{what} is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}; downscale it first")
    if w == 0 or h == 0:
        raise ImageInputError(f"{what} is empty ({w}x{h})")
    return image if image.mode == "RGB" else image.convert("RGB")


def resize_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """Shorter side -> `size` (bicubic), then the central `size` x `size` square: [size, size, 3] uint8."""
    image = check_image(image)
    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def resize_square(image: Image.Image, size: int) -> np.ndarray:
    """The whole image squashed to `size` x `size` (what CLIP-style processors do for LLaVA-1.5 pads aside)."""
    return np.asarray(check_image(image).resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8)


def to_tensor(
    arrays: Sequence[np.ndarray], mean: float | Sequence[float], std: float | Sequence[float], scale: float = 1.0
) -> torch.Tensor:
    """uint8 HWC arrays -> normalized float [B, 3, H, W]: (x * scale - mean) / std per channel."""
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() * scale  # [B, 3, H, W]
    m = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
    return (x - m) / s
