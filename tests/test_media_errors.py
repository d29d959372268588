"""One family of media errors (mmagent/media/errors.py): every media error is a MediaError, a
ValueError and a UserError, and the old names in the backends and the model are the same classes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mmagent.errors import UserError
from mmagent.media.artifacts import ArtifactError, ArtifactStore
from mmagent.media.errors import MediaError, UnsupportedMediaError
from mmagent.media.images import (
    ImageDecodeError,
    ImageLimits,
    ImageTooLargeError,
    decode_image,
)


def test_the_family_has_one_root():
    for cls in (UnsupportedMediaError, ImageDecodeError, ImageTooLargeError, ArtifactError):
        assert issubclass(cls, MediaError), cls
    assert issubclass(MediaError, ValueError) and issubclass(MediaError, UserError)
    assert issubclass(ImageTooLargeError, ImageDecodeError)
    assert not issubclass(ArtifactError, ImageDecodeError) and not issubclass(ImageDecodeError, ArtifactError)


def test_old_names_are_the_same_classes():
    from mmagent.backends import media as backend_media
    from mmagent.model import mmllm

    assert backend_media.MediaError is MediaError
    assert backend_media.UnsupportedMediaError is UnsupportedMediaError
    assert backend_media.ImageTooLargeError is ImageTooLargeError
    assert mmllm.UnsupportedMediaError is UnsupportedMediaError


def test_old_except_clauses_still_catch():
    from mmagent.backends import media as backend_media

    with pytest.raises(backend_media.ImageTooLargeError, match="48x40 = 1,920 pixels"):
        backend_media.check_pixels((48, 40), max_pixels=1000, what="image_1")
    buf = io.BytesIO()
    Image.new("RGB", (48, 40), (200, 30, 30)).save(buf, format="PNG")
    with pytest.raises(backend_media.MediaError, match="truncated or corrupt"):  # the message is unchanged
        backend_media.decode_image(buf.getvalue()[:60])
    bomb = io.BytesIO()
    Image.new("1", (200, 200)).save(bomb, format="PNG")
    with pytest.raises(ImageDecodeError, match="over the limit of 100"):
        decode_image(bomb.getvalue(), ImageLimits(max_pixels=100))


def test_artifact_errors_are_media_errors(tmp_path):
    store = ArtifactStore(tmp_path / "art", "s")
    with pytest.raises(MediaError, match="unknown artifact id 'image_1'"):
        store.get("image_1")
    with pytest.raises(UserError):
        store.get("image_1")
