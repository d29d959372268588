"""A lean decode step for Llama-architecture causal LMs (SmolLM2, Llama, Mistral-style) on CPU.

Why: for a 135M model, `transformers`' generic forward spends most of each decode step in Python
(mask building, cache bookkeeping, per-module dispatch): ~13-17 tokens/s on one thread where the
weights' bytes allow ~47 (fp32 at ~25 GB/s single-thread read bandwidth). This module reads the HF model's weights once and
runs the same math with fewer, larger ops:

- q, k, v fused into one matrix and gate, up into another (2 matmuls instead of 5 per layer);
- a preallocated KV cache [B, H_kv, L, d] written in place (no concatenation per step);
- RoPE tables computed once by the model's own rotary module (any rope scaling it implements);
- grouped-query attention through `scaled_dot_product_attention(enable_gqa=True)`;
- optionally int8 matmuls for decode steps (fbgemm dynamic quantization; see `Linear`), with
  prefill in bf16 where the CPU has AMX and in fp32 elsewhere (`mmagent.model.cpu`); or, with `engine="onnxruntime"`, each whole decode step as one
  onnxruntime graph on the same KV buffers (`mmagent.model.ort_decode`: ~1.5x the tokens/s);
- prefix reuse: the KV of the last generation (prompt + generated tokens) is kept, and the next
  prefill computes only the positions after the longest common prefix of input embeddings, so
  the system prompt and tool signatures are prefilled once per (model, adapter, tool set) and a
  step after a tool call prefills only the tool result (batch 1; exact up to float rounding);
- an active LoRA adapter merged into the fused weights (W + B A * alpha / r), so adapters cost
  nothing per token. Rebuilt when the adapter or its weights change (see `fingerprint`).

It is an inference path only (no autograd); `mmagent.model.generation.HFDecoder` is the reference and
the tests check both give the same tokens. Anything that is not this architecture is refused by
`supports()` (checked on the modules, not the model's name) and runs through `HFDecoder`.
"""

from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # transformers' modeling import costs ~2.5 s; a decoder loaded from its cache never needs it
    from transformers import PreTrainedModel


def supports(model: PreTrainedModel) -> bool:
    """Llama-style blocks: RMSNorm, bias-free q/k/v/o and gate/up/down, SiLU, rotary embeddings."""
    cfg = model.config
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None or not hasattr(inner, "rotary_emb") or getattr(cfg, "hidden_act", None) != "silu":
        return False
    layer = layers[0]
    attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
    names = ("q_proj", "k_proj", "v_proj", "o_proj")
    if attn is None or mlp is None or not all(hasattr(attn, n) for n in names):
        return False
    if not all(hasattr(mlp, n) for n in ("gate_proj", "up_proj", "down_proj")):
        return False
    linears = [getattr(attn, n) for n in names] + [mlp.gate_proj, mlp.up_proj, mlp.down_proj]
    extra_norms = any(hasattr(attn, n) for n in ("q_norm", "k_norm"))  # Qwen3/OLMo-style: not handled here
    sliding = getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True)
    return not extra_norms and not sliding and all(_base(lin).bias is None for lin in linears)


def _base(linear: nn.Module) -> nn.Module:
    return getattr(linear, "base_layer", linear)  # peft's LoRA wrapper keeps the original here


def _weight(linear: nn.Module) -> torch.Tensor:
    """The effective weight [out, in]: base plus the active LoRA deltas, if any."""
    w = _base(linear).weight
    if getattr(linear, "disable_adapters", True) or getattr(linear, "merged", False):
        return w
    for name in getattr(linear, "active_adapters", []):
        if name in getattr(linear, "lora_A", {}):
            w = w + linear.get_delta_weight(name)
    return w


def fingerprint(model: PreTrainedModel) -> tuple:
    """Changes when adapters are switched or their weights are updated in place (optimizer steps)."""
    from mmagent.model.lora import active_adapter

    adapters = active_adapter(model)
    versions = tuple(p._version for n, p in model.named_parameters() if "lora_" in n)
    return adapters, versions


class Linear:
    """y = x W^T from a float weight, plus an int8 copy for decode steps when quantized.

    int8 here is fbgemm's dynamic quantization (the x86 int8 GEMM behind `torch.ao`): weights
    int8 with one scale per output row, each step's activations quantized per tensor on the fly,
    int32 accumulation with AVX512-VNNI. A decode step reads 1 byte per weight instead of 4 and
    multiplies in int8; measured here it ran all of SmolLM2's matmuls 3.5x faster than fp32
    (bench/core.py). Prefill (many rows at once) is compute-bound and runs on the float weight
    (bf16 with AMX, fp32 elsewhere), where int8 would not pay.
    """

    def __init__(self, weight: torch.Tensor, dtype: torch.dtype, quantize: bool, blocks: bool = False) -> None:
        """`quantize`: keep fbgemm's int8 copy; `blocks`: keep the 8-bit blocks onnxruntime's steps use."""
        from mmagent.model import ort_decode

        self.w = weight.to(dtype).contiguous()  # [N, K]
        self.packed = None
        self.int8: tuple[torch.Tensor, torch.Tensor] | None = None  # (int8 values [N, K], scale [N]) as saved
        # (values uint8 [N, K/b, b], scale [N K/b], zero point [N K/b], b = 64 or 32): `ort_decode.quantize_blocks`
        self.blocks = ort_decode.quantize_blocks(weight) if blocks else None
        if quantize:
            w = weight.detach().float()
            scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-8).double()  # [N]
            zero = torch.zeros(w.shape[0], dtype=torch.long)
            with warnings.catch_warnings():  # quantized tensors are deprecated for a future torch; pinned 2.13 has them
                warnings.simplefilter("ignore", UserWarning)
                qw = torch.quantize_per_channel(w, scale, zero, 0, torch.qint8)
            self._pack(qw.int_repr(), scale)

    def _pack(self, values: torch.Tensor, scale: torch.Tensor) -> None:
        self.int8 = (values, scale)
        self.pack()

    def pack(self) -> None:
        """fbgemm's packed layout from the int8 values [N, K] and per-row scales [N]. It cannot be
        saved itself, so a cached decoder keeps the values and packs them again (~3 ms per matrix,
        ~0.4 s for SmolLM2-135M): in the warm-up thread while the prompt is prefilled on the float
        weights, or at a matrix's first decode step, whichever comes first (packing twice is harmless)."""
        if self.packed is not None or self.int8 is None:
            return
        values, scale = self.int8
        zero = torch.zeros(values.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            qw = torch._make_per_channel_quantized_tensor(values, scale, zero, 0)
        self.packed = torch.ops.quantized.linear_prepack(qw, None)

    @classmethod
    def from_parts(cls, t: dict[str, torch.Tensor], prefix: str) -> Linear:
        """The inverse of `parts`: a float weight as stored, plus its int8 copy or blocks if it had them
        (an int8 copy is packed later: `pack`)."""
        lin = cls.__new__(cls)
        lin.w, lin.packed = t[f"{prefix}.w"], None
        lin.int8 = (t[f"{prefix}.q"], t[f"{prefix}.scale"]) if f"{prefix}.q" in t else None
        lin.blocks = tuple(t[f"{prefix}.blocks.{n}"] for n in ("q", "scale", "zero")) if f"{prefix}.blocks.q" in t else None
        return lin

    def parts(self, prefix: str) -> dict[str, torch.Tensor]:
        out = {f"{prefix}.w": self.w}
        if self.int8 is not None:
            out[f"{prefix}.q"], out[f"{prefix}.scale"] = self.int8
        if self.blocks is not None:
            out.update({f"{prefix}.blocks.{n}": b for n, b in zip(("q", "scale", "zero"), self.blocks, strict=True)})
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., K] -> [..., N] in x's dtype."""
        rows = x.numel() // x.shape[-1]
        if self.int8 is None or rows > DECODE_ROWS:
            return F.linear(x.to(self.w.dtype), self.w).to(x.dtype)
        if self.packed is None:
            self.pack()
        out = torch.ops.quantized.linear_dynamic(x.reshape(rows, -1).float(), self.packed, REDUCE_RANGE)
        return out.view(*x.shape[:-1], -1).to(x.dtype)


def path_name(quantize: bool, prefill: str, engine: str = "torch") -> str:
    """A decoder path in words: "int8 decode + bfloat16 prefill", "int8 decode on onnxruntime + float32
    prefill", "float32 prefill + decode"."""
    if not quantize:
        return f"{prefill} prefill + decode"
    return f"int8 decode{' on onnxruntime' if engine == 'onnxruntime' else ''} + {prefill} prefill"


def choose_path(mode: str, prefill: str, model_dtype: torch.dtype, kernel: str = "auto") -> tuple[torch.dtype, bool, str]:
    """The MM-LLM config's `decode_dtype` / `prefill_dtype` / `decode_kernel` -> (matmul weights' dtype,
    int8 decode, engine of the int8 steps), resolved for this CPU: int8 prefills in `prefill` or, for
    "auto", bf16 only where the CPU has AMX (`mmagent.model.cpu`), and decodes on onnxruntime
    where it is installed ("auto") or asked for; "auto" decoding keeps the model's dtype (exact)."""
    from mmagent.model import ort_decode
    from mmagent.model.cpu import cpu_features

    if mode == "int8":
        engine = "onnxruntime" if kernel == "onnxruntime" or (kernel == "auto" and ort_decode.available()) else "torch"
        return (cpu_features().prefill_dtype if prefill == "auto" else getattr(torch, prefill)), True, engine
    return (model_dtype if mode == "auto" else getattr(torch, mode)), False, "torch"


DECODE_ROWS = 8  # up to this many rows (batch x new tokens) use the int8 kernel


def _has_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


# Without VNNI, fbgemm sums pairs of u8*s8 products in int16, which saturates unless activations
# use 7 bits (its documented `reduce_range`); with VNNI it accumulates in int32 and 8 bits are safe.
REDUCE_RANGE = not _has_vnni()


def int8_kernel_available() -> bool:
    """Whether this torch build has fbgemm's dynamic int8 linear (x86 builds do)."""
    try:
        Linear(torch.ones(8, 32), torch.float32, quantize=True)(torch.ones(1, 1, 32))
        return "fbgemm" in torch.backends.quantized.supported_engines
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


@dataclass
class _Layer:
    norm1: torch.Tensor  # [D]
    qkv: Linear  # [Dq + 2 Dkv, D]
    o: Linear  # [D, Dq]
    norm2: torch.Tensor  # [D]
    gate_up: Linear  # [2 I, D]
    down: Linear  # [D, I]


class LlamaDecoder:
    """`mmagent.model.generation.Decoder` with fused weights and a static KV cache."""

    def __init__(self, model: PreTrainedModel, max_len: int | None = None, dtype: torch.dtype | None = None,
                 quantize: bool = False, reuse_prefix: bool = True, engine: str = "torch") -> None:
        """`dtype`: the matmul weights' dtype (default the model's; with `quantize`, the prefill
        weights' dtype, default by the CPU). `quantize`: int8 matmuls for decode steps, float
        weights for prefill, and fp32 for everything between (what fbgemm takes). `engine`: what
        runs the int8 steps, "torch" (fbgemm) or "onnxruntime" (`mmagent.model.ort_decode`)."""
        from mmagent.model import ort_decode
        from mmagent.model.cpu import cpu_features

        if not supports(model):
            raise ValueError(f"{type(model).__name__} is not a Llama-style model; use generation.HFDecoder")
        cfg = model.config
        if engine == "onnxruntime" and not (quantize and ort_decode.available()):
            raise ValueError("onnxruntime decode steps need decode_dtype int8 and onnxruntime >= 1.22 with onnx")
        widths = {cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads * (getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)}
        if engine == "onnxruntime" and not all(ort_decode.fits(k) for k in widths):
            engine = "torch"  # not blockable: fbgemm's per-row int8 takes any width
        if quantize and engine == "torch" and not int8_kernel_available():
            raise ValueError("this torch build has no fbgemm int8 linear (x86 only); use decode_dtype bfloat16")
        self.engine = engine
        self.graph_file: Path | None = None  # where the onnxruntime step graph is saved (set by decoder_cache)
        self.quantize = quantize
        self.reuse_prefix = reuse_prefix
        self.dtype = (dtype or cpu_features().prefill_dtype) if quantize else (dtype or model.dtype)  # matmul weights
        self.act = torch.float32 if quantize else self.dtype  # residual stream, KV cache, attention
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.eps = cfg.rms_norm_eps
        self.max_len = max_len or cfg.max_position_embeddings
        self.embed = model.get_input_embeddings().weight
        with torch.no_grad():
            self.layers = [self._fuse(layer) for layer in model.model.layers]
            self.final_norm = model.model.norm.weight.float()
            self.lm_head = self._linear(_weight(model.get_output_embeddings()))  # [V, D]
            self.cos, self.sin = self._rope_tables(model)  # [L, d] each
        self._empty_cache()

    # --- saved form: what `mmagent.model.decoder_cache` writes, so a later process skips fusing ------

    LINEARS = ("qkv", "o", "gate_up", "down")

    def tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """Every weight this decoder computes with, by name, and its scalars as strings (safetensors metadata)."""
        out = {"embed": self.embed, "final_norm": self.final_norm, "cos": self.cos, "sin": self.sin, **self.lm_head.parts("lm_head")}
        for i, layer in enumerate(self.layers):
            out[f"layers.{i}.norm1"], out[f"layers.{i}.norm2"] = layer.norm1, layer.norm2
            for name in self.LINEARS:
                out.update(getattr(layer, name).parts(f"layers.{i}.{name}"))
        meta = {"heads": self.heads, "kv_heads": self.kv_heads, "head_dim": self.head_dim, "eps": self.eps, "max_len": self.max_len,
                "layers": len(self.layers), "dtype": str(self.dtype).removeprefix("torch."), "quantize": int(self.quantize),
                "engine": self.engine}
        return {k: v.detach().contiguous() for k, v in out.items()}, {k: str(v) for k, v in meta.items()}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], meta: dict[str, str], reuse_prefix: bool = True) -> LlamaDecoder:
        """The inverse of `tensors`: the same decoder, without the model it was fused from."""
        self = cls.__new__(cls)
        self.quantize, self.reuse_prefix = meta["quantize"] == "1", reuse_prefix
        self.engine, self.graph_file = meta.get("engine", "torch"), None
        self.dtype = getattr(torch, meta["dtype"])
        self.act = torch.float32 if self.quantize else self.dtype
        self.heads, self.kv_heads, self.head_dim = int(meta["heads"]), int(meta["kv_heads"]), int(meta["head_dim"])
        self.eps, self.max_len = float(meta["eps"]), int(meta["max_len"])
        lin = functools.partial(Linear.from_parts, t)
        self.layers = [_Layer(norm1=t[f"layers.{i}.norm1"], qkv=lin(f"layers.{i}.qkv"), o=lin(f"layers.{i}.o"),
                              norm2=t[f"layers.{i}.norm2"], gate_up=lin(f"layers.{i}.gate_up"), down=lin(f"layers.{i}.down"))
                       for i in range(int(meta["layers"]))]
        self.embed, self.final_norm, self.lm_head = t["embed"], t["final_norm"], lin("lm_head")
        self.cos, self.sin = t["cos"], t["sin"]
        self._empty_cache()
        return self

    def pack(self) -> None:
        """Packs every int8 matrix now (see `Linear.pack`), or builds the onnxruntime step graph (~0.5 s);
        a decoder from `from_tensors` does either lazily, at its first step."""
        if self.engine == "onnxruntime":
            self._step_graph()
            return
        for layer in self.layers:
            for name in self.LINEARS:
                getattr(layer, name).pack()
        self.lm_head.pack()

    def _step_graph(self):
        from mmagent.model import ort_decode

        if self._graph is not None:  # every decode step asks: no lock once built
            return self._graph
        with self._graph_lock:  # the warm-up thread may be building it while the prompt prefills
            if self._graph is None:
                self._graph = ort_decode.StepGraph(self, file=self.graph_file)
            return self._graph

    def _empty_cache(self) -> None:
        self._graph = None  # the onnxruntime step graph (engine "onnxruntime"), built by `pack` or the first step
        self._graph_lock = threading.Lock()
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.valid: torch.Tensor | None = None  # [B, capacity]: which cache slots are real tokens
        self.length = 0
        self.capacity = 0
        self.pos: torch.Tensor | None = None  # [B]: next position per row
        self.seen: torch.Tensor | None = None  # [capacity, D]: input embeddings whose KV is cached (batch 1)
        self.reused = 0  # positions the last prefill took from the cache (for benchmarks and tests)
        self.prompt_len = 0  # positions of the last prefill's prompt (their KV stays valid after decoding)

    def prefix_state(self) -> dict[str, torch.Tensor] | None:
        """The KV of the last prompt (batch 1) as tensors to save: k, v [layers, 1, H_kv, n, d] and the
        input embeddings they were computed from, seen [n, D] (what `_common_prefix` compares)."""
        n = self.prompt_len
        if self.k is None or self.seen is None or self.k.shape[1] != 1 or n == 0 or self.length < n:
            return None
        return {"k": self.k[:, :, :, :n].clone(), "v": self.v[:, :, :, :n].clone(), "seen": self.seen[:n].clone()}

    def load_prefix(self, state: dict[str, torch.Tensor]) -> int:
        """Puts a saved prompt's KV in the cache: the next prefill reuses its longest common prefix
        with the new prompt (compared on the embeddings, so any other prompt just reuses less).
        Returns the positions loaded (0 if the state does not fit this decoder)."""
        k, v, seen = state["k"], state["v"], state["seen"]
        n = int(seen.shape[0])
        want = (len(self.layers), 1, self.kv_heads, n, self.head_dim)
        if tuple(k.shape) != want or tuple(v.shape) != want or k.dtype != self.act or seen.dtype != self.embed.dtype or n >= self.max_len:
            return 0
        self._reserve(1, n + 1, 0)
        self.k[:, :, :, :n], self.v[:, :, :, :n], self.seen[:n] = k, v, seen
        self.length = self.prompt_len = n
        return n

    def _fuse(self, layer: nn.Module) -> _Layer:
        a, m = layer.self_attn, layer.mlp
        lin = self._linear
        return _Layer(
            norm1=layer.input_layernorm.weight.float(),
            qkv=lin(torch.cat([_weight(a.q_proj), _weight(a.k_proj), _weight(a.v_proj)])),
            o=lin(_weight(a.o_proj)),
            norm2=layer.post_attention_layernorm.weight.float(),
            gate_up=lin(torch.cat([_weight(m.gate_proj), _weight(m.up_proj)])),
            down=lin(_weight(m.down_proj)),
        )

    def _linear(self, w: torch.Tensor) -> Linear:
        ort = self.engine == "onnxruntime"  # its steps use the 8-bit blocks; fbgemm's copy is not kept
        return Linear(w, self.dtype, self.quantize and not ort, blocks=ort)

    def _rope_tables(self, model: PreTrainedModel) -> tuple[torch.Tensor, torch.Tensor]:
        """cos [L, d] and sin [L, d] with the first half negated, so that rotate_half(x) * sin is
        x.roll(d / 2) * sin: one op instead of chunk, neg and cat per call."""
        probe = torch.zeros(1, 1, self.head_dim, dtype=torch.float32)
        cos, sin = model.model.rotary_emb(probe, torch.arange(self.max_len)[None])  # [1, L, d]
        sign = torch.ones(self.head_dim)
        sign[: self.head_dim // 2] = -1
        return cos[0].to(self.act), (sin[0] * sign).to(self.act)

    # --- Decoder protocol ----------------------------------------------------------------------

    @torch.inference_mode()
    def prefill(self, embeds: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int = 256) -> torch.Tensor:
        b, t, _ = embeds.shape
        if t + max_new_tokens > self.max_len:
            raise ValueError(f"{t} prompt + {max_new_tokens} new tokens exceed the model's {self.max_len} positions")
        padded = not bool(attention_mask.all())
        keep = self._common_prefix(embeds) if b == 1 and not padded and self.reuse_prefix else 0
        self._reserve(b, t + max_new_tokens, keep)
        self.valid[:, :t] = attention_mask.bool()
        self.valid[:, t:] = False
        pos = (attention_mask.long().cumsum(1) - 1).clamp(min=0)  # [B, T]
        self.pos = pos[:, -1:] + 1  # [B, 1]
        if padded:  # [B, 1, T, T]: causal and not a pad key
            mask = torch.ones(t, t, dtype=torch.bool).tril() & attention_mask.bool()[:, None, None, :]
        elif keep:  # [T - keep, T]: the new rows see the cached prefix and themselves causally
            mask = torch.ones(t - keep, t, dtype=torch.bool).tril(diagonal=keep)
        else:
            mask = None  # plain causal: the fast SDPA path
        h = self._forward(embeds[:, keep:].to(self.act), pos[:, keep:], keep, mask, causal=mask is None)
        if b == 1:
            self.seen[:t] = embeds[0]
        self.length, self.reused, self.prompt_len = t, keep, t
        return self.lm_head(h[:, -1]).float()  # [B, V]

    def forget(self) -> None:
        """Drops the cached prefix: the next prefill computes every position (cold)."""
        self.length = 0

    def path(self) -> str:
        """This decoder's kernels, as `mmagent models doctor` and the benchmarks name them."""
        return path_name(self.quantize, str(self.dtype).removeprefix("torch."), self.engine)

    def _common_prefix(self, embeds: torch.Tensor) -> int:
        """Leading positions whose cached KV was computed from exactly these embeddings (at most
        T - 1: the last position is always run, its logits are the answer)."""
        if self.seen is None or self.k is None or self.k.shape[1] != 1:
            return 0
        n = min(self.length, embeds.shape[1] - 1)
        if n <= 0 or self.seen.dtype != embeds.dtype:
            return 0
        same = (self.seen[:n] == embeds[0, :n]).all(dim=-1)  # [n]
        return n if bool(same.all()) else int((~same).nonzero()[0])

    def _reserve(self, b: int, need: int, keep: int) -> None:
        """KV buffers [layers, B, H_kv, capacity, d] for `need` positions, keeping the first `keep`.
        Capacity grows in 512-token steps (a 2k context is ~90 MB at fp32 for SmolLM2-135M), so a
        turn of several steps reallocates rarely; never past the model's positions."""
        if keep and self.k is not None and need <= self.capacity:
            return
        cap = min(self.max_len, -(-need // 512) * 512)
        shape = (len(self.layers), b, self.kv_heads, cap, self.head_dim)
        k, v = torch.empty(shape, dtype=self.act), torch.empty(shape, dtype=self.act)
        seen = torch.empty(cap, self.embed.shape[1], dtype=self.embed.dtype) if b == 1 else None
        if keep:
            k[:, :, :, :keep], v[:, :, :, :keep] = self.k[:, :, :, :keep], self.v[:, :, :, :keep]
            seen[:keep] = self.seen[:keep]
        self.k, self.v, self.seen, self.capacity = k, v, seen, cap
        self.valid = torch.zeros(b, cap, dtype=torch.bool)

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.length >= self.capacity:
            raise ValueError(f"the KV cache holds {self.capacity} tokens; prefill with a larger max_new_tokens")
        e = F.embedding(tokens[:, None], self.embed)  # [B, 1, D]
        if self.seen is not None:
            self.seen[self.length] = e[0, 0]
        x = e.to(self.act)
        self.valid[:, self.length] = True
        mask = None if bool(self.valid[:, : self.length + 1].all()) else self.valid[:, None, None, : self.length + 1]
        if self.engine == "onnxruntime" and mask is None and x.shape[0] == 1:  # position = length: batch 1, no padding
            logits = self._step_graph()(x, self.length, self.k, self.v)
        else:
            logits = self.lm_head(self._forward(x, self.pos, self.length, mask, causal=False)[:, -1]).float()
        self.pos = self.pos + 1
        self.length += 1
        return logits  # [B, V]

    # --- the math ------------------------------------------------------------------------------

    def _forward(self, x: torch.Tensor, pos: torch.Tensor, start: int, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        """x [B, T, D] at cache slots start..start+T (positions `pos` [B, T]) -> hidden [B, T, D]."""
        cos, sin = self.cos[pos][:, None], self.sin[pos][:, None]  # [B, 1, T, d]
        for i, layer in enumerate(self.layers):
            x = x + self._attention(i, layer, self._norm(x, layer.norm1), cos, sin, start, mask, causal)
            g, u = layer.gate_up(self._norm(x, layer.norm2)).chunk(2, dim=-1)
            x = x + layer.down(F.silu(g) * u)  # SwiGLU (Shazeer 2020, arXiv 2002.05202)
        return self._norm(x, self.final_norm)

    def _attention(self, i: int, layer: _Layer, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                   start: int, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        b, t, _ = h.shape
        d, nq, nkv = self.head_dim, self.heads, self.kv_heads
        qkv = layer.qkv(h).view(b, t, nq + 2 * nkv, d).transpose(1, 2)  # [B, H + 2 H_kv, T, d]
        qk = qkv[:, : nq + nkv]
        qk = torch.addcmul(qk * cos, qk.roll(d // 2, dims=-1), sin)  # RoPE on q and k at once
        end = start + t
        self.k[i][:, :, start:end] = qk[:, nq:]
        self.v[i][:, :, start:end] = qkv[:, nq + nkv:]
        out = F.scaled_dot_product_attention(qk[:, :nq], self.k[i][:, :, :end], self.v[i][:, :, :end], attn_mask=mask,
                                             is_causal=causal and t > 1, enable_gqa=nq != nkv)  # [B, H, T, d]
        return layer.o(out.transpose(1, 2).reshape(b, t, nq * d))  # [B, T, D]

    def _norm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """RMSNorm (Zhang & Sennrich 2019) computed in fp32, as the reference implementation does."""
        return F.rms_norm(x.float(), (x.shape[-1],), w, self.eps).to(self.act)
