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
the step loop (`loop.py`, distributed here through accelerate), checkpoints and the export. This
recipe is the run around them: the data generator, validation, metrics and the loss curve.

Output folder (`out`):
    checkpoints/step-NNNNN/   adapter (peft format) + trainer_state.pt; `checkpoints/latest` names the newest
    adapter/                  the final adapter (peft format, `adapter_dtype`) + recipe.yaml
    metrics.jsonl, loss.png   one line per logged step; the curve
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mmagent.model.cpu import training_precision
from mmagent.training.backbone import Backbone, build_backbone
from mmagent.training.batching import make_batches
from mmagent.training.config import ToolTuningConfig, dump_yaml
from mmagent.training.data import Conversation, Sample, encode_all, tool_schemas
from mmagent.training.data import load_conversations as load_from
from mmagent.training.export import export
from mmagent.training.loop import checkpoint_due, train_steps
from mmagent.training.loss import AssistantLoss
from mmagent.training.sequences import system_prefix

if TYPE_CHECKING:  # a type only; accelerate is imported when a run starts
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


def accelerator(cfg: ToolTuningConfig) -> Accelerator:
    """The run's process group: bf16 autocast where `precision` resolves to it, DDP under torchrun."""
    from accelerate import Accelerator, DistributedDataParallelKwargs

    precision = training_precision(cfg.precision)
    # A trained projector gets no gradient on a rank whose micro-batch holds no image: DDP must be
    # told that some parameters may go unused in a step, else the next step fails waiting for them.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=bool(cfg.multimodal and cfg.train_projector))
    return Accelerator(mixed_precision="bf16" if precision == "bf16" else "no", cpu=not torch.cuda.is_available(), kwargs_handlers=[ddp])


def train(cfg: ToolTuningConfig, on_step: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Runs (or resumes) the recipe; returns the exported result folder. `on_step` gets each
    optimizer step's metrics row (the CLI's progress bar). Under torchrun the process group ends
    with the run (one run per launch). The steps are the training library's loop
    (`mmagent.training.loop`, under accelerate here); this adds validation, metrics and the curve."""
    acc = accelerator(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(dump_yaml(cfg))
    bb = build_backbone(cfg)
    torch.set_num_threads(cfg.threads)  # after the load, which applies the serving thread policy (settings.threads)
    bb.llm.to(acc.device), bb.mm.to(acc.device) if bb.mm is not None else None
    if cfg.gradient_checkpointing:
        bb.llm.gradient_checkpointing_enable()
    tools = tool_schemas()
    prefix = system_prefix(bb.tok, tools)
    train_data = encode_all(bb, load_conversations(cfg, "train", cfg.data.n_train), tools, prefix)
    val_data = encode_all(bb, load_conversations(cfg, "validation", cfg.data.n_validation), tools, prefix)
    log.info("prefix %d tokens; %d train conversations, mean suffix %.0f tokens", len(prefix), len(train_data),
             sum(len(e.ids) for e in train_data) / len(train_data))
    # The bare module, not the DDP wrapper: its forward syncs buffers with processes that are not here.
    val_loss = AssistantLoss(bb.llm, bb.mm, cfg.share_prefix)
    metrics = (out / "metrics.jsonl").open("a")

    def step_done(step: int, row: dict[str, Any]) -> None:
        if cfg.eval_every and step % cfg.eval_every == 0 and val_data:
            row["val_loss"] = validation_loss(val_loss, bb, prefix, val_data, cfg, acc.autocast)
        if not acc.is_main_process:
            return
        metrics.write(json.dumps(row) + "\n"), metrics.flush()
        if on_step is not None:
            on_step(row)
        if step % cfg.log_every == 0:
            log.info("step %d loss %.4f lr %.2e %.1f s (%.0f tok/s)", step, row["loss"], row["lr"], row["seconds"], row["tokens_per_s"])
        if checkpoint_due(step, cfg):
            plot_curves(out / "metrics.jsonl", out / "loss.png")

    train_steps(bb, train_data, prefix, cfg, procs=acc, on_step=step_done)
    if val_data and acc.is_main_process and not (cfg.eval_every and cfg.steps % cfg.eval_every == 0):
        metrics.write(json.dumps({"step": cfg.steps, "val_loss": validation_loss(val_loss, bb, prefix, val_data, cfg, acc.autocast)}) + "\n")
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
