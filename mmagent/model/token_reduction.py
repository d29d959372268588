"""Visual token reduction to a fixed budget, before the projector: fewer tokens, faster prefill.

Two training-free families that the literature shows keep most of the accuracy:
- `merge`: group similar tokens and average each group (VisToG, arXiv 2411.17773, groups
  visual tokens by similarity). Done here with bipartite soft matching (ToMe, Bolya et al.,
  arXiv 2210.09461): alternate tokens form sets A and B, each A token's most similar B token
  is its candidate, the most similar pairs merge (size-weighted mean); repeat until the budget.
  Merged tokens keep raster order by their mean position, so the LLM sees a spatial sequence.
- `topk`: keep the tokens that attention ranks highest (G-Search, arXiv 2412.03248; FastV,
  arXiv 2403.06764, ranks by the attention the LLM's layer 2 pays). Here the score is the
  attention a global query (the mean token) pays to each token in the encoder's feature space,
  so it needs no LLM pass; callers may pass their own scores (e.g. a ViT's CLS attention).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from torch import nn


class ReductionConfig(BaseModel):
    method: Literal["none", "merge", "topk"] = "none"
    budget: int = Field(default=16, ge=1, description="visual tokens kept per image")


def merge_tokens(x: torch.Tensor, budget: int) -> torch.Tensor:
    """[B, N, D] -> [B, budget, D] by repeated bipartite soft matching (cosine similarity)."""
    b, n, d = x.shape
    size = x.new_ones(b, n, 1)  # tokens each row stands for
    pos = torch.arange(n, dtype=x.dtype, device=x.device).expand(b, n).unsqueeze(-1)  # mean position
    while x.shape[1] > budget:
        r = min(x.shape[1] - budget, x.shape[1] // 2)
        x, size, pos = _merge_step(x, size, pos, r)
    order = pos.squeeze(-1).argsort(dim=1)  # [B, budget]: raster order by mean position
    return x.gather(1, order.unsqueeze(-1).expand(-1, -1, d))


def _merge_step(x: torch.Tensor, size: torch.Tensor, pos: torch.Tensor, r: int):
    """Merges the r most similar (A -> B) pairs; returns the new tokens, sizes and positions."""
    a, bb = x[:, ::2], x[:, 1::2]  # [B, Na, D], [B, Nb, D]
    sim = F.normalize(a, dim=-1) @ F.normalize(bb, dim=-1).transpose(1, 2)  # [B, Na, Nb]
    best, dst = sim.max(dim=-1)  # [B, Na]: each A token's closest B token
    ranked = best.argsort(dim=-1, descending=True)
    merged, kept = ranked[:, :r], ranked[:, r:]  # A tokens that merge away / stay

    def take(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return t.gather(1, idx.unsqueeze(-1).expand(-1, -1, t.shape[-1]))

    sa, sb = size[:, ::2], size[:, 1::2]
    pa, pb = pos[:, ::2], pos[:, 1::2]
    to = dst.gather(1, merged).unsqueeze(-1)  # [B, r, 1] destination in B
    # Size-weighted sums, then divide: the merged token is the mean of everything it stands for.
    sum_b = (bb * sb).scatter_add(1, to.expand(-1, -1, x.shape[-1]), take(a * sa, merged))
    pos_b = (pb * sb).scatter_add(1, to, take(pa * sa, merged))
    sb = sb.scatter_add(1, to, take(sa, merged))
    new_b, new_pb = sum_b / sb, pos_b / sb
    x = torch.cat([take(a, kept), new_b], dim=1)
    return x, torch.cat([take(sa, kept), sb], dim=1), torch.cat([take(pa, kept), new_pb], dim=1)


def attention_scores(x: torch.Tensor) -> torch.Tensor:
    """[B, N, D] -> [B, N]: softmax attention of the mean token (a global query) over the tokens."""
    q = x.mean(dim=1, keepdim=True)  # [B, 1, D]
    return ((q @ x.transpose(1, 2)).squeeze(1) / math.sqrt(x.shape[-1])).softmax(dim=-1)


def topk_tokens(x: torch.Tensor, budget: int, scores: torch.Tensor | None = None) -> torch.Tensor:
    """[B, N, D] -> [B, budget, D]: the highest-scoring tokens, kept in their original order."""
    scores = attention_scores(x) if scores is None else scores  # [B, N]
    keep = scores.topk(budget, dim=-1).indices.sort(dim=-1).values  # [B, budget]
    return x.gather(1, keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class TokenReducer(nn.Module):
    """Applies the configured reduction; a budget >= N (or method "none") passes tokens through."""

    def __init__(self, config: ReductionConfig) -> None:
        super().__init__()
        self.config = config

    def num_tokens(self, n: int) -> int:
        return n if self.config.method == "none" else min(n, self.config.budget)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        budget = self.num_tokens(x.shape[1])
        if budget == x.shape[1]:
            return x
        return merge_tokens(x, budget) if self.config.method == "merge" else topk_tokens(x, budget)
