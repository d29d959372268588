"""Input projectors: encoder features [B, N, D_enc] -> LLM input embeddings [B, M, D_lm].

The survey (arXiv 2401.13601, section 2.2) lists the usual choices, all here:
- `linear`: one matrix (LLaVA, Liu et al. 2023, arXiv 2304.08485); M = N.
- `mlp`: two layers with a GELU between (LLaVA-1.5, arXiv 2310.03744); M = N.
- `resampler`: a fixed set of learned queries cross-attends to the features (Perceiver
  Resampler of Flamingo, arXiv 2204.14198; the Q-Former idea of BLIP-2, arXiv 2301.12597);
  M = num_queries whatever N is.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, Field
from torch import nn


class ProjectorConfig(BaseModel):
    kind: Literal["linear", "mlp", "resampler"] = "mlp"
    num_queries: int = Field(default=32, ge=1, description="resampler: output tokens")
    depth: int = Field(default=2, ge=1, description="resampler: cross-attention layers")
    heads: int = Field(default=8, ge=1, description="resampler: attention heads (must divide the LLM width)")


class LinearProjector(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)  # [B, N, D_lm]


class MLPProjector(nn.Module):
    """LLaVA-1.5's `mlp2x_gelu`."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_out)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(d_out, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))  # [B, N, D_lm]


class ResamplerLayer(nn.Module):
    """Queries attend to [features; queries] (Flamingo's variant), then a feed-forward; pre-norm."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        qn = self.norm_q(q)  # [B, Q, D]
        kv = torch.cat([self.norm_kv(x), qn], dim=1)  # [B, N + Q, D]
        q = q + self.attn(qn, kv, kv, need_weights=False)[0]
        return q + self.ff(q)  # [B, Q, D]


class Resampler(nn.Module):
    """A fixed number of learned queries summarizes any number of features."""

    def __init__(self, d_in: int, d_out: int, num_queries: int, depth: int, heads: int) -> None:
        super().__init__()
        if d_out % heads:
            raise ValueError(f"resampler heads ({heads}) must divide the LLM width ({d_out})")
        self.proj_in = nn.Linear(d_in, d_out)
        self.queries = nn.Parameter(torch.randn(num_queries, d_out) * d_out**-0.5)
        self.layers = nn.ModuleList(ResamplerLayer(d_out, heads) for _ in range(depth))
        self.norm_out = nn.LayerNorm(d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj_in(x)  # [B, N, D_lm]
        q = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)  # [B, Q, D_lm]
        for layer in self.layers:
            q = layer(q, x)
        return self.norm_out(q)  # [B, Q, D_lm]


def build_projector(config: ProjectorConfig, d_in: int, d_out: int) -> nn.Module:
    if config.kind == "linear":
        return LinearProjector(d_in, d_out)
    if config.kind == "mlp":
        return MLPProjector(d_in, d_out)
    return Resampler(d_in, d_out, config.num_queries, config.depth, config.heads)


def projected_tokens(config: ProjectorConfig, n_in: int) -> int:
    """How many tokens the projector emits for `n_in` input tokens."""
    return config.num_queries if config.kind == "resampler" else n_in
