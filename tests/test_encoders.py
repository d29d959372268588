"""Encoders: EfficientNet-Lite0 structure and checkpoint conversion, CLIP/SigLIP towers, the
Whisper encoder, PIL/numpy preprocessing. Tiny or random weights; the real ones are integration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmagent.model.encoders.efficientnet import EfficientNetEncoder, EfficientNetLite0, SameConv2d, convert_checkpoint, imagenet_labels
from mmagent.model.encoders.preprocess import ImageInputError, check_image, resize_center_crop, to_tensor


@pytest.mark.parametrize("size,k,stride", [(224, 3, 2), (225, 5, 2), (7, 3, 1), (31, 5, 2)])
def test_same_padding_matches_tensorflow(size, k, stride):
    conv = SameConv2d(2, 3, k, stride=stride, bias=False)
    x = torch.randn(1, 2, size, size)
    y = conv(x)
    assert y.shape[-1] == -(-size // stride)  # ceil(in / stride), TF "SAME"
    total = max((y.shape[-1] - 1) * stride + k - size, 0)
    ref = F.conv2d(F.pad(x, [total // 2, total - total // 2] * 2), conv.weight, stride=stride)  # extra pixel right/bottom
    torch.testing.assert_close(y, ref)


def test_efficientnet_gives_49_tokens_of_1280_and_1000_logits():
    enc = EfficientNetEncoder(EfficientNetLite0().eval()).eval()
    assert sum(p.numel() for p in enc.parameters()) == pytest.approx(4.65e6, rel=0.01)
    px = enc.preprocess([Image.new("RGB", (300, 200), (200, 10, 10)), Image.new("L", (50, 80))])
    assert px.shape == (2, 3, 224, 224)
    with torch.no_grad():
        assert enc(px).shape == (2, 49, 1280)
        assert enc.net(px).shape == (2, 1000)
    assert enc.num_tokens == 49 and enc.hidden_size == 1280


def test_convert_checkpoint_roundtrip_and_refusal(tmp_path):
    from safetensors.torch import load_file

    net = EfficientNetLite0().eval()
    torch.save(net.state_dict(), tmp_path / "w.pth")
    out = convert_checkpoint(tmp_path / "w.pth", tmp_path / "model.safetensors")
    other = EfficientNetLite0().eval()
    other.load_state_dict(load_file(str(out)), strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(other(x), net(x))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 checkpoint"):
        convert_checkpoint(tmp_path / "bad.pth", tmp_path / "bad.safetensors")


def test_imagenet_labels_ship_with_the_package():
    labels = imagenet_labels()
    assert len(labels) == 1000 and labels[0] == "tench"
    assert labels[281] == "tabby" and labels[967] == "espresso" and labels[999] == "toilet tissue"


def test_preprocess_checks_and_normalizes():
    with pytest.raises(ImageInputError, match="expected a PIL image"):
        check_image(b"\x89PNG")
    with pytest.raises(ImageInputError, match="over the limit"):
        check_image(Image.new("RGB", (100, 100)), max_pixels=5000, what="image_3")
    arr = resize_center_crop(Image.new("RGB", (400, 100), (10, 20, 30)), 32)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    t = to_tensor([arr], mean=127.0, std=128.0)
    assert t.shape == (1, 3, 32, 32)
    torch.testing.assert_close(t[0, :, 0, 0], (torch.tensor([10.0, 20.0, 30.0]) - 127) / 128)


def _tiny_clip(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8)
    CLIPVisionModel(cfg).save_pretrained(tmp_path / "clip")
    return str(tmp_path / "clip")


def test_clip_tower_drops_cls_and_takes_layer_minus_2(tmp_path):
    from mmagent.model.encoders import load_encoder

    enc = load_encoder(_tiny_clip(tmp_path))
    assert enc.has_cls and enc.num_tokens == 16 and enc.hidden_size == 32
    px = enc.preprocess([Image.new("RGB", (64, 48), (0, 128, 255))])
    assert px.shape == (1, 3, 32, 32)
    with torch.no_grad():
        feats = enc(px)
        ref = enc.tower(pixel_values=px, output_hidden_states=True).hidden_states[-2][:, 1:]
    assert feats.shape == (1, 16, 32)
    torch.testing.assert_close(feats, ref)


def test_siglip_tower_has_no_cls(tmp_path):
    from transformers import SiglipVisionConfig, SiglipVisionModel

    from mmagent.model.encoders import load_encoder

    cfg = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                             image_size=32, patch_size=8)
    SiglipVisionModel(cfg).save_pretrained(tmp_path / "siglip")
    enc = load_encoder(str(tmp_path / "siglip"))
    assert not enc.has_cls and enc.transform.mean == (0.5, 0.5, 0.5)
    with torch.no_grad():
        assert enc(enc.preprocess([Image.new("RGB", (40, 40))])).shape == (1, 16, 32)


def test_whisper_encoder_pools_frames(tmp_path):
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    from mmagent.model.encoders import load_encoder

    # chunk_length 2 s -> 200 mel frames -> 100 encoder positions (conv stride 2) -> 25 tokens (pool 4)
    cfg = WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
                        encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80, max_source_positions=100, vocab_size=100,
                        pad_token_id=0, bos_token_id=1, eos_token_id=1, decoder_start_token_id=1)
    WhisperModel(cfg).save_pretrained(tmp_path / "whisper")
    WhisperFeatureExtractor(feature_size=80, chunk_length=2).save_pretrained(tmp_path / "whisper")
    enc = load_encoder(str(tmp_path / "whisper"))
    assert enc.modality == "audio" and enc.num_tokens == 100 // 4
    wave = np.sin(np.linspace(0, 200, 12000)).astype(np.float32)  # 0.75 s: padded to the 2 s window
    mels = enc.preprocess([wave])
    assert mels.shape == (1, 80, 200)
    with torch.no_grad():
        assert enc(mels).shape == (1, enc.num_tokens, 32)
    with pytest.raises(ValueError, match="1-D float waveform"):
        enc.preprocess([np.zeros((2, 100), dtype=np.float32)])
