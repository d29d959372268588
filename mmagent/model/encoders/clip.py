"""CLIP / SigLIP vision towers from transformers as encoders (local folders or hub ids).

LLaVA-1.5 (Liu et al., 2023, arXiv 2310.03744) feeds the LLM the patch features of the
second-to-last layer of CLIP ViT-L/14 and drops the CLS token; SigLIP has no CLS token. Both are
done here from the checkpoint's own config (`vision_feature_layer`, whether a CLS token exists),
never from its name. Preprocessing is PIL/numpy with the checkpoint's mean/std and size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from transformers import PreTrainedModel

from mmagent.model.encoders.preprocess import resize_center_crop, resize_square, to_tensor

# The OpenAI CLIP normalization; used when a checkpoint ships no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ImageTransform:
    """What the checkpoint's image processor would do, done with PIL/numpy."""

    size: int
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD
    center_crop: bool = True  # CLIP: shorter side + crop; SigLIP: squash to a square

    @classmethod
    def from_folder(cls, folder: Path, size: int, default_crop: bool) -> ImageTransform:
        cfg_path = folder / "preprocessor_config.json"
        if not cfg_path.is_file():
            return cls(size=size, center_crop=default_crop)
        cfg = json.loads(cfg_path.read_text())
        return cls(size=size, mean=tuple(cfg.get("image_mean", CLIP_MEAN)), std=tuple(cfg.get("image_std", CLIP_STD)),
                   center_crop=bool(cfg.get("do_center_crop", default_crop)))

    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        resize = resize_center_crop if self.center_crop else resize_square
        return to_tensor([resize(im, self.size) for im in images], self.mean, self.std, scale=1 / 255)


class VisionTowerEncoder(nn.Module):
    """A ViT vision tower -> patch features [B, N, D] from one hidden layer (LLaVA: layer -2)."""

    modality = "image"

    def __init__(self, tower: PreTrainedModel, transform: ImageTransform, feature_layer: int = -2) -> None:
        super().__init__()
        self.tower = tower
        self.transform = transform
        self.feature_layer = feature_layer
        cfg = tower.config
        patches = (cfg.image_size // cfg.patch_size) ** 2
        # CLIP's embeddings carry a learned class token (output row 0); SigLIP's do not.
        self.has_cls = any(hasattr(m, "class_embedding") for m in tower.modules())
        self.hidden_size = cfg.hidden_size
        self.num_tokens = patches

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        return self.transform(images)  # [B, 3, S, S]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.tower(pixel_values=pixels.to(self.tower.dtype), output_hidden_states=True)
        feats = out.hidden_states[self.feature_layer]  # [B, (1+)N, D]
        return feats[:, 1:] if self.has_cls else feats  # [B, N, D]


def load_vision_tower(path: str, feature_layer: int = -2) -> VisionTowerEncoder:
    """A CLIP or SigLIP checkpoint (full model or vision-only) -> its vision tower as an encoder."""
    from transformers import AutoConfig, CLIPVisionModel, SiglipVisionModel

    config = AutoConfig.from_pretrained(path)
    kinds = {"clip": CLIPVisionModel, "clip_vision_model": CLIPVisionModel,
             "siglip": SiglipVisionModel, "siglip_vision_model": SiglipVisionModel}
    if config.model_type not in kinds:
        raise ValueError(f"{path} is a {config.model_type!r} model; vision towers supported: {', '.join(sorted(kinds))}")
    from mmagent.hub.loading import hf_loading

    with hf_loading():
        tower = kinds[config.model_type].from_pretrained(path).eval()
    crop = config.model_type.startswith("clip")
    folder = Path(path)
    transform = (ImageTransform.from_folder(folder, tower.config.image_size, crop) if folder.is_dir()
                 else ImageTransform(size=tower.config.image_size, center_crop=crop))
    if not crop and not (folder / "preprocessor_config.json").is_file():
        transform.mean, transform.std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # SigLIP's normalization
    return VisionTowerEncoder(tower, transform, feature_layer)
