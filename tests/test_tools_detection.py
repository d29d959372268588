"""detect_objects on a tiny random DETR the test builds and saves (ResNet backbone from
transformers, no timm/torchvision), and the not-configured answer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from mmagent.tools.artifacts import ArtifactStore
from mmagent.tools.base import ToolContext
from mmagent.tools.detection import DetectObjects
from mmagent.tools.registry import ToolRegistry

LABELS = {0: "cat", 1: "dog", 2: "car"}


@pytest.fixture(scope="module")
def detr_folder(tmp_path_factory) -> Path:
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor, ResNetConfig

    torch.manual_seed(0)
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", out_features=["stage1", "stage2"])
    cfg = DetrConfig(
        use_timm_backbone=False, backbone_config=backbone, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=6,
        num_labels=len(LABELS), id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
    )
    folder = tmp_path_factory.mktemp("detr") / "model"
    DetrForObjectDetection(cfg).save_pretrained(folder)
    DetrImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(folder)
    return folder


@pytest.fixture()
def ctx(tmp_path) -> ToolContext:
    ctx = ToolContext(ArtifactStore(tmp_path / "a", "d"))
    ctx.artifacts.add_image(Image.new("RGB", (120, 80), (200, 50, 50)))
    return ctx


def test_tiny_detr_returns_boxes_inside_the_image(detr_folder, ctx):
    reg = ToolRegistry([DetectObjects(model=str(detr_folder))])
    r = reg.call("detect_objects", {"image": "image_1", "threshold": 0.0, "max_objects": 4}, ctx)
    assert r.ok, r.error
    objs = r.output["objects"]
    assert r.output["count"] == len(objs) == 4 and r.output["model"] == str(detr_folder)
    scores = [o["score"] for o in objs]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    for o in objs:
        assert o["label"] in LABELS.values()
        assert 0 <= o["x0"] < o["x1"] <= 120 and 0 <= o["y0"] < o["y1"] <= 80


def test_threshold_and_label_filter(detr_folder, ctx):
    reg = ToolRegistry([DetectObjects(model=str(detr_folder))])
    assert reg.call("detect_objects", {"image": "image_1", "threshold": 1.0}, ctx).output["count"] == 0
    r = reg.call("detect_objects", {"image": "image_1", "threshold": 0.0, "labels": ["Dog"]}, ctx)
    assert all(o["label"] == "dog" for o in r.output["objects"])


def test_configured_through_settings(detr_folder, ctx, monkeypatch):
    from mmagent.config import get_settings
    from mmagent.tools.registry import default_registry

    monkeypatch.setenv("MMAGENT_DETECTOR", str(detr_folder))
    get_settings.cache_clear()
    r = default_registry(include=["detect_objects"]).call("detect_objects", {"image": "image_1", "threshold": 0.0}, ctx)
    assert r.ok and r.output["model"] == str(detr_folder)


def test_not_configured_says_how(ctx, monkeypatch):
    monkeypatch.delenv("MMAGENT_DETECTOR", raising=False)
    r = ToolRegistry([DetectObjects()]).call("detect_objects", {"image": "image_1"}, ctx)
    assert not r.ok and r.error_kind == "exception"
    assert "no object detector is configured" in r.error and "MMAGENT_DETECTOR" in r.error
