"""The optimizer-step loop: the one both the tool-tuning recipe and the learning loop train with.

Tool tuning runs it under accelerate on one or several processes; a learning round runs it on one
process with extra loss terms (an EWC / O-LoRA penalty, the preference objective). Everything but
those terms is the same, so it is written once: a step's conversations (dealt out over the
processes, `batches_for_step`), one backward per forward pass with only the step's last one
synced, the loss summed over the step's target tokens on all processes (a step is the same on
any number of them), gradient clipping, AdamW + schedule, checkpoints, resume.

What differs between the callers comes in as arguments: `procs` (an `accelerate.Accelerator`,
or `OneProcess`, the same calls in plain torch), `terms` (extra losses per step) and `on_step`
(metrics, validation, progress: it sees each step's row after the step's checkpoint is saved).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from mmagent.training.backbone import Backbone, frozen_weights_in
from mmagent.training.batching import batches_for_step, make_batches, target_tokens
from mmagent.training.checkpoint import load_checkpoint, save_checkpoint
from mmagent.training.config import ToolTuningConfig
from mmagent.training.data import Sample
from mmagent.training.loss import AssistantLoss
from mmagent.training.optim import optimizer

Term = Callable[[int], torch.Tensor | None]  # step -> an extra loss to back-propagate (None: nothing this step)
StepHook = Callable[[int, dict[str, Any]], None]  # (steps done, the step's metrics row)


class Processes(Protocol):
    """What the loop asks of the process group: the part of `accelerate.Accelerator` it uses."""

    @property
    def num_processes(self) -> int: ...
    @property
    def process_index(self) -> int: ...
    @property
    def is_main_process(self) -> bool: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def mixed_precision(self) -> str: ...  # "bf16" (autocast) or "no"
    def prepare(self, *objs: Any) -> Any: ...
    def no_sync(self, model: torch.nn.Module) -> contextlib.AbstractContextManager[Any]: ...
    def autocast(self) -> contextlib.AbstractContextManager[Any]: ...
    def backward(self, loss: torch.Tensor) -> None: ...
    def clip_grad_norm_(self, parameters: Iterable[torch.nn.Parameter], max_norm: float) -> Any: ...
    def reduce(self, tensor: torch.Tensor, reduction: str = "sum") -> torch.Tensor: ...


class OneProcess:
    """One process in plain torch (no accelerate state): the learning loop's runs. `precision`
    "bf16" runs the forward passes under CPU bf16 autocast, as accelerate's `mixed_precision="bf16"`."""

    num_processes, process_index, is_main_process = 1, 0, True
    device = torch.device("cpu")  # where the loop's token counts live; the model stays where it is

    def __init__(self, precision: str = "fp32") -> None:
        self.mixed_precision = "bf16" if precision == "bf16" else "no"  # accelerate's name for it

    def prepare(self, *objs: Any) -> Any:
        return objs

    def no_sync(self, model: torch.nn.Module) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.mixed_precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm_(self, parameters: Iterable[torch.nn.Parameter], max_norm: float) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(list(parameters), max_norm)

    def reduce(self, tensor: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
        return tensor


def checkpoint_due(steps_done: int, cfg: ToolTuningConfig) -> bool:
    """Whether the loop saves a checkpoint after `steps_done` steps (every `save_every`, and the last)."""
    return steps_done % cfg.save_every == 0 or steps_done == cfg.steps


def train_steps(bb: Backbone, data: list[Sample], prefix: list[int], cfg: ToolTuningConfig, *,
                procs: Processes | None = None, terms: Mapping[str, Term] | None = None,
                on_step: StepHook | None = None) -> list[dict[str, Any]]:
    """Runs steps `[start, cfg.steps)` over the encoded `data` behind `prefix`, resuming from the newest
    checkpoint in `cfg.out` (`cfg.resume`); returns this call's metrics rows (`step`, `loss`: nats per
    target token, `lr`, throughput, and each term's value under its name).

    `terms` are added to every step's loss after the conversations' backwards, in order; single
    process only: their gradients come after the one synced backward, so DDP would not average them."""
    procs = procs or OneProcess()
    terms = dict(terms or {})
    if terms and procs.num_processes > 1:
        raise ValueError(f"extra loss terms ({', '.join(terms)}) are single-process only; this run has {procs.num_processes}")
    out = Path(cfg.out)
    params = bb.trainable()
    opt, sched = optimizer(params, cfg)
    start = load_checkpoint(out, bb, cfg, opt, sched) if cfg.resume else 0
    # The schedule is not prepared: it counts optimizer steps of the whole batch, while accelerate's
    # wrapper steps it once per process (for per-process batches), running it N times too fast.
    loss_fn, opt = procs.prepare(AssistantLoss(bb.llm, bb.mm, cfg.share_prefix), opt)
    rows: list[dict[str, Any]] = []
    # bf16 runs: frozen weights stored as autocast would cast them (see `frozen_weights_in`)
    with frozen_weights_in(bb, torch.bfloat16 if procs.mixed_precision == "bf16" else torch.float32):
        for step in range(start, cfg.steps):
            t0 = time.perf_counter()
            micro = batches_for_step(data, step, cfg, procs.process_index, procs.num_processes) if data else []
            # One pass per micro-batch on built-in data; a micro-batch that also holds conversations with
            # their own tools is two passes (`make_batches`). Each pass has its own backward and only the
            # step's last one syncs, so processes may run different numbers of them.
            batches = [part for m in micro for part in make_batches(bb, prefix, m, cfg)]
            # The loss is a mean over the step's target tokens on all processes (at least 1).
            n_total = max(1, int(procs.reduce(torch.tensor(target_tokens(batches), device=procs.device), "sum")))
            loss_sum, tokens = 0.0, 0
            for k, (b, px) in enumerate(batches):
                with procs.no_sync(loss_fn) if k + 1 < len(batches) else contextlib.nullcontext():
                    with procs.autocast():
                        l, _ = loss_fn(b.prefix, b.input_ids, b.labels, b.position_ids, b.attention_mask, px)
                    # DDP averages the processes' gradients: scaling by their number makes the result the
                    # gradient of the step's summed loss over its tokens on all processes, as on one.
                    procs.backward(l * procs.num_processes / n_total)
                loss_sum, tokens = loss_sum + l.item(), tokens + b.n_tokens + b.prefix.numel()
            values: dict[str, float] = {}
            for name, term in terms.items():
                v = term(step)
                if v is not None:
                    if v.requires_grad:  # a penalty that is constant here (nothing to anchor yet) has no gradient
                        procs.backward(v)
                    values[name] = v.item()
            procs.clip_grad_norm_(params, cfg.grad_clip)
            opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
            loss_sum, tokens = procs.reduce(torch.tensor([loss_sum, tokens], dtype=torch.float64, device=procs.device), "sum").tolist()
            dt = time.perf_counter() - t0
            row: dict[str, Any] = {"step": step + 1, "loss": loss_sum / n_total, **values, "lr": sched.get_last_lr()[0],
                                   "seconds": round(dt, 3), "tokens_per_s": round(tokens / dt, 1), "examples_per_s": round(cfg.batch_size / dt, 2)}
            if procs.is_main_process and checkpoint_due(step + 1, cfg):
                save_checkpoint(out, step + 1, bb, cfg, opt, sched)
            if on_step is not None:
                on_step(step + 1, row)
            rows.append(row)
    return rows
