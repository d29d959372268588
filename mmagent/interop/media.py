"""Media that arrives over a wire (an HTTP request, an MCP call) becomes checked bytes here.

A string is never a path: only a `data:` URI, bare base64 (MCP arguments) or, when the caller
turned it on, an http(s) URL is read; anything else (`/etc/passwd`, `file:///...`) is refused
before any filesystem call. Limits come before work: a base64 payload's decoded size is computed
from its length and refused over the limit before it is decoded, and image bytes then go through
`mmagent.media.images` (format from the header, pixel count before a pixel is decoded); the
artifact store decodes them fully when it stores them.
"""

from __future__ import annotations

import base64
import binascii
import re

from mmagent.errors import UserError
from mmagent.media.images import MAX_IMAGE_BYTES, ImageDecodeError, ImageLimits, probe_format

MAX_AUDIO_BYTES = 100 * 1024 * 1024  # the artifact store's own audio limit (ArtifactLimits)
URL_TIMEOUT_S = 20.0
# `data:<mime>[;param=value]*;base64,`: matched on the header alone, never on a 50 MB payload.
_HEADER = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[^;,]*)*(?P<b64>;base64)?", re.I)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class MediaInputError(ValueError, UserError):
    """Media in a request that is refused: not a data URI, over a limit, not an image, a URL
    while URLs are off. The message says what to send instead."""


def decoded_size(b64: str) -> int:
    """The byte count `b64` decodes to, from its length alone (no decoding)."""
    return len(b64) * 3 // 4 - (len(b64) - len(b64.rstrip("=")))


def b64_bytes(payload: str, max_bytes: int, what: str) -> bytes:
    """Base64 -> bytes, refused over `max_bytes` before it is decoded."""
    n = decoded_size(payload)
    if n > max_bytes:
        raise MediaInputError(f"{what} is {n:,} bytes, over the limit of {max_bytes:,} bytes; downscale or recompress it")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MediaInputError(f"{what}: the payload is not valid base64") from None


def data_uri_bytes(uri: str, max_bytes: int, what: str, kind: str = "image") -> tuple[str, bytes]:
    """`data:<mime>;base64,<payload>` -> (mime, bytes); the mime must be `<kind>/...`."""
    head, comma, payload = uri.partition(",")
    m = _HEADER.fullmatch(head[:256]) if comma else None
    if m is None or not m.group("b64"):
        raise MediaInputError(f"{what} must be a base64 data URI (data:{kind}/png;base64,...), got {uri[:40]!r}")
    mime = (m.group("mime") or "").lower()
    if not mime.startswith(kind + "/"):
        raise MediaInputError(f"{what} is a data URI of {mime or 'no type'}, not {kind}")
    return mime, b64_bytes(payload, max_bytes, what)


def image_bytes(src: str, *, what: str = "image", allow_urls: bool = False, bare_base64: bool = False,
                limits: ImageLimits = ImageLimits()) -> bytes:
    """An image given as a data URI (or bare base64, or an allowed URL) -> its bytes, checked by
    size, format and pixel count before anything decodes its pixels."""
    if not isinstance(src, str) or not src:
        raise MediaInputError(f"{what} must be a non-empty string (a data URI)")
    if src[:5].lower() == "data:":
        data = data_uri_bytes(src, limits.max_bytes, what)[1]
    elif src[:8].lower().startswith(("http://", "https://")):
        if not allow_urls:
            raise MediaInputError(f"{what}: image URLs are not fetched by this server; send the image inline as a data URI "
                                  "(data:image/png;base64,...), or start the server with --allow-image-urls")
        data = fetch_url(src, limits.max_bytes, what)
    elif bare_base64 and _BASE64.fullmatch(src[:4096]):
        try:
            data = b64_bytes(src, limits.max_bytes, what)
        except MediaInputError as err:
            raise MediaInputError(f"{err}; send a data URI (data:image/png;base64,...) or base64 bytes, paths are not read") from None
    else:  # a path, file://, ftp:// ...: never opened
        raise MediaInputError(f"{what} must be a data URI (data:image/png;base64,...){' or base64' if bare_base64 else ''}; "
                              "paths and other URLs are not read")
    try:
        probe_format(data, limits)
    except ImageDecodeError as err:
        raise MediaInputError(f"{what}: {err}") from None
    return data


def audio_bytes(src: str, *, what: str = "audio", fmt: str | None = None, bare_base64: bool = True) -> bytes:
    """Audio given as a data URI or base64 (OpenAI's `input_audio.data`) -> bytes, size-checked first."""
    if src[:5].lower() == "data:":
        return data_uri_bytes(src, MAX_AUDIO_BYTES, what, kind="audio")[1]
    if bare_base64 and _BASE64.fullmatch(src[:4096]):
        return b64_bytes(src, MAX_AUDIO_BYTES, what)
    raise MediaInputError(f"{what} must be base64 audio ({fmt or 'wav'}) or a data URI; paths and URLs are not read")


def fetch_url(url: str, max_bytes: int = MAX_IMAGE_BYTES, what: str = "image") -> bytes:
    """GETs an http(s) URL (opt-in only: it lets a request make the server fetch), stopping at
    `max_bytes` whatever the server claims its length is."""
    import httpx

    try:
        with httpx.stream("GET", url, timeout=URL_TIMEOUT_S, follow_redirects=False) as r:
            if r.status_code != 200:
                raise MediaInputError(f"{what}: {url} answered HTTP {r.status_code}")
            declared = int(r.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise MediaInputError(f"{what} at {url} is {declared:,} bytes, over the limit of {max_bytes:,}")
            chunks, total = [], 0
            for chunk in r.iter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise MediaInputError(f"{what} at {url} is over the limit of {max_bytes:,} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as err:
        raise MediaInputError(f"{what}: could not fetch {url}: {type(err).__name__}: {err}") from None
    return b"".join(chunks)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


__all__ = ["MediaInputError", "audio_bytes", "b64_bytes", "data_uri", "data_uri_bytes", "decoded_size", "fetch_url", "image_bytes"]
