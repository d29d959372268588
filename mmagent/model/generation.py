"""The decode loop: prefill once, then one token per step from a KV cache, streamed as it comes.

The loop is separate from the model that runs each step (a `Decoder`): `HFDecoder` runs any
transformers causal LM with its KV cache; `RecomputeDecoder` re-runs the whole sequence every
step (no cache: the reference the cache must equal); `mmagent.model.llama_decoder.LlamaDecoder` is a lean
Llama-family step with a preallocated cache for CPU speed. Prompts enter as input embeddings, so
media features spliced by the MM-LLM pass through unchanged.

Per step: logits [B, V] -> processors (e.g. `mmagent.protocol.constrained`'s tool-call grammar, a plain
`(input_ids [B, T], scores [B, V]) -> scores` callable) -> greedy or temperature/top-k/top-p
sampling -> token [B] -> `on_step` (streaming) -> stop at EOS or the budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import torch

if TYPE_CHECKING:  # types only: transformers' modeling import costs ~2.5 s (see mmagent.model.lean_tokenizer)
    from transformers import PreTrainedModel

LogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class SamplingConfig:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_k: int = 0  # 0 = off
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class GenerationResult:
    tokens: list[list[int]]  # per row, without the prompt, EOS excluded
    prompt_tokens: int
    ttft_s: float  # prefill + first token
    decode_s: float  # the remaining steps
    decode_cpu_s: float = 0.0  # process CPU time of the remaining steps (what they cost on shared cores)
    finished: list[bool] = field(default_factory=list)  # stopped at EOS (not the budget)

    @property
    def completion_tokens(self) -> int:
        return max((len(t) for t in self.tokens), default=0)


class Decoder(Protocol):
    """One model, one generation: `prefill` the prompt, then `step` one token per row at a time."""

    def prefill(self, embeds: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """embeds [B, T, D], mask [B, T] (left padding) -> next-token logits [B, V]; room for max_new_tokens."""
        ...

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B] -> next-token logits [B, V]."""
        ...


class HFDecoder:
    """Any transformers causal LM, with its own dynamic KV cache."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.cache = None
        self.mask: torch.Tensor | None = None

    def prefill(self, embeds: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int = 0) -> torch.Tensor:
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.model.config)
        self.mask = attention_mask
        out = self.model(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=_positions(attention_mask),
                         past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1].float()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        pos = self.mask.sum(dim=1, keepdim=True) - 1  # [B, 1]: left padding shifts nothing
        out = self.model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=pos,
                         past_key_values=self.cache, use_cache=True)
        return out.logits[:, -1].float()


class RecomputeDecoder:
    """No cache: every step runs the full sequence again (slow; the reference for tests)."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.embeds: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None

    def prefill(self, embeds: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int = 0) -> torch.Tensor:
        self.embeds, self.mask = embeds, attention_mask
        return self._run()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        new = self.model.get_input_embeddings()(tokens[:, None]).to(self.embeds.dtype)  # [B, 1, D]
        self.embeds = torch.cat([self.embeds, new], dim=1)
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        return self._run()

    def _run(self) -> torch.Tensor:
        out = self.model(inputs_embeds=self.embeds, attention_mask=self.mask, position_ids=_positions(self.mask),
                         use_cache=False)
        return out.logits[:, -1].float()


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Left-padded mask [B, T] -> position ids [B, T] (pads get 0; real tokens count from 0)."""
    return (mask.long().cumsum(dim=1) - 1).clamp(min=0)


@torch.inference_mode()
def generate(
    decoder: Decoder,
    embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    input_ids: torch.Tensor,
    *,
    sampling: SamplingConfig | None = None,
    eos_token_ids: Sequence[int] = (),
    processors: Sequence[LogitsProcessor] = (),
    suppress_token_ids: Sequence[int] = (),
    on_step: Callable[[torch.Tensor], None] | None = None,
) -> GenerationResult:
    """Decodes up to `max_new_tokens` per row. `input_ids` [B, T] is the prompt as processors see it.

    `on_step(tokens [B])` is called with each new token (streaming); rows that stopped repeat EOS.
    """
    sampling = sampling or SamplingConfig()
    gen = torch.Generator().manual_seed(sampling.seed) if sampling.seed is not None else None
    eos = torch.tensor(list(eos_token_ids) or [-1])
    b = embeds.shape[0]
    done = torch.zeros(b, dtype=torch.bool)
    seq = input_ids
    out: list[list[int]] = [[] for _ in range(b)]
    t0 = time.perf_counter()
    logits = decoder.prefill(embeds, attention_mask, sampling.max_new_tokens)
    ttft, cpu0 = 0.0, 0.0
    for i in range(sampling.max_new_tokens):
        logits = _process(logits, seq, processors, suppress_token_ids)
        tok = _pick(logits, sampling, gen)  # [B]
        tok = torch.where(done, eos[0], tok)
        if i == 0:
            ttft, cpu0 = time.perf_counter() - t0, time.process_time()
        seq = torch.cat([seq, tok[:, None]], dim=1)
        hit = torch.isin(tok, eos)
        for r in (~done & ~hit).nonzero().flatten().tolist():
            out[r].append(int(tok[r]))
        done |= hit
        if on_step is not None:
            on_step(tok)
        if bool(done.all()) or i == sampling.max_new_tokens - 1:
            break
        logits = decoder.step(tok)
    total = time.perf_counter() - t0
    return GenerationResult(out, int(input_ids.shape[1]), ttft, total - ttft, decode_cpu_s=time.process_time() - cpu0,
                            finished=done.tolist())


def _process(logits: torch.Tensor, seq: torch.Tensor, processors: Sequence[LogitsProcessor],
             suppress: Sequence[int]) -> torch.Tensor:
    if suppress:
        logits[:, list(suppress)] = float("-inf")
    for proc in processors:
        logits = proc(seq, logits)
    return logits


def _pick(logits: torch.Tensor, s: SamplingConfig, gen: torch.Generator | None) -> torch.Tensor:
    """logits [B, V] -> tokens [B]: argmax, or sampling with temperature, top-k and nucleus top-p."""
    if s.temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / s.temperature
    if s.top_k > 0:
        kth = logits.topk(min(s.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1.0:
        sorted_logits, idx = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) > s.top_p  # keep the smallest set whose mass reaches top_p
        logits = logits.scatter(1, idx, sorted_logits.masked_fill(drop, float("-inf")))
    return torch.multinomial(logits.softmax(-1), 1, generator=gen).squeeze(-1)


class TextStream:
    """Turns streamed token ids into text deltas (whole characters only) for `on_token`."""

    def __init__(self, tokenizer, on_text: Callable[[str], None], stop_ids: Sequence[int] = ()) -> None:
        self.tok, self.on_text, self.stop = tokenizer, on_text, set(stop_ids)
        self.ids: list[int] = []
        self.sent = 0
        self.stopped = False

    def __call__(self, tokens: torch.Tensor) -> None:  # tokens [1]
        t = int(tokens[0])
        if self.stopped or t in self.stop:
            self.stopped = True
            return
        self.ids.append(t)
        text = self.tok.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
            return
        if len(text) > self.sent:
            self.on_text(text[self.sent:])
            self.sent = len(text)
