"""detect_objects on a tiny random DETR the test builds and saves (ResNet backbone from
transformers, no timm/torchvision), and the not-configured answer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmagent.tools.base import ToolContext
from mmagent.tools.detection import DetectObjects
from mmagent.tools.registry import ToolRegistry
from PIL import Image

from mmagent.media.artifacts import ArtifactStore

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
    from mmagent.tools.registry import default_registry

    from mmagent.config import get_settings

    monkeypatch.setenv("MMAGENT_DETECTOR", str(detr_folder))
    get_settings.cache_clear()
    r = default_registry(include=["detect_objects"]).call("detect_objects", {"image": "image_1", "threshold": 0.0}, ctx)
    assert r.ok and r.output["model"] == str(detr_folder)


def test_not_configured_says_how(ctx, monkeypatch):
    monkeypatch.delenv("MMAGENT_DETECTOR", raising=False)
    r = ToolRegistry([DetectObjects()]).call("detect_objects", {"image": "image_1"}, ctx)
    assert not r.ok and r.error_kind == "exception"
    assert "no object detector is configured" in r.error and "MMAGENT_DETECTOR" in r.error


@pytest.fixture(scope="module")
def owlvit_folder(tmp_path_factory) -> Path:
    """A tiny random OWL-ViT (open vocabulary: text queries) with a locally built CLIP tokenizer."""
    import json
    import string

    from transformers import CLIPTokenizer, OwlViTConfig, OwlViTForObjectDetection, OwlViTProcessor
    from transformers.models.owlvit.image_processing_pil_owlvit import OwlViTImageProcessorPil

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("owl")
    chars = list(string.ascii_lowercase)
    # Special tokens last, as in CLIP's real vocabulary: OWL-ViT treats a query whose first id is 0 as padding.
    vocab = {t: i for i, t in enumerate([*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"])}
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=16, pad_token="<|endoftext|>")
    tiny = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4)
    cfg = OwlViTConfig(
        text_config=dict(vocab_size=len(tok), max_position_embeddings=16, **tiny),
        vision_config=dict(image_size=32, patch_size=8, **tiny), projection_dim=32,
    )
    folder = root / "model"
    OwlViTForObjectDetection(cfg).save_pretrained(folder)
    size = {"height": 32, "width": 32}
    OwlViTProcessor(image_processor=OwlViTImageProcessorPil(size=size, crop_size=size), tokenizer=tok).save_pretrained(folder)
    return folder


def test_open_vocabulary_detector_uses_labels_as_queries(owlvit_folder, ctx):
    reg = ToolRegistry([DetectObjects(model=str(owlvit_folder))])
    r = reg.call("detect_objects", {"image": "image_1", "labels": ["cat", "dog"], "threshold": 0.0, "max_objects": 5}, ctx)
    assert r.ok, r.error
    assert r.output["count"] == 5 and {o["label"] for o in r.output["objects"]} <= {"cat", "dog"}
    r = reg.call("detect_objects", {"image": "image_1"}, ctx)
    assert r.error_kind == "exception" and "open-vocabulary detector: pass `labels`" in r.error
