"""Adapter folders and checkpoints: what a run saves while it trains, and how it resumes.

    <out>/checkpoints/step-NNNNN/   adapter/ (peft format) + projector.safetensors (MM runs) + trainer_state.pt
    <out>/checkpoints/latest        names the newest; rewritten last and atomically, so a kill leaves the previous one valid
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmagent.training.backbone import Backbone
from mmagent.training.config import ToolTuningConfig

log = logging.getLogger(__name__)


def save_adapter(llm: nn.Module, name: str, folder: Path, dtype: str = "float32") -> Path:
    """peft-format adapter folder (loads with `mmagent.model.lora.load_adapter`); LoRA tensors only.

    `mmagent.model.lora.save_adapter` with two things a training result needs: the tensors in
    `dtype` (the shipped adapters are fp16) and a catalog-style base model name in the config.
    `save_embedding_layers=False`: the MM-LLM resizes the embeddings for its `<image>` token, and
    peft would otherwise ship the whole (tied) embedding matrix with every adapter.
    """
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = get_peft_model_state_dict(llm, adapter_name=name, save_embedding_layers=False)
    save_file({k: v.detach().to(getattr(torch, dtype)).contiguous().cpu() for k, v in state.items()}, str(folder / "adapter_model.safetensors"))
    llm.peft_config[name].save_pretrained(str(folder))
    meta = json.loads((folder / "adapter_config.json").read_text())
    meta["base_model_name_or_path"] = getattr(llm.config, "_name_or_path", "") and Path(llm.config._name_or_path).parent.name or meta.get("base_model_name_or_path")
    (folder / "adapter_config.json").write_text(json.dumps(meta, indent=2))  # a catalog-style name, not this machine's cache path
    return folder


def load_adapter_state(bb: Backbone, name: str, state: dict[str, torch.Tensor]) -> None:
    """Copies saved LoRA tensors (keys without the adapter name) into the live adapter `name`."""
    params = {n.replace(f".{name}.", "."): p for n, p in bb.llm.named_parameters() if f".{name}." in n}
    missing = set(params) - set(state)
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} adapter tensors (e.g. {min(missing)}): was it trained with other LoRA settings?")
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(state[k])


def save_checkpoint(out: Path, step: int, bb: Backbone, cfg: ToolTuningConfig, opt: torch.optim.Optimizer, sched: Any) -> Path:
    """Adapter (+ projector) + optimizer/scheduler state; `latest` is rewritten atomically last, so a kill leaves the previous one valid."""
    from safetensors.torch import save_file

    d = out / "checkpoints" / f"step-{step:05d}"
    save_adapter(bb.llm, cfg.adapter_name, d / "adapter")
    if bb.mm is not None:
        save_file({k: v.contiguous() for k, v in bb.mm.projector.state_dict().items()}, str(d / "projector.safetensors"))
    torch.save({"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, d / "trainer_state.pt")
    tmp = out / "checkpoints" / "latest.tmp"
    tmp.write_text(d.name)
    tmp.replace(out / "checkpoints" / "latest")
    return d


def load_checkpoint(out: Path, bb: Backbone, cfg: ToolTuningConfig, opt: torch.optim.Optimizer, sched: Any) -> int:
    """Restores the newest checkpoint if any; returns the step to continue from (0 if none)."""
    from safetensors.torch import load_file

    latest = out / "checkpoints" / "latest"
    if not latest.is_file():
        return 0
    d = out / "checkpoints" / latest.read_text().strip()
    load_adapter_state(bb, cfg.adapter_name, load_file(d / "adapter" / "adapter_model.safetensors"))
    if bb.mm is not None and (d / "projector.safetensors").is_file():
        bb.mm.load_projector(d / "projector.safetensors")
    state = torch.load(d / "trainer_state.pt", weights_only=True)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    log.info("resumed from %s", d)
    return int(state["step"])
