"""Throughput of the LoRA tool-tuning stage.

CPU (always): the embedded default (SmolLM2-135M + LoRA r=16 on q,k,v,o,gate,up,down) on one
micro-batch of generated conversations, forward + backward, side by side in one process:
  baseline   every row carries the whole tool prompt, one conversation per row, fp32
  +share     the tool prompt runs once per micro-batch, its KV cache shared by all rows
  +pack      ... and conversations packed several to a row
  +bf16      ... under bf16 autocast
  +bf16 weights  ... with the frozen weights stored in bf16 (`frozen_weights_in`: autocast's casts, once)
Throughput counts the tokens the model is trained on as full sequences (prefix + conversation per
example), so the variants are compared on the same work.

GPU (when CUDA is present): a ~1.1B Llama-architecture model with random weights (TinyLlama
shape) in bf16 with LoRA: tokens/s, MFU and peak memory. MFU counts 4·N FLOPs per token (forward
2N + backward through frozen weights 2N: LoRA computes no weight gradients for them) plus attention,
against the GPU's dense bf16 peak.

    .venv/bin/python bench/train.py [--threads 1 2] [--examples 8] [--reps 3] [--from 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def cpu_rows(threads: int, n_examples: int, reps: int, first: int = 0) -> list[tuple[str, float, float, float]]:
    from mmagent.recipes.tool_tuning import load_conversations
    from mmagent.training.backbone import build_backbone, frozen_weights_in
    from mmagent.training.batching import collate, pack
    from mmagent.training.config import ToolTuningConfig
    from mmagent.training.data import encode_all, tool_schemas
    from mmagent.training.loss import AssistantLoss
    from mmagent.training.sequences import system_prefix

    cfg = ToolTuningConfig(data={"n_train": n_examples})  # text-only SmolLM2 + a fresh LoRA r=16
    bb = build_backbone(cfg)
    torch.set_num_threads(threads)  # after the load, which applies the serving thread policy (settings.threads)
    tools = tool_schemas()
    prefix = system_prefix(bb.tok, tools)
    data = [s.enc for s in encode_all(bb, load_conversations(cfg, "train", n_examples), tools, prefix)]
    full_tokens = sum(len(prefix) + len(e.ids) for e in data)
    rows = []
    variants = [("baseline (full rows, fp32)", False, False, False, False), ("+share prefix KV", True, False, False, False),
                ("+pack", True, True, False, False), ("+bf16 autocast", True, True, True, False),
                ("+bf16 frozen weights", True, True, True, True)][first:]
    times: dict[str, list[float]] = {v[0]: [] for v in variants}
    for rep in range(reps + 1):  # interleaved, so load changes on a shared machine hit every variant; the first is warm-up
        for name, share, packed, bf16, frozen in variants:
            loss_fn = AssistantLoss(bb.llm, share_prefix=share)
            b = collate(prefix, pack(data, 1024) if packed else [[e] for e in data], 1024, bb.tok.pad_token_id)
            with frozen_weights_in(bb, torch.bfloat16 if frozen else torch.float32):
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss, n = loss_fn(b.prefix, b.input_ids, b.labels, b.position_ids, b.attention_mask)
                (loss / n).backward()
                bb.llm.zero_grad(set_to_none=True)
                if rep:
                    times[name].append(time.perf_counter() - t0)
    for name, *_ in variants:
        med = statistics.median(times[name])
        rows.append((name, med, full_tokens / med, n_examples / med))
    return rows


def gpu_row(seq: int = 1024, batch: int = 8, reps: int = 5) -> dict[str, float] | None:
    if not torch.cuda.is_available():
        return None
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                      num_key_value_heads=4, max_position_embeddings=2048)
    model = LlamaForCausalLM(cfg).to("cuda", torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    model.gradient_checkpointing_enable() if os.environ.get("BENCH_CKPT") else None
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(reps + 2):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times[2:])
    tokens = batch * seq
    attn = 4 * cfg.num_hidden_layers * cfg.hidden_size * seq  # QK^T + AV, fwd + bwd-through, per token (causal halves 6x -> ~4x)
    flops = (4 * n_params + attn) * tokens
    name = torch.cuda.get_device_name()
    peak = 989e12 if "H100" in name or "H200" in name else 312e12 if "A100" in name else float("nan")
    return {"device": name, "params": n_params, "tokens_per_s": tokens / med, "mfu": flops / med / peak,
            "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9, "step_s": med}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="one table per count (e.g. --threads 1 2: side by side)")
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--from", dest="first", type=int, default=0,
                    help="skip the first N CPU variants (the full-row baseline takes minutes at 8 examples); speedups are then relative to the first run")
    a = ap.parse_args()
    first_base = None
    for threads in [] if a.skip_cpu else a.threads:
        rows = cpu_rows(threads, a.examples, a.reps, a.first)
        base = rows[0][1]
        first_base = first_base or base
        print(f"\nLoRA tool tuning, SmolLM2-135M, CPU, {threads} threads, micro-batch of {a.examples} conversations, median of {a.reps}")
        print("| variant | step s | tokens/s | examples/s | speedup | vs the first table's first row |\n|---|---|---|---|---|---|")
        for name, s, tps, eps in rows:
            print(f"| {name} | {s:.2f} | {tps:.0f} | {eps:.2f} | {base / s:.2f}x | {first_base / s:.2f}x |")
    g = gpu_row()
    if g is None:
        print("\nGPU: no CUDA device here; the ~1B bf16 LoRA measurement (tokens/s, MFU, peak memory) did not run.")
    else:
        print(f"\nGPU {g['device']}: ~{g['params'] / 1e9:.2f}B Llama, bf16 LoRA r=16: {g['tokens_per_s']:.0f} tokens/s, "
              f"MFU {100 * g['mfu']:.1f}%, peak memory {g['peak_mem_gb']:.1f} GB, step {g['step_s']:.3f} s")


if __name__ == "__main__":
    main()
