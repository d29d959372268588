"""classify_image's contract on a randomly initialised EfficientNet-Lite0 (no weights needed)."""

from __future__ import annotations

import pytest
import torch
from mmagent.tools.base import ToolContext
from mmagent.tools.classify import ClassifyImage
from mmagent.tools.registry import ToolRegistry
from PIL import Image

from mmagent.media.artifacts import ArtifactStore
from mmagent.model.encoders.efficientnet import EfficientNetEncoder, EfficientNetLite0, imagenet_labels


@pytest.fixture(scope="module")
def tool() -> ClassifyImage:
    torch.manual_seed(0)
    return ClassifyImage(encoder=EfficientNetEncoder(EfficientNetLite0()))


def test_top_k_sorted_probabilities_with_imagenet_names(tool, tmp_path):
    ctx = ToolContext(ArtifactStore(tmp_path, "c"))
    img = ctx.artifacts.add_image(Image.new("RGB", (300, 200), (30, 120, 200))).id
    r = ToolRegistry([tool]).call("classify_image", {"image": img, "top_k": 3}, ctx)
    assert r.ok, r.error
    labels = r.output["labels"]
    probs = [x["probability"] for x in labels]
    assert len(labels) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    names = imagenet_labels()
    assert all(names[x["index"]] == x["label"] for x in labels)


def test_top_k_bounds_and_wrong_kind(tool, tmp_path):
    ctx = ToolContext(ArtifactStore(tmp_path, "c"))
    ctx.artifacts.add_text("not an image")
    reg = ToolRegistry([tool])
    assert reg.call("classify_image", {"image": "image_1", "top_k": 50}, ctx).error_kind == "validation"
    r = reg.call("classify_image", {"image": "image_1"}, ctx)
    assert r.error_kind == "validation" and "unknown artifact id 'image_1'" in r.error
