# Launch: .venv/bin/mmagent train tool-tuning --config recipes/configs/tools-embedded-default.yaml
"""Tool-calling instruction tuning (LLaVA stage 2 / GPT4Tools-style): LoRA on the LLM.

Conversations from `recipes/data.py` are rendered exactly as the backends render them at serving
time (`mmagent.protocol.toolcall.template_messages` + the model's chat template), and only the assistant
turns are trained (`mmagent/training/sequences.py`). The system prompt (the tool list) is shared by every
conversation: it runs once per micro-batch and its KV cache serves all rows; conversations are
packed several to a row behind it. A record may bring its own tools (open-world data,
`recipes/open_world.py`): its system turn lists them; such conversations are grouped within a step
and run behind the part of the system turn they share, each carrying the rest of its own untrained
(`common_head`), which computes exactly what its full sequence would.

LoRA (Hu et al. 2021, arXiv 2106.09685) through peft on the attention and MLP projections; AdamW,
linear warmup then cosine decay; gradient accumulation; bf16 autocast or fp32; checkpoints with
optimizer state every `save_every` steps and automatic resume; the loss curve saved as PNG.
Several GPUs or nodes: the same script under `accelerate launch` / `torchrun`: each step's
conversations are dealt out over the processes (every process gets the same number of
micro-batches), gradients are reduced by accelerate and the loss is normalised by the step's
target tokens over all processes, so a step is the same whatever the number of processes.

The parts the learning loop shares (`mmagent/continual/update.py`) are the training library,
`mmagent.training`: settings, encoding and labels, batching and packing, the loss, the optimizer,
checkpoints and the export. This recipe is the run around them: the data generator, the
distributed step loop, validation, metrics and the loss curve.

Output folder (`out`):
    checkpoints/step-NNNNN/   adapter (peft format) + trainer_state.pt; `checkpoints/latest` names the newest
    adapter/                  the final adapter (peft format, `adapter_dtype`) + recipe.yaml
    metrics.jsonl, loss.png   one line per logged step; the curve
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mmagent.model.cpu import training_precision
from mmagent.training.backbone import Backbone, build_backbone
from mmagent.training.batching import (
    PackedBatch,
    batches_for_step,
    make_batches,
    target_tokens,
)
from mmagent.training.checkpoint import load_checkpoint, save_checkpoint
from mmagent.training.config import ToolTuningConfig, dump_yaml
from mmagent.training.data import Conversation, Sample, encode_all, tool_schemas
from mmagent.training.data import load_conversations as load_from
from mmagent.training.export import export
from mmagent.training.loss import AssistantLoss
from mmagent.training.optim import optimizer
from mmagent.training.sequences import system_prefix

if TYPE_CHECKING:
    from accelerate import Accelerator

log = logging.getLogger(__name__)


def generate_base(split: str, n: int, seed: int) -> list[Any]:
    """The built-in instruction data of a split, made in memory (`recipes/data.py`)."""
    from mmagent.recipes.data import generate

    return generate(split, n, seed)


def load_conversations(cfg: ToolTuningConfig, split: str, n: int) -> list[Conversation]:
    """The run's conversations of a split: from `data.dir` if set, else generated from the seed."""
    return load_from(cfg, split, n, generate_base)


# --------------------------------------------------------------------------- curves


def plot_curves(metrics: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot(*zip(*train), label="train (assistant tokens)")
    if val:
        ax.plot(*zip(*val), "o-", label="validation")
    ax.set_xlabel("optimizer step"), ax.set_ylabel("loss (nats/token)"), ax.set_yscale("log"), ax.legend(), ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- the loop


@torch.no_grad()
def validation_loss(loss_fn: AssistantLoss, bb: Backbone, prefix: list[int], data: list[Sample], cfg: ToolTuningConfig, autocast) -> float:
    tot, n = 0.0, 0
    per = math.ceil(cfg.batch_size / cfg.grad_accum)
    for k in range(0, len(data), per):
        for b, px in make_batches(bb, prefix, data[k : k + per], cfg):
            with autocast():
                l, c = loss_fn(b.prefix, b.input_ids, b.labels, b.position_ids, b.attention_mask, px)
            tot, n = tot + l.item(), n + int(c)
    return tot / max(n, 1)


def step_tokens(acc: Accelerator, batches: list[tuple[PackedBatch, torch.Tensor | None]]) -> int:
    """Target tokens of the step on all processes (at least 1): the loss is a mean over all of them."""
    n = target_tokens(batches)
    return max(1, int(acc.reduce(torch.tensor(n, device=acc.device), "sum")))


def train(cfg: ToolTuningConfig, on_step: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Runs (or resumes) the recipe; returns the exported result folder. `on_step` gets each
    optimizer step's metrics row (the CLI's progress bar). Under torchrun the process group ends
    with the run (one run per launch)."""
    from accelerate import Accelerator

    torch.set_num_threads(cfg.threads)
    precision = training_precision(cfg.precision)
    acc = Accelerator(mixed_precision="bf16" if precision == "bf16" else "no", cpu=not torch.cuda.is_available())
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(dump_yaml(cfg))
    bb = build_backbone(cfg)
    bb.llm.to(acc.device), bb.mm.to(acc.device) if bb.mm is not None else None
    if cfg.gradient_checkpointing:
        bb.llm.gradient_checkpointing_enable()
    tools = tool_schemas()
    prefix = system_prefix(bb.tok, tools)
    train_data = encode_all(bb, load_conversations(cfg, "train", cfg.data.n_train), tools, prefix)
    val_data = encode_all(bb, load_conversations(cfg, "validation", cfg.data.n_validation), tools, prefix)
    log.info("prefix %d tokens; %d train conversations, mean suffix %.0f tokens", len(prefix), len(train_data),
             sum(len(e.ids) for e in train_data) / len(train_data))
    params = bb.trainable()
    opt, sched = optimizer(params, cfg)
    start = load_checkpoint(out, bb, cfg, opt, sched) if cfg.resume else 0
    # The schedule is not prepared: it counts optimizer steps of the whole batch, while accelerate's
    # wrapper steps it once per process (for per-process batches), running it N times too fast.
    loss_fn, opt = acc.prepare(AssistantLoss(bb.llm, bb.mm, cfg.share_prefix), opt)
    metrics = (out / "metrics.jsonl").open("a")
    for step in range(start, cfg.steps):
        t0 = time.perf_counter()
        micro = batches_for_step(train_data, step, cfg, acc.process_index, acc.num_processes)
        # One pass per micro-batch on built-in data; a micro-batch that also holds conversations with
        # their own tools is two passes (`make_batches`). Each pass has its own backward and only the
        # step's last one syncs, so processes may run different numbers of them.
        batches = [part for m in micro for part in make_batches(bb, prefix, m, cfg)]
        n_total = step_tokens(acc, batches)
        loss_sum, tokens = 0.0, 0
        for k, (b, px) in enumerate(batches):
            # Gradients accumulate locally; only the step's last backward needs DDP's all-reduce.
            with acc.no_sync(loss_fn) if k + 1 < len(batches) else contextlib.nullcontext():
                with acc.autocast():
                    l, _ = loss_fn(b.prefix, b.input_ids, b.labels, b.position_ids, b.attention_mask, px)
                # DDP averages the processes' gradients: scaling by their number makes the result the
                # gradient of the step's summed loss over its tokens on all processes, as on one.
                acc.backward(l * acc.num_processes / n_total)
            loss_sum, tokens = loss_sum + l.item(), tokens + b.n_tokens + b.prefix.numel()
        acc.clip_grad_norm_(params, cfg.grad_clip)
        opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
        loss_sum, tokens = acc.reduce(torch.tensor([loss_sum, tokens], dtype=torch.float64, device=acc.device), "sum").tolist()
        dt = time.perf_counter() - t0
        row: dict[str, Any] = {"step": step + 1, "loss": loss_sum / n_total, "lr": sched.get_last_lr()[0],
                               "seconds": round(dt, 3), "tokens_per_s": round(tokens / dt, 1), "examples_per_s": round(cfg.batch_size / dt, 2)}
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and val_data:
            row["val_loss"] = validation_loss(acc.unwrap_model(loss_fn), bb, prefix, val_data, cfg, acc.autocast)
        if acc.is_main_process:
            metrics.write(json.dumps(row) + "\n"), metrics.flush()
            if on_step is not None:
                on_step(row)
            if (step + 1) % cfg.log_every == 0:
                log.info("step %d loss %.4f lr %.2e %.1f s (%.0f tok/s)", step + 1, row["loss"], row["lr"], dt, row["tokens_per_s"])
            if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps:
                save_checkpoint(out, step + 1, bb, cfg, opt, sched)
                plot_curves(out / "metrics.jsonl", out / "loss.png")
    if val_data and acc.is_main_process and not (cfg.eval_every and cfg.steps % cfg.eval_every == 0):
        # The bare module: the DDP wrapper's forward syncs buffers with processes that are not here.
        val = validation_loss(acc.unwrap_model(loss_fn), bb, prefix, val_data, cfg, acc.autocast)
        metrics.write(json.dumps({"step": cfg.steps, "val_loss": val}) + "\n")
    metrics.close()
    result = out / "export"
    if acc.is_main_process:
        plot_curves(out / "metrics.jsonl", out / "loss.png")
        export(bb, cfg, result)
    acc.wait_for_everyone()  # the result exists on every rank's return
    # A process that exits with its gloo group alive can abort (SIGABRT) in interpreter teardown.
    acc.end_training()
    return result


def main(argv: list[str] | None = None) -> None:
    import argparse

    from mmagent.recipes.recipe_config import load_config

    ap = argparse.ArgumentParser(description="LoRA tool-calling instruction tuning (see recipes/configs/tools-*.yaml)")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("overrides", nargs="*", help="key=value (dotted keys, YAML values)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(train(load_config(ToolTuningConfig, a.config, a.overrides)))


if __name__ == "__main__":
    main()
