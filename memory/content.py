"""Content coming into the memory: tags, images (opened, checked within limits, stored by hash), speech to text."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

from mmagent.memory.embedders import UnsupportedContentError
from PIL import Image

from mmagent.atomic import atomic_write_bytes
from mmagent.media.images import ImageDecodeError, ImageLimits, ImageTooLargeError, check_image_size, decode_image_file


def save_media(img: Image.Image, folder: Path) -> str:
    """Stores an image as PNG under its sha256 (temp + rename, before any row refers to it)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = buf.getvalue()
    name = hashlib.sha256(data).hexdigest() + ".png"
    dest = folder / name
    if not dest.exists():
        atomic_write_bytes(dest, data)
    return name


def clean_tags(tags: Sequence[str]) -> list[str]:
    if isinstance(tags, str):
        tags = [tags]
    out = []
    for t in tags:
        if not isinstance(t, str) or not t.strip():
            raise UnsupportedContentError(f"tags must be non-empty strings, got {t!r}")
        out.append(t.strip())
    return out


def open_image(image: Image.Image | Path | str, limits: ImageLimits = ImageLimits()) -> Image.Image:
    """An upright RGB image from a PIL image or a file, within the project's image limits.

    The limits come before the expensive work: a file's size from `os.stat` before it is read,
    its pixel count from the header (a PIL image's `.size`) before anything is decoded or
    converted. A file goes through the one decoder of untrusted bytes (`mmagent.media.images`)."""
    if isinstance(image, Image.Image):
        check_image(image, limits)
        img = image
    else:
        p = Path(image).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"no image file at {p}")
        try:
            img = decode_image_file(p, limits).image
        except ImageTooLargeError as err:
            raise UnsupportedContentError(str(err)) from err
        except ImageDecodeError as err:
            raise UnsupportedContentError(f"{p} is not a readable image ({str(err).removeprefix(f'{p}: ')})") from err
    if img.width < 1 or img.height < 1:
        raise UnsupportedContentError(f"image is empty ({img.width}x{img.height})")
    return img if img.mode == "RGB" else img.convert("RGB")


def check_image(image: Image.Image, limits: ImageLimits = ImageLimits(), what: str = "image") -> Image.Image:
    """Refuses a PIL image over the pixel limit (from `.size`: nothing is decoded) as UnsupportedContentError."""
    try:
        return check_image_size(image, limits, what)
    except ImageDecodeError as err:
        raise UnsupportedContentError(str(err)) from err


def transcribe(audio: Path) -> str:
    """Speech to text with the `transcribe_audio` tool (pocketsphinx), through a private artifact store."""
    import tempfile

    from mmagent.tools.audio import TranscribeAudio
    from mmagent.tools.base import ToolContext

    from mmagent.media.artifacts import ArtifactStore

    if not audio.is_file():
        raise FileNotFoundError(f"no audio file at {audio}")
    asr = TranscribeAudio()
    with tempfile.TemporaryDirectory(prefix="mmagent-memory-asr-") as tmp:
        ctx = ToolContext(artifacts=ArtifactStore(Path(tmp), session="memory"))
        art = ctx.artifacts.add_audio(audio)
        return asr.invoke(asr.input_model(audio=art.id), ctx).text
