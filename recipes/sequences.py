"""Conversations -> token ids with assistant-only labels, a shared system prefix, and packing.

Every training conversation starts with the same system message (the tool prompt), so its tokens
are computed once per batch and its KV cache reused by every row (a probe on SmolLM2-135M, 2 CPU cores,
measured ~2.7x examples/s for the same loss). The rest of each conversation (the "suffix") is
packed several to a row; a block-diagonal 4-D mask keeps packed conversations from seeing each
other while all of them see the prefix, and position ids restart after the prefix for each one,
so a packed row computes exactly what separate rows would (tested).

Labels: only the assistant turns' tokens (their content and the end-of-turn marker) are trained;
their spans come from rendering the chat template incrementally, so any prefix-consistent chat
template works (no template-specific token hunting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from mmagent.protocol.chat import Message
from mmagent.protocol.toolcall import template_messages

IGNORE = -100


@dataclass
class Encoded:
    """One conversation after the shared prefix: ids [T] and labels [T] (IGNORE off-assistant)."""

    ids: list[int]
    labels: list[int]

    @property
    def n_trained(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def render(tok: PreTrainedTokenizerBase, turns: list[dict[str, str]], prompt: bool = False) -> str:
    return tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=prompt)


def system_prefix(tok: PreTrainedTokenizerBase, tools: list[dict[str, Any]]) -> list[int]:
    """Token ids of the system turn every conversation shares."""
    first = template_messages([Message(role="user", content="x")], tools)[0]
    return tok(render(tok, [first]), add_special_tokens=False)["input_ids"]


def encode(tok: PreTrainedTokenizerBase, messages: list[Message], tools: list[dict[str, Any]], prefix: list[int]) -> Encoded:
    """Tokenizes one conversation; the part after `prefix` with assistant-only labels."""
    turns = template_messages(messages, tools)
    text = render(tok, turns)
    spans = []  # char spans of assistant turns: from after the generation prompt to the end of the turn
    for i, t in enumerate(turns):
        if t["role"] == "assistant":
            spans.append((len(render(tok, turns[:i], prompt=True)), len(render(tok, turns[: i + 1]))))
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    if ids[: len(prefix)] != prefix:
        raise ValueError("conversation does not start with the shared system prefix: its first message must not be a system message")
    labels = [tid if any(s <= a < e for s, e in spans) else IGNORE for tid, (a, _) in zip(ids, offsets)]
    return Encoded(ids[len(prefix):], labels[len(prefix):])


@dataclass
class PackedBatch:
    """Rows of packed suffixes behind one shared prefix.

    input_ids/labels/position_ids: [B, T]; attention_mask: [B, 1, T, P + T] bool (True = may attend).
    """

    prefix: torch.Tensor  # [1, P]
    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor
    n_examples: int
    n_tokens: int  # real (non-padding) suffix tokens; the prefix is computed once on top

    def to(self, device: torch.device | str) -> PackedBatch:
        move = {k: getattr(self, k).to(device) for k in ("prefix", "input_ids", "labels", "position_ids", "attention_mask")}
        return PackedBatch(**move, n_examples=self.n_examples, n_tokens=self.n_tokens)


def pack(examples: list[Encoded], max_len: int) -> list[list[Encoded]]:
    """First-fit-decreasing bins of at most `max_len` suffix tokens (one bin per row)."""
    rows: list[list[Encoded]] = []
    room: list[int] = []
    for ex in sorted(examples, key=lambda e: -len(e.ids)):
        n = min(len(ex.ids), max_len)
        for i, r in enumerate(room):
            if n <= r:
                rows[i].append(ex)
                room[i] -= n
                break
        else:
            rows.append([ex])
            room.append(max_len - n)
    return rows


def collate(prefix: list[int], rows: list[list[Encoded]], max_len: int, pad_id: int) -> PackedBatch:
    """Builds the tensors for `rows` (each a list of conversations packed together)."""
    P = len(prefix)
    T = max(sum(min(len(e.ids), max_len) for e in row) for row in rows)
    B = len(rows)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    labels = torch.full((B, T), IGNORE, dtype=torch.long)
    pos = torch.full((B, T), -1, dtype=torch.long)  # -1 marks padding
    mask = torch.zeros(B, 1, T, P + T, dtype=torch.bool)
    mask[:, :, :, :P] = True
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for b, row in enumerate(rows):
        s = 0
        for ex in row:
            n = min(len(ex.ids), max_len)
            ids[b, s : s + n] = torch.tensor(ex.ids[:n])
            labels[b, s : s + n] = torch.tensor(ex.labels[:n])
            pos[b, s : s + n] = torch.arange(P, P + n)
            mask[b, 0, s : s + n, P + s : P + s + n] = causal[:n, :n]
            s += n
        mask[b, 0, s:, :] = False
        mask[b, 0, s:, 0] = True  # padding rows attend to one token: keeps softmax finite, never trained
    n_tokens = int((pos >= 0).sum())
    return PackedBatch(torch.tensor([prefix]), ids, labels, pos.clamp(min=0), mask, sum(len(r) for r in rows), n_tokens)


def padding_positions(batch: PackedBatch) -> torch.Tensor:
    """[B, T] True where a row is padding."""
    return ~batch.attention_mask[:, 0, :, batch.prefix.shape[1]:].any(-1)
