"""The result of a run: what serving loads, written through the MM-LLM's one folder writer."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from mmagent.training.backbone import Backbone
from mmagent.training.checkpoint import save_adapter
from mmagent.training.config import ToolTuningConfig, dump_yaml


def export(bb: Backbone, cfg: ToolTuningConfig, dst: Path) -> Path:
    """MM runs: a complete `MMLLM.save_pretrained`-layout folder (`mmllm_config.json` with the adapter
    active, `projector.safetensors`, `adapters/<name>/`) that `MMLLM.from_pretrained` and
    `load_chat_model` load; text-only runs: the adapter folder. Adapter tensors in `adapter_dtype`;
    `recipe.yaml` beside them says what trained it."""
    dst.mkdir(parents=True, exist_ok=True)
    save = partial(save_adapter, bb.llm, cfg.adapter_name, dtype=cfg.adapter_dtype)
    if bb.mm is None:
        save(dst)
    else:
        from mmagent.model.mmllm import write_pretrained

        write_pretrained(dst, bb.mm.config, bb.mm.projector, {cfg.adapter_name: save}, cfg.adapter_name)
    (dst / "recipe.yaml").write_text(dump_yaml(cfg))
    return dst
