"""What a run trains: the LLM (LoRA adapters injected in place), its tokenizer, and the MM-LLM if any."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mmagent.training.config import ToolTuningConfig


@dataclass
class Backbone:
    llm: nn.Module
    tok: Any
    mm: Any = None  # mmagent.model.mmllm.MMLLM

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameters(self) -> Iterator[nn.Parameter]:
        yield from self.llm.parameters()
        if self.mm is not None:  # the projector is the MM-LLM's only other trainable part (the encoder stays frozen)
            yield from self.mm.projector.parameters()


@contextlib.contextmanager
def frozen_weights_in(bb: Backbone, dtype: torch.dtype) -> Iterator[None]:
    """Inside: the LLM's frozen linear weights stored in `dtype` (a bf16-autocast run); after: the
    original tensors back, untouched.

    Autocast caches its casts only for leaves that require grad, so every frozen fp32 weight was cast
    to bf16 again at each use: `aten::copy_` was ~15% of a tool-tuning step here (torch profiler, 1
    thread). The stored values are exactly the ones autocast would have used (the same rounding), so
    the step's math does not change. The LM head stays: it is tied to the input embeddings in
    SmolLM2, which must stay fp32 (the residual stream starts there). Everything that runs the model
    inside must run under autocast (an fp32 input would meet a bf16 weight)."""
    if dtype == torch.float32:
        yield
        return
    tied = bb.llm.get_input_embeddings().weight
    kept = [(m, m.weight.data) for m in bb.llm.modules()
            if isinstance(m, nn.Linear) and not m.weight.requires_grad and m.weight is not tied]
    for m, w in kept:
        m.weight.data = w.to(dtype)
    try:
        yield
    finally:
        for m, w in kept:
            m.weight.data = w


def load_base(cfg: ToolTuningConfig) -> Backbone:
    """The base as saved, in fp32: the MM-LLM folder `cfg.multimodal` (with its adapters) or the text-only LLM."""
    if cfg.multimodal is not None:
        from mmagent.model.mmllm import MMLLM

        mm = MMLLM.from_pretrained(cfg.multimodal, dtype=torch.float32)
        return Backbone(mm.llm, mm.tokenizer, mm)
    return Backbone(*build_llm(cfg))


def build_backbone(cfg: ToolTuningConfig) -> Backbone:
    """The base model with a fresh LoRA adapter (and a trainable projector for MM runs)."""
    from mmagent.model import lora

    bb = load_base(cfg)
    if bb.mm is not None:
        for p in bb.mm.projector.parameters():
            p.requires_grad_(cfg.train_projector)
    else:
        for p in bb.llm.parameters():
            p.requires_grad_(False)
    if cfg.adapter_name in lora.adapter_names(bb.llm):  # an MM-LLM folder that ships this adapter: continue it
        lora.set_adapter(bb.llm, cfg.adapter_name)
    else:
        lora.add_adapter(bb.llm, cfg.adapter_name, cfg.lora)
    for n, p in bb.llm.named_parameters():
        p.requires_grad_(f".{cfg.adapter_name}." in n)
    return bb


def build_llm(cfg: ToolTuningConfig) -> tuple[nn.Module, Any]:
    """The text-only base causal LM (real weights, or a tiny random Llama for tests) and its tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from mmagent.hub.catalog import CATALOG
    from mmagent.model.backbone import backbone_path, load_causal_lm

    if cfg.tiny is None:
        return load_causal_lm(cfg.model, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(backbone_path(CATALOG.resolve(cfg.model)))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    t = cfg.tiny
    lc = LlamaConfig(vocab_size=len(tok), hidden_size=t.hidden, intermediate_size=t.intermediate, num_hidden_layers=t.layers,
                     num_attention_heads=t.heads, num_key_value_heads=t.kv_heads, max_position_embeddings=4096,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(lc), tok
