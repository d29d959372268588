"""The one family of media errors. Every error about media a user gave (bytes that are no
acceptable image, an unknown or wrong-kind artifact, media a model or endpoint does not take)
derives from `MediaError`: a `ValueError` (bad input) and a `mmagent.errors.UserError` (the
message says what was wrong and what to do; the CLI exits 2, the servers answer 4xx).

    MediaError(ValueError, UserError)
      UnsupportedMediaError     a kind or format this consumer does not take (audio to an image model ...)
      ImageDecodeError          images.py: not an acceptable image (format, truncated, ...)
        ImageTooLargeError      images.py: over the byte or pixel limit, refused before decoding
      ArtifactError             artifacts.py: unknown id, wrong kind, over a limit, not decodable

The subclasses are defined where they are raised and imported from there (and from
`mmagent.backends.media`, `mmagent.model.mmllm`, which re-export the names they used to define).
"""

from __future__ import annotations

from mmagent.errors import UserError


class MediaError(ValueError, UserError):
    """Media that cannot be used; the message names the input and what to do."""


class UnsupportedMediaError(MediaError):
    """Media of a kind or format this consumer does not take (the message says what it takes)."""


__all__ = ["MediaError", "UnsupportedMediaError"]
