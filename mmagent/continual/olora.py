"""O-LoRA: learn each new feedback batch in a LoRA subspace orthogonal to the earlier ones.

Wang et al., "Orthogonal Subspace Learning for Language Model Continual Learning" (EMNLP 2023
Findings, arXiv 2310.14152). Earlier updates `B_p A_p` stay frozen; the new update `B_n A_n` is
trained with the extra loss

    L_orth = sum over adapted modules ||A_n A_p^T||_F^2        # A_n [r_n, d_in], A_p [r_p, d_in]

so the rows the new adapter reads from the input are pushed away from those of earlier tasks and
the new gradient steps interfere less with what the earlier adapter does.

Here the previous adapter is merged into the base weights for training (exactly what serving
computes), and afterwards the two are stacked into ONE ordinary peft adapter of rank r_p + r_n:

    B_p A_p * s_p + B_n A_n * s_n = [B_p, B_n * s_n / s_p] [A_p; A_n] * s_p

so a version is always a single adapter folder that any loader can read.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from mmagent.continual.ewc import lora_parameters

_A = ".lora_A."
_B = ".lora_B."


def previous_A(adapter_dir: Path) -> dict[str, torch.Tensor]:
    """Frozen A matrices of a saved adapter, keyed by the module path they adapt. Each [r_p, d_in]."""
    state = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
    return {_module_key(k): v.float() for k, v in state.items() if _A in k}


def orthogonal_penalty(model: torch.nn.Module, prev: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum ||A_n A_p^T||_F^2 over modules that both adapters adapt (a scalar; grads flow to A_n)."""
    terms = []
    for name, p in lora_parameters(model).items():
        if _A not in name:
            continue
        a_p = prev.get(_module_key(name))
        if a_p is not None and a_p.shape[1] == p.shape[1]:
            terms.append((p @ a_p.to(p).T).pow(2).sum())  # [r_n, r_p]
    if not terms:
        return torch.zeros((), requires_grad=False)
    return torch.stack(terms).sum()


class OrthogonalRegularizer:
    """A `penalty(model) -> scalar` term for the trainer: lam * L_orth."""

    def __init__(self, prev_adapter: Path, lam: float = 0.5):
        self.prev = previous_A(prev_adapter)
        self.lam = lam
        if not self.prev:
            raise ValueError(f"{prev_adapter} has no LoRA A weights; O-LoRA needs a previous LoRA adapter")

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        return self.lam * orthogonal_penalty(model, self.prev)


def stack_adapters(prev_dir: Path, new_dir: Path, out_dir: Path) -> Path:
    """Writes one adapter of rank r_p + r_n equal to prev + new (see the module docstring)."""
    prev_cfg, new_cfg = _config(prev_dir), _config(new_dir)
    if prev_cfg.get("use_rslora") or new_cfg.get("use_rslora"):
        raise ValueError("stacking rsLoRA adapters is not supported; train O-LoRA with use_rslora=False")
    s_p = prev_cfg["lora_alpha"] / prev_cfg["r"]
    s_n = new_cfg["lora_alpha"] / new_cfg["r"]
    prev = load_file(str(Path(prev_dir) / "adapter_model.safetensors"))
    new = load_file(str(Path(new_dir) / "adapter_model.safetensors"))
    if set(prev) != set(new):
        raise ValueError("O-LoRA stacking needs both adapters on the same modules (same target_modules)")
    out = {}
    for k in prev:
        if _A in k:
            out[k] = torch.cat([prev[k], new[k].to(prev[k].dtype)], dim=0)  # [r_p + r_n, d_in]
        elif _B in k:
            out[k] = torch.cat([prev[k], new[k].to(prev[k].dtype) * (s_n / s_p)], dim=1)  # [d_out, r_p + r_n]
        else:
            out[k] = new[k]  # modules_to_save etc.: the newest copy wins
    rank = prev_cfg["r"] + new_cfg["r"]
    cfg = {**prev_cfg, "r": rank, "lora_alpha": s_p * rank}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(out, str(out_dir / "adapter_model.safetensors"))
    (out_dir / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
    return out_dir


def _config(adapter_dir: Path) -> dict:
    return json.loads((Path(adapter_dir) / "adapter_config.json").read_text())


def _module_key(param_name: str) -> str:
    """'base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight' -> '...layers.0.self_attn.q_proj'.

    Both in-memory names (with an adapter name) and saved names (without) map to the same key.
    """
    head = param_name.split(".lora_")[0]
    return head.removeprefix("base_model.model.")
