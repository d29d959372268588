"""The settings of a training run (YAML: `recipes/configs/tools-*.yaml`; the learning loop builds one
per round from `UpdateConfig.recipe`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from mmagent.model.lora import LoraSettings


def _tuning_dropout(value: Any) -> Any:
    """A `lora:` mapping without `dropout` gets 0 (tool tuning's default), not the model class's 0.05:
    a field default alone would only apply when the whole block is missing, not to `{r: 8, alpha: 16}`."""
    return {"dropout": 0.0, **value} if isinstance(value, dict) else value


# The model's `LoraSettings` (one class; YAML key `target_modules`, the old `targets` still read) with dropout 0.
TuningLora = Annotated[LoraSettings, BeforeValidator(_tuning_dropout)]


class TinyLLM(BaseModel):
    """A random Llama of this shape with `model`'s tokenizer (tests and CI)."""

    model_config = ConfigDict(extra="forbid")
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128


class DataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dir: Path | None = None  # train.jsonl / validation.jsonl from recipes/data.py; None: generate in memory
    seed: int = 0
    n_train: int = Field(4000, ge=1)
    n_validation: int = Field(64, ge=0)
    # Share of tool-using conversations kept whole (last tool result + final answer); the rest end
    # at the last call. Halves the tokens per example; answering from results is still learned.
    full_fraction: float = Field(1.0, ge=0, le=1)


class ToolTuningConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = "smollm2-135m-instruct"  # catalog name, local folder or hub id (text-only runs)
    tiny: TinyLLM | None = None
    # A saved MM-LLM folder (MMLLM.save_pretrained; e.g. mmagent/weights/mmagent-default): images go
    # through its encoder + projector exactly as at serving. None: the text-only LLM `model`.
    multimodal: Path | None = None
    train_projector: bool = True  # with `multimodal`: the projector trains with the adapter (LLaVA stage 2)
    adapter_name: str = "tools"
    data: DataSettings = DataSettings()
    out: Path = Path("runs/tool-tuning")
    lora: TuningLora = Field(default_factory=lambda: LoraSettings(dropout=0.0))
    steps: int = Field(200, ge=1)
    batch_size: int = Field(16, ge=1)  # conversations per optimizer step
    # Micro-batches per step on one process (batch_size / grad_accum conversations each); several
    # processes share a step's conversations, so each runs fewer micro-batches of that size.
    grad_accum: int = Field(2, ge=1)
    lr: float = 8e-4
    warmup: int = 10
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    pack: bool = True
    max_len: int = 384  # suffix tokens per packed row
    share_prefix: bool = True
    precision: Literal["auto", "fp32", "bf16"] = "fp32"  # auto: bf16 where native (mmagent.model.cpu)
    threads: int = 2
    save_every: int = 50
    eval_every: int = 0  # 0: validation loss only at the end
    log_every: int = 1
    seed: int = 0
    resume: bool = True
    adapter_dtype: Literal["float32", "float16", "bfloat16"] = "float16"
    gradient_checkpointing: bool = False


def dump_yaml(cfg: BaseModel) -> str:
    """The settings as the YAML a run folder keeps (`recipe.yaml`): what trained it, reloadable."""
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
