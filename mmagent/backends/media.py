"""Media helpers every backend shares: guarded image decoding, data URIs, artifact look-ups.

Images reach a backend as artifact ids (`image_1`) or, at the edges, as bytes, paths or data
URIs. Decoding untrusted bytes goes through `mmagent.media.images.decode_image` (format from the
header, pixel count checked *before* decoding so a decompression bomb is refused without being
allocated, full decode so a truncated file fails here); this module adds the backend's own pixel
limit, data URIs (RFC 2397) for remote endpoints, and the look-up of a message's artifacts.

All errors are of the one media family (`mmagent.media.errors.MediaError(ValueError, UserError)`): they are
the user's input, and the message says what to do.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

# the one media error family (re-exported: backends raise and users catch these names) and the one pixel limit
from mmagent.media.errors import MediaError, UnsupportedMediaError
from mmagent.media.images import MAX_PIXELS as DEFAULT_MAX_PIXELS
from mmagent.media.images import ImageTooLargeError

if TYPE_CHECKING:
    from mmagent.media.artifacts import ArtifactStore
    from mmagent.protocol.chat import Message


AUDIO_MIMES: dict[str, str] = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3"}


def decode_image(src: bytes | Path | str, *, max_pixels: int = DEFAULT_MAX_PIXELS, what: str = "image") -> Image.Image:
    """Bytes, a file path or a `data:` URI -> an upright RGB PIL image, within the limits.

    The checks themselves (format from the header, pixel count before decoding, full decode) are
    `mmagent.media.images.decode_image`, the project's one decoder of untrusted image bytes.
    """
    from mmagent.media.images import ImageDecodeError, ImageLimits, read_image_file
    from mmagent.media.images import decode_image as _decode

    limits = ImageLimits(max_pixels=max_pixels)
    try:
        if isinstance(src, str) and src.startswith("data:"):
            mime, data = parse_data_uri(src)
            if not mime.startswith("image/"):
                raise UnsupportedMediaError(f"{what} is a data URI of {mime}, not an image")
        else:  # a file is checked by its size and header before it is read
            data = read_image_file(src, limits, what) if isinstance(src, (str, Path)) else src
        return _decode(data, limits).image
    except ImageDecodeError as err:
        raise MediaError(f"{what}: {err}") from err


def check_pixels(size: tuple[int, int], *, max_pixels: int = DEFAULT_MAX_PIXELS, what: str = "image") -> None:
    """Refuses an image whose width x height is over this backend's limit: the one check of
    `mmagent.media.images` (raises its `ImageTooLargeError`, a `MediaError`)."""
    from mmagent.media.images import ImageLimits
    from mmagent.media.images import check_pixels as check

    check(size, ImageLimits(max_pixels=max_pixels), what)


# --- data URIs (RFC 2397) -------------------------------------------------------------------

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,(?P<data>.*)$", re.S)


def to_data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def parse_data_uri(uri: str) -> tuple[str, bytes]:
    """`data:image/png;base64,...` -> (mime, bytes)."""
    m = _DATA_URI.match(uri)
    if not m:
        raise MediaError(f"not a data URI: {uri[:40]!r}...; expected data:<mime>;base64,<payload>")
    mime = m.group("mime") or "text/plain"
    if not m.group("b64"):
        from urllib.parse import unquote_to_bytes

        return mime, unquote_to_bytes(m.group("data"))
    try:
        return mime, base64.b64decode(m.group("data"), validate=True)
    except binascii.Error as err:
        raise MediaError(f"data URI ({mime}) has invalid base64: {err}") from err


def encode_image(img: Image.Image, *, mime: str = "image/png", max_side: int | None = None) -> tuple[bytes, str]:
    """A PIL image -> (bytes, mime): JPEG stays JPEG (q=95), everything else becomes PNG.

    `max_side` downscales (aspect kept) before encoding, to keep request bodies small.
    """
    if max_side and max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    if mime == "image/jpeg":
        img.convert("RGB").save(buf, format="JPEG", quality=95)
        return buf.getvalue(), "image/jpeg"
    img.save(buf, format="PNG")
    return buf.getvalue(), "image/png"


def image_data_uri(img: Image.Image, *, mime: str = "image/png", max_side: int | None = None) -> str:
    data, mime = encode_image(img, mime=mime, max_side=max_side)
    return to_data_uri(data, mime)


# --- artifacts referenced by messages ------------------------------------------------------


@dataclass
class MessageImages:
    """A message's images, decoded and checked, with their artifact ids and mimes (same order)."""

    ids: list[str]
    images: list[Image.Image]
    mimes: list[str]


def load_message_images(
    message: Message, artifacts: ArtifactStore | None, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> MessageImages:
    """Resolves a message's image ids through the artifact store, with this backend's pixel limit."""
    if not message.images:
        return MessageImages([], [], [])
    store = _require_store(message.images, artifacts)
    images, mimes = [], []
    for art_id in message.images:
        art = store.get(art_id)  # unknown ids raise ArtifactError(ValueError) naming the known ones
        if art.kind != "image":
            raise UnsupportedMediaError(f"{art_id} is {art.kind} ({art.mime}) but is listed among the message's images")
        img = store.load_image(art_id)
        check_pixels(img.size, max_pixels=max_pixels, what=art_id)
        images.append(img)
        mimes.append(art.mime)
    return MessageImages(list(message.images), images, mimes)


def image_payload(art_id: str, artifacts: ArtifactStore | None, *, max_side: int | None = None,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, str]:
    """(bytes, mime) to send an image artifact over the wire: the stored bytes as they are (they
    were checked when stored), re-encoded only when `max_side` asks for a smaller image."""
    store = _require_store([art_id], artifacts)
    art = store.get(art_id)
    if art.kind != "image":
        raise UnsupportedMediaError(f"{art_id} is {art.kind} ({art.mime}) but is listed among the message's images")
    img = store.load_image(art_id)  # decodes: a blob corrupted on disk fails here, not at the server
    check_pixels(img.size, max_pixels=max_pixels, what=art_id)
    if max_side and max(img.size) > max_side:
        return encode_image(img, mime=art.mime, max_side=max_side)
    if art.mime not in ("image/png", "image/jpeg", "image/webp", "image/gif"):  # what chat APIs accept
        return encode_image(img, mime="image/png")
    return store.read_bytes(art_id), art.mime


def audio_payload(art_id: str, artifacts: ArtifactStore | None) -> tuple[bytes, str]:
    """(bytes, format) of an audio artifact for an OpenAI `input_audio` part (WAV or MP3 only)."""
    store = _require_store([art_id], artifacts)
    art = store.get(art_id)
    if art.kind != "audio":
        raise UnsupportedMediaError(f"{art_id} is {art.kind} ({art.mime}) but is listed among the message's audio")
    fmt = AUDIO_MIMES.get(art.mime)
    if fmt is None:
        raise UnsupportedMediaError(f"{art_id} is {art.mime}; chat endpoints take WAV or MP3 audio, convert it first")
    return store.audio_path(art_id).read_bytes(), fmt


def _require_store(ids: list[str], artifacts: ArtifactStore | None) -> ArtifactStore:
    if artifacts is None:
        raise MediaError(f"the messages reference {', '.join(ids)} but no artifact store was passed; call chat(..., artifacts=store)")
    return artifacts


__all__ = [
    "AUDIO_MIMES", "DEFAULT_MAX_PIXELS", "ImageTooLargeError", "MediaError", "MessageImages", "UnsupportedMediaError", "audio_payload",
    "check_pixels", "decode_image", "encode_image", "image_data_uri", "image_payload", "load_message_images", "parse_data_uri", "to_data_uri",
]
