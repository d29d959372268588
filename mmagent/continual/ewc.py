"""EWC on the LoRA parameters: stay close to the serving adapter where it matters for old data.

Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks" (PNAS 2017):

    L_ewc = lam/2 * sum_i F_i (theta_i - theta*_i)^2

theta* are the serving adapter's LoRA weights (the warm start), F the diagonal empirical Fisher
estimated on the base instruction data (mean squared gradient of the loss over a few batches).
Only the LoRA parameters train, so F and theta* are as small as the adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


def lora_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The trainable LoRA parameters by name (A: [r, d_in], B: [d_out, r])."""
    return {n: p for n, p in model.named_parameters() if "lora_" in n and p.requires_grad}


def fisher_diagonal(
    model: torch.nn.Module, batches: Iterable[Any], loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Mean over batches of grad^2 for every trainable LoRA parameter (model left with no grads)."""
    params = lora_parameters(model)
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    n_batches = 0
    was_training = model.training
    model.eval()  # no dropout: the Fisher of the deterministic model
    for batch in batches:
        model.zero_grad(set_to_none=True)
        loss_fn(model, batch).backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach().pow(2)
        n_batches += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    if n_batches == 0:
        raise ValueError("EWC needs at least one batch of base instruction data to estimate the Fisher")
    return {n: f / n_batches for n, f in fisher.items()}


class EWCRegularizer:
    """A `penalty(model) -> scalar` term for the trainer: lam/2 * sum F (theta - theta*)^2."""

    def __init__(self, model: torch.nn.Module, fisher: dict[str, torch.Tensor], lam: float = 100.0):
        self.anchor = {n: p.detach().clone() for n, p in lora_parameters(model).items()}
        # Normalise so that lam means the same for any model size: mean Fisher = 1.
        total = sum(f.sum() for f in fisher.values())
        count = sum(f.numel() for f in fisher.values())
        scale = (count / total).item() if total > 0 else 1.0
        self.fisher = {n: f * scale for n, f in fisher.items()}
        self.lam = lam

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        terms = [
            (self.fisher[n].to(p) * (p - self.anchor[n].to(p)).pow(2)).sum()
            for n, p in lora_parameters(model).items()
            if n in self.fisher
        ]
        if not terms:
            return torch.zeros(())
        return 0.5 * self.lam * torch.stack(terms).sum()
