"""Decode steps of a `LlamaDecoder` on onnxruntime: one graph per step, int8 block-quantized weights.

Why: on one thread a SmolLM2-135M decode step in torch is ~30 ms, of which the int8 matmuls (fbgemm)
are about half and the rest is ~1,500 small eager ops (norms, RoPE, attention, residuals). Here the
whole step is one `InferenceSession.run`: the matmuls are onnxruntime's `MatMulNBits` (8-bit weights in
blocks of 64 (or 32) along K with a scale and zero point each; `accuracy_level=4` quantizes the activations
per block too and multiplies in int8 with VNNI / AVX2 dot products: the same class of kernel as
llama.cpp's), attention is `GroupQueryAttention` with RoPE inside, and norm + residual add are
fused (`SkipSimplifiedLayerNormalization`). 8 bits, not 4: the weights carry a merged LoRA adapter
whose deltas are smaller than a 4-bit step (the base is a dequantized Q4_1 GGUF), so 4 bits would
round much of the adapter away.

The KV cache is the decoder's own: each layer's `k[i]`, `v[i]` [1, H_kv, capacity, d] buffers are
bound in place as GQA's past and present (onnxruntime's shared-buffer mode), so prefill (torch,
float weights: compute-bound, bf16 with AMX), prefix reuse and the on-disk prompt cache work
unchanged, and a step writes its key and value at the decoder's `length`. Batch 1 only (an agent's
turn); batched or padded decoding stays on the torch path.

The graph is built from the blocks (`quantize_blocks`, cached with the decoder by
`mmagent.model.decoder_cache`) with the `onnx` package's protobuf helpers, and written beside the
decoder's cache entry (`graph_file`), so a later process opens it without importing onnx (~1 s of
its imports) or serializing 140 MB again.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)
BLOCK = 32  # the smallest block: weights per scale along K (Q4_1's and Q8_0's block in GGUF)
WIDE_BLOCK = 64  # used where K allows: 8-bit steps 1.3x faster than at 32 (fewer scales to read and apply)
BITS = 8
GRAPH_VERSION = 1  # in the saved graph's name: a graph written by other code is never opened


@functools.cache
def available() -> bool:
    """onnxruntime with the 8-bit MatMulNBits CPU kernel (1.22+) and onnx to write the graph: looked
    up, not imported (every load asks; importing onnx alone costs ~1 s)."""
    from importlib import metadata, util

    if util.find_spec("onnx") is None or util.find_spec("onnxruntime") is None:
        return False
    try:
        major, minor = (int(p) for p in metadata.version("onnxruntime").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (1, 22)


def fits(k: int) -> bool:
    """Whether a matrix with `k` input features can be blocked (every Llama width so far can)."""
    return k % BLOCK == 0


def block_size(k: int) -> int:
    """Weights per scale for a matrix with `k` input features: 64 where it divides k, else 32.
    Measured on Zen 4, 1 thread, 30 matrices of SmolLM2-135M's shapes at batch 1: 3072x576 4.26 ms at 32
    vs 3.31 at 64, 576x1536 1.58 vs 1.22 (4-bit at 32: 3.47 / 1.13). An 8-bit step over 64 weights is
    still ~8x finer than the Q4_1 base's own step over 32, so the merged adapter's deltas survive."""
    return WIDE_BLOCK if k % WIDE_BLOCK == 0 else BLOCK


def quantize_blocks(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """w [N, K] -> (q uint8 [N, K/b, b], scale float32 [N * K/b], zero point uint8 [N * K/b]) with
    b = `block_size(K)`, asymmetric per block, so that w ~= (q - zero) * scale (MatMulNBits' 8-bit layout)."""
    n, k = w.shape
    b = block_size(k)
    blocks = w.detach().float().reshape(n, k // b, b)
    lo, hi = blocks.amin(-1).clamp(max=0), blocks.amax(-1).clamp(min=0)  # 0 representable exactly
    scale = ((hi - lo) / 255).clamp(min=1e-10)  # [N, K/b]
    zero = (-lo / scale).round().clamp(0, 255)
    q = (blocks / scale[..., None]).round().add_(zero[..., None]).clamp_(0, 255)
    return q.to(torch.uint8), scale.reshape(-1), zero.to(torch.uint8).reshape(-1)


def build_graph(decoder) -> bytes:
    """The step graph of `decoder` (a `LlamaDecoder` whose linears have `blocks`), serialized.

    Inputs: x [1, S, D] float32 (embedded tokens), seqlens_k [1] int32 (= total length - 1),
    total_len int32 scalar, past_key_i / past_value_i [1, H_kv, capacity, d] per layer.
    Outputs: logits [1, 1, V] of the last position, present_key_i / present_value_i (the same buffers)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    d, nq, nkv = decoder.head_dim, decoder.heads, decoder.kv_heads
    dim = decoder.embed.shape[1]

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def matmul(x: str, lin, name: str) -> str:
        q, scale, zero = (t.numpy() for t in lin.blocks)
        n, block = q.shape[0], q.shape[2]
        k = q.shape[1] * block
        nodes.append(helper.make_node("MatMulNBits", [x, const(f"{name}.q", q), const(f"{name}.scale", scale), const(f"{name}.zero", zero)],
                                      [f"{name}.out"], name=name, domain="com.microsoft", K=k, N=n, bits=BITS, block_size=block,
                                      accuracy_level=4))
        return f"{name}.out"

    def norm(x: str, residual: str | None, weight, name: str) -> tuple[str, str]:
        """RMSNorm of x (+ residual, when given): (normalized, the sum it normalized)."""
        w = const(f"{name}.w", weight.float().numpy())
        if residual is None:
            nodes.append(helper.make_node("SimplifiedLayerNormalization", [x, w], [f"{name}.out"], axis=-1, epsilon=decoder.eps, stash_type=1))
            return f"{name}.out", x
        nodes.append(helper.make_node("SkipSimplifiedLayerNormalization", [x, residual, w], [f"{name}.out", "", "", f"{name}.sum"],
                                      domain="com.microsoft", epsilon=decoder.eps))
        return f"{name}.out", f"{name}.sum"

    half = d // 2  # GQA takes cos / sin [L, d/2]; the decoder keeps [L, d] with sin's first half negated
    const("cos", decoder.cos.float()[:, :half].numpy())
    const("sin", decoder.sin.float()[:, half:].numpy())
    kv_shape = [1, nkv, "capacity", d]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "S", dim]),
              helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, [1]),
              helper.make_tensor_value_info("total_len", TensorProto.INT32, [])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1, decoder.lm_head.blocks[0].shape[0]])]
    x, residual = "x", None
    for i, layer in enumerate(decoder.layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_{kind}_{i}", TensorProto.FLOAT, kv_shape))
            outputs.append(helper.make_tensor_value_info(f"present_{kind}_{i}", TensorProto.FLOAT, kv_shape))
        h, residual = norm(x, residual, layer.norm1, f"l{i}.norm1")
        qkv = matmul(h, layer.qkv, f"l{i}.qkv")  # packed [1, S, (H + 2 H_kv) d]: GQA splits it
        nodes.append(helper.make_node("GroupQueryAttention", [qkv, "", "", f"past_key_{i}", f"past_value_{i}", "seqlens_k", "total_len", "cos", "sin"],
                                      [f"l{i}.attn", f"present_key_{i}", f"present_value_{i}"], domain="com.microsoft",
                                      num_heads=nq, kv_num_heads=nkv, do_rotary=1, rotary_interleaved=0, scale=d ** -0.5))
        h, residual = norm(matmul(f"l{i}.attn", layer.o, f"l{i}.o"), residual, layer.norm2, f"l{i}.norm2")
        inner = layer.gate_up.blocks[0].shape[0] // 2  # gate_up is [gate; up]: 2 x inner output rows
        gate, up = f"l{i}.gate", f"l{i}.up"
        nodes.append(helper.make_node("Split", [matmul(h, layer.gate_up, f"l{i}.gate_up"), const(f"l{i}.split", np.array([inner, inner]))],
                                      [gate, up], axis=-1))
        nodes += [helper.make_node("Sigmoid", [gate], [f"{gate}.sig"]), helper.make_node("Mul", [gate, f"{gate}.sig"], [f"{gate}.silu"]),
                  helper.make_node("Mul", [f"{gate}.silu", up], [f"l{i}.act"])]  # SwiGLU
        x = matmul(f"l{i}.act", layer.down, f"l{i}.down")
    last = [const("last.start", np.array([-1])), const("last.end", np.array([2**62])), const("last.axis", np.array([1]))]
    nodes += [helper.make_node("Slice", [x, *last], ["x.last"]), helper.make_node("Slice", [residual, *last], ["residual.last"])]
    h, _ = norm("x.last", "residual.last", decoder.final_norm, "final_norm")
    nodes.append(helper.make_node("Identity", [matmul(h, decoder.lm_head, "lm_head")], ["logits"]))
    graph = helper.make_graph(nodes, "llama_decode_step", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()


class StepGraph:
    """An onnxruntime session running `build_graph`'s step on a decoder's KV buffers."""

    def __init__(self, decoder, threads: int | None = None, file: Path | None = None) -> None:
        """`file`: where this decoder's graph is saved (opened if there and readable, else written)."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # the caller's torch threads: oversubscribing 2 cores with a second pool costs 20-80x
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = self._open(file, opts) or ort.InferenceSession(self._build(decoder, file), opts, providers=["CPUExecutionProvider"])
        self.layers = len(decoder.layers)
        self.dim, self.vocab = self.session.get_inputs()[0].shape[2], self.session.get_outputs()[0].shape[2]  # D, V
        self._bound: torch.Tensor | None = None
        self._binding = None
        self._lock = threading.Lock()

    @staticmethod
    def _open(file: Path | None, opts):
        import onnxruntime as ort

        if file is None or not file.is_file():
            return None
        try:
            return ort.InferenceSession(str(file), opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - a torn or foreign file only costs a rebuild
            log.warning("decode graph %s unusable (%s); rebuilding it", file.name, err)
            file.unlink(missing_ok=True)
            return None

    @staticmethod
    def _build(decoder, file: Path | None) -> bytes:
        from mmagent.atomic import atomic_write_bytes

        graph = build_graph(decoder)
        if file is not None:
            try:
                atomic_write_bytes(file, graph)
            except OSError as err:  # a full or read-only disk costs the next process a rebuild, nothing else
                log.warning("could not write %s: %s", file, err)
        return graph

    def _bind(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Binds each layer's k[i], v[i] [1, H_kv, capacity, d] as past and present (GQA writes in place),
        and the step's own inputs and logits to buffers of this object, filled in place at every step:
        rebinding three inputs and fetching 61 outputs (`get_outputs`) cost ~0.4 ms of a ~12 ms step."""
        import onnxruntime as ort

        binding = self.session.io_binding()
        self._values = []  # the OrtValues wrap the tensors' memory (no copy); kept alive with the binding
        for i in range(self.layers):
            for kind, cache in (("key", k), ("value", v)):
                value = ort.OrtValue.ortvalue_from_numpy(cache[i].numpy())
                binding.bind_ortvalue_input(f"past_{kind}_{i}", value)
                binding.bind_ortvalue_output(f"present_{kind}_{i}", value)
                self._values.append(value)
        self._x = np.zeros((1, 1, self.dim), dtype=np.float32)  # [1, 1, D]: one token per step
        self._seqlens, self._total = np.zeros(1, dtype=np.int32), np.zeros((), dtype=np.int32)
        self._logits = np.zeros((1, 1, self.vocab), dtype=np.float32)
        for name, array in (("x", self._x), ("seqlens_k", self._seqlens), ("total_len", self._total)):
            binding.bind_cpu_input(name, array)  # wraps the array's memory: filled in place below
        binding.bind_output("logits", "cpu", 0, np.float32, list(self._logits.shape), self._logits.ctypes.data)
        self._binding, self._bound = binding, k

    def __call__(self, x: torch.Tensor, start: int, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """x [1, 1, D] float32 at position `start` (the KV before it is in k, v) -> logits [1, V]."""
        if x.shape[:2] != (1, 1):
            raise ValueError(f"the step graph runs one token of one row, got x of shape {tuple(x.shape)}")
        with self._lock:  # one binding per graph: a decoder serves one generation at a time anyway
            if self._bound is not k:
                self._bind(k, v)
            self._x[...] = x.numpy()
            self._seqlens[0] = start
            self._total[...] = start + 1
            self.session.run_with_iobinding(self._binding)
            return torch.from_numpy(self._logits[0]).clone()  # [1, V]; the buffer is the next step's
