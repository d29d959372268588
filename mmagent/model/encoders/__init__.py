"""Modality encoders: media -> features [B, N, D].

`load_encoder(spec)` picks the implementation from the catalog entry and the checkpoint's own
config (`model_type`), never from its name: the embedded `efficientnet-lite0`, or a local/hub
CLIP, SigLIP (vision towers) or Whisper (audio) checkpoint.
"""

from __future__ import annotations

from mmagent.model.encoders.base import Encoder


def load_encoder(spec: str, settings=None) -> Encoder:
    """A catalog name (kind image-encoder), a local folder or a hub id -> an encoder in eval mode."""
    from mmagent.hub.catalog import CATALOG, EmbeddedSource

    entry = CATALOG.resolve(spec, kind="image-encoder")
    if isinstance(entry.source, EmbeddedSource):
        from mmagent.model.encoders.efficientnet import load_efficientnet_lite0

        return load_efficientnet_lite0(spec, settings)
    from transformers import AutoConfig

    path = str(entry.source.path) if entry.source.type == "local" else entry.source.repo_id
    if AutoConfig.from_pretrained(path).model_type == "whisper":
        from mmagent.model.encoders.whisper import load_whisper_encoder

        return load_whisper_encoder(path)
    from mmagent.model.encoders.clip import load_vision_tower

    return load_vision_tower(path)


__all__ = ["Encoder", "load_encoder"]
