"""The encoder protocol: media -> features [B, N, D], with N fixed per encoder configuration.

An MM-LLM needs three things from a modality encoder (survey arXiv 2401.13601, section 2.1):
how to turn raw media into a tensor, how to turn that tensor into a sequence of feature vectors,
and the sequence's length and width so that placeholders can be expanded before encoding.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Encoder(Protocol):
    """Any `nn.Module` with these members is an encoder (EfficientNet, CLIP/SigLIP, Whisper ...)."""

    modality: str  # "image" or "audio": which message field feeds it
    hidden_size: int  # D
    num_tokens: int  # N: tokens per item (image or audio clip)

    def preprocess(self, items: list[Any]) -> torch.Tensor:
        """Raw media (PIL images, or float32 waveforms for audio) -> the model's input tensor [B, ...]."""
        ...

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """Input tensor [B, ...] -> features [B, N, D]."""
        ...
