"""The training objective: next-token loss on assistant tokens only, behind the shared prefix."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmagent.training.sequences import IGNORE


def behind_prefix(body: nn.Module, prefix: torch.Tensor, embeds: torch.Tensor, position_ids: torch.Tensor,
                  attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden states [B, T, D] of a packed batch's rows `embeds` [B, T, D] behind the shared `prefix` [1, P],
    whose KV is computed once for all B rows."""
    cache = body(input_ids=prefix, use_cache=True).past_key_values  # one pass over [1, P]
    cache.batch_repeat_interleave(embeds.shape[0])
    return body(inputs_embeds=embeds, position_ids=position_ids, attention_mask=attention_mask, past_key_values=cache).last_hidden_state


class AssistantLoss(nn.Module):
    """Summed next-token loss on assistant tokens of a packed batch (and how many there were).

    The LM head runs only where a label exists: on a 49k vocabulary the full [B, T, V] logits
    would dominate memory while only ~15% of positions are trained. Images (MM runs) are spliced
    into the suffix embeddings by the MM-LLM (`MMLLM.embed`: one mask assignment).
    """

    def __init__(self, llm: nn.Module, mm: Any = None, share_prefix: bool = True) -> None:
        super().__init__()
        self.llm = llm
        self.mm = mm
        self.share_prefix = share_prefix

    def forward(self, prefix: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor, position_ids: torch.Tensor,
                attention_mask: torch.Tensor, pixel_values: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        body = self.llm.model  # the decoder stack under the LM head
        B, P = input_ids.shape[0], prefix.shape[1]
        embeds = self.mm.embed(input_ids, pixel_values) if self.mm is not None else body.embed_tokens(input_ids)  # [B, T, D]
        if self.share_prefix:
            h = behind_prefix(body, prefix, embeds, position_ids, attention_mask)
        else:  # the baseline: every row carries its own copy of the prefix
            pre = body.embed_tokens(prefix).expand(B, P, -1)
            dev = input_ids.device
            pos = torch.cat([torch.arange(P, device=dev).expand(B, P), position_ids], 1)
            top = torch.zeros(B, 1, P, P + input_ids.shape[1], dtype=torch.bool, device=dev)
            top[:, :, :, :P] = torch.ones(P, P, dtype=torch.bool, device=dev).tril()
            mask = torch.cat([top, attention_mask], 2)
            h = body(inputs_embeds=torch.cat([pre, embeds], 1), position_ids=pos, attention_mask=mask, use_cache=False).last_hidden_state[:, P:]
        targets = labels[:, 1:]  # token t is predicted from position t-1: [B, T-1]
        sel = targets != IGNORE
        logits = self.llm.lm_head(h[:, :-1][sel])  # [N, V] only where trained
        loss = nn.functional.cross_entropy(logits.float(), targets[sel], reduction="sum")
        return loss, sel.sum()
