"""The Whisper encoder (Radford et al., 2022, arXiv 2212.04356) as an audio encoder.

Whisper turns 30 s of 16 kHz audio into an 80-bin log-mel spectrogram [80, 3000] and its encoder
into 1500 frames [1500, D] (20 ms each). That is too many tokens for a small LLM, so frames are
average-pooled by `stride` (Qwen-Audio pools by 2; arXiv 2311.07919): N = 1500 / stride. The
log-mel front end is transformers' numpy `WhisperFeatureExtractor`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class WhisperAudioEncoder(nn.Module):
    """Waveforms (float32, mono, 16 kHz) -> features [B, frames / stride, D]."""

    modality = "audio"

    def __init__(self, encoder: nn.Module, feature_extractor, stride: int = 4) -> None:
        super().__init__()
        self.encoder = encoder  # transformers' WhisperEncoder
        self.features = feature_extractor
        self.stride = stride
        frames = encoder.config.max_source_positions
        if frames % stride:
            raise ValueError(f"stride {stride} must divide the encoder's {frames} frames")
        self.hidden_size = encoder.config.d_model
        self.num_tokens = frames // stride

    def preprocess(self, waveforms: list[np.ndarray]) -> torch.Tensor:
        """Pads/cuts each clip to the model's window and returns log-mels [B, n_mels, 2 * frames]."""
        for i, w in enumerate(waveforms):
            if not isinstance(w, np.ndarray) or w.ndim != 1:
                raise ValueError(f"audio {i} must be a 1-D float waveform (mono, {self.features.sampling_rate} Hz)")
        out = self.features([w.astype(np.float32) for w in waveforms], sampling_rate=self.features.sampling_rate,
                            return_tensors="pt")
        return out["input_features"]

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        h = self.encoder(input_features=mels.to(self.encoder.dtype)).last_hidden_state  # [B, frames, D]
        return F.avg_pool1d(h.transpose(1, 2), self.stride).transpose(1, 2)  # [B, frames / stride, D]


def load_whisper_encoder(path: str, stride: int = 4) -> WhisperAudioEncoder:
    """A Whisper checkpoint (local folder or hub id) -> its encoder, in eval mode."""
    from transformers import WhisperFeatureExtractor, WhisperModel

    from mmagent.hub.loading import hf_loading

    with hf_loading():
        model = WhisperModel.from_pretrained(path)
        fe = WhisperFeatureExtractor.from_pretrained(path)
    return WhisperAudioEncoder(model.get_encoder().eval(), fe, stride)
