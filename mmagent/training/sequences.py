"""A conversation -> token ids with assistant-only labels, after the system prefix every conversation shares.

Labels: only the assistant turns' tokens (their content and the end-of-turn marker) are trained;
their spans come from rendering the chat template incrementally, so any prefix-consistent chat
template works (no template-specific token hunting). Every training conversation starts with the
same system message (the tool prompt); `system_prefix` is its tokens, computed once and run once
per batch (`batching.py`), and `encode` returns only what follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# The label the loss skips: one value for the MM-LLM's own prompts and these.
from mmagent.model.mm_prompt import IGNORE
from mmagent.protocol.chat import Message
from mmagent.protocol.toolcall import template_messages

if TYPE_CHECKING:  # types only: the tokenizer comes from the caller
    from transformers import PreTrainedTokenizerBase

__all__ = ["IGNORE", "Encoded", "encode", "render", "system_prefix"]


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
