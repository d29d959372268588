"""One embedding space for text, images and audio.

- Text: all-MiniLM-L6-v2 (the embedded `minilm-l6`), mean pooling over tokens + L2 norm, 384-d
  (Reimers & Gurevych 2019, Sentence-BERT).
- Images: no CLIP-like model with weights exists offline, so `ImageBridge` (image_bridge.py)
  maps an image into the MiniLM space through words: the EfficientNet ImageNet class
  distribution, the OCR'd text and an optional caption. `ClipEmbedder` is the real thing for
  users with CLIP/SigLIP-style weights.
- Audio: via its transcript (the store embeds the transcript as text).

Every embedder names its `space`: vectors are comparable only within one space, and a store
refuses an embedder of another space (see store.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# the shared contract lives one module down (embedding.py); re-exported here, where users import it
from mmagent.memory.embedding import (
    Embedder,
    ImageEmbeddings,
    UnsupportedContentError,
    check_images,
    check_texts,
    unit_rows,
)
from PIL import Image

log = logging.getLogger(__name__)


class MiniLMEmbedder:
    """Sentence embeddings from a BERT-style encoder folder (the embedded `minilm-l6` by default).

    Works for any mean-pooled sentence encoder folder; pass `space` naming the weights."""

    space = "minilm-l6"

    def __init__(self, path: Path | str | None = None, max_length: int = 256, batch_size: int = 32, space: str | None = None,
                 lean: bool = True):
        from mmagent.config import apply_thread_policy

        apply_thread_policy()
        if path is None:
            from mmagent.hub.provision import ensure

            path = ensure("minilm-l6")
        self.path = Path(path)
        self.max_length, self.batch_size = max_length, batch_size
        # A BERT folder runs without transformers (lean_bert.py: ~3 s of imports saved); anything else through AutoModel.
        from mmagent.memory import lean_bert

        self._lean = lean_bert.load(self.path, max_length) if lean else None
        if self._lean is None:
            self._load_transformers()
        self.dim = self._lean[1].cfg.hidden if self._lean else int(self.model.config.hidden_size)
        if space is not None:
            self.space = space

    def _load_transformers(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from mmagent.hub.loading import hf_loading

        with hf_loading():
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModel.from_pretrained(self.path, dtype=torch.float32).eval()

    def _hidden(self, texts: list[str]):
        """Last hidden states [B, T, D] and the attention mask [B, T] of one batch."""
        if self._lean is not None:
            from mmagent.memory.lean_bert import encode

            tok, model = self._lean
            ids, mask = encode(tok, texts)
            return model(ids, mask), mask
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return self.model(**batch).last_hidden_state, batch["attention_mask"]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i in range(0, len(texts), self.batch_size):
            with torch.inference_mode():
                hidden, attn = self._hidden(list(texts[i : i + self.batch_size]))  # [B, T, D], [B, T]
            mask = attn.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # mean over real tokens [B, D]
            out[i : i + len(pooled)] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

    def embed_images(self, images: Sequence[Image.Image], captions: Sequence[str | None] | None = None) -> ImageEmbeddings:
        raise UnsupportedContentError(
            "the MiniLM text embedder has no image side: use memory.embedders.default_embedder() (image bridge) or a ClipEmbedder"
        )


class ClipEmbedder:
    """A CLIP/SigLIP-style dual encoder from a `save_pretrained` folder (for users with weights).

    Images and texts land natively in one space (Radford et al. 2021). Uses the slow PIL image
    processor (the fast one needs torchvision).
    """

    def __init__(self, path: Path | str, space: str | None = None, batch_size: int = 16):
        import torch
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        from mmagent.config import apply_thread_policy

        apply_thread_policy()
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise FileNotFoundError(f"{self.path} is not a save_pretrained folder (no config.json): point ClipEmbedder at CLIP/SigLIP weights")
        from mmagent.hub.loading import hf_loading

        with hf_loading():
            self.model = AutoModel.from_pretrained(self.path, dtype=torch.float32).eval()
            if not hasattr(self.model, "get_image_features"):
                raise ValueError(f"{self.path} holds a {type(self.model).__name__}, not a dual image-text encoder (CLIP/SigLIP)")
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.processor = AutoImageProcessor.from_pretrained(self.path, use_fast=False)
        self.dim = int(self.model.config.projection_dim if hasattr(self.model.config, "projection_dim") else self.model.config.text_config.hidden_size)
        self.space = space or f"clip:{self.path.resolve().name}"
        self.batch_size = batch_size

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = check_texts(texts)
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[i : i + self.batch_size], padding=True, truncation=True, return_tensors="pt")
            with torch.inference_mode():
                out.append(_features(self.model.get_text_features(**batch)))  # [B, D]
        return unit_rows(np.concatenate(out))

    def embed_images(self, images: Sequence[Image.Image], captions: Sequence[str | None] | None = None) -> ImageEmbeddings:
        """CLIP embeds pixels; a caption, if given, is averaged in (both live in the same space)."""
        import torch

        images = check_images(images)
        out = []
        for i in range(0, len(images), self.batch_size):
            pixels = self.processor(images=images[i : i + self.batch_size], return_tensors="pt")["pixel_values"]  # [B, 3, H, W]
            with torch.inference_mode():
                out.append(_features(self.model.get_image_features(pixel_values=pixels)))
        vecs = unit_rows(np.concatenate(out))
        captions = list(captions or [None] * len(images))
        with_caption = [j for j, c in enumerate(captions) if c and c.strip()]
        if with_caption:
            vecs[with_caption] = unit_rows(vecs[with_caption] + self.embed_texts([captions[j] for j in with_caption]))
        return ImageEmbeddings(vecs, [c or "" for c in captions])


def _features(out) -> np.ndarray:
    """transformers 5 returns a model output whose pooler_output is the projected feature."""
    t = out if hasattr(out, "numpy") else out.pooler_output
    return t.float().numpy()



def load_text_embedder(spec: str = "minilm-l6") -> MiniLMEmbedder:
    """A sentence embedder by catalog name, local folder or hub id (the space is named after it)."""
    from mmagent.hub.catalog import CATALOG, EmbeddedSource, HubSource
    from mmagent.hub.provision import ensure

    entry = CATALOG.resolve(spec, kind="text-embedder")
    if isinstance(entry.source, EmbeddedSource):
        return MiniLMEmbedder(ensure(entry), space=entry.name)
    path = entry.source.repo_id if isinstance(entry.source, HubSource) else entry.source.path
    return MiniLMEmbedder(path, space=entry.name)


def default_embedder(ocr: bool = True) -> Embedder:
    """The embedded default: MiniLM text + the image bridge (EfficientNet labels + OCR) into it."""
    from mmagent.memory.image_bridge import ImageBridge

    return ImageBridge.embedded(load_text_embedder(), ocr=ocr)
