"""The optimizer of a run: AdamW over the trainable parameters, linear warmup then cosine decay."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from mmagent.training.config import ToolTuningConfig


def lr_lambda(cfg: ToolTuningConfig) -> Callable[[int], float]:
    """The LR factor of an optimizer step: warmup to 1, then cosine down to `min_lr_ratio` at `steps`."""
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return f


def optimizer(params: Iterable[torch.nn.Parameter], cfg: ToolTuningConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW and its schedule; the schedule counts optimizer steps (checkpoints save and restore both)."""
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
