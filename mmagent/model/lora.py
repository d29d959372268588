"""LoRA adapters on the LLM backbone: several named ones, switchable at run time.

LoRA (Hu et al., 2021, arXiv 2106.09685) adds a low-rank update B A (rank r, scaled by alpha / r)
beside frozen weights. Adapters are managed by peft through transformers' adapter integration,
so the backbone stays a plain `PreTrainedModel` (no wrapper class) and one adapter is active at a
time; `set_adapter(None)` runs the bare base model. Adapters save as safetensors + peft's
`adapter_config.json`, one folder per name.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # types only: transformers' modeling import costs ~2.5 s (see mmagent.model.lean_tokenizer)
    from transformers import PreTrainedModel

# r=16, alpha=32 on every projection taught SmolLM2-135M tool calls in a CPU probe (82-86% on unseen phrasings).
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoraSettings(BaseModel):
    """An adapter's shape: what `add_adapter` injects, and the `lora:` block of a training config
    (`mmagent.training.config.ToolTuningConfig`, which defaults `dropout` to 0). One class for both,
    so a setting means the same in a recipe YAML and in code. `targets` is the key older recipe
    YAMLs (and shipped `recipe.yaml` files) use for `target_modules`: still read, never written."""

    model_config = ConfigDict(extra="forbid")
    r: int = Field(default=16, ge=1)
    alpha: float = Field(default=32, gt=0)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(DEFAULT_TARGETS),
                                      validation_alias=AliasChoices("target_modules", "targets"))

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type="CAUSAL_LM")


def adapter_names(llm: PreTrainedModel) -> list[str]:
    return sorted(getattr(llm, "peft_config", {}) or {})


def add_adapter(llm: PreTrainedModel, name: str, settings: LoraSettings | None = None) -> None:
    """A new, trainable adapter `name` (B initialized to zero: the model starts unchanged)."""
    if name in adapter_names(llm):
        raise ValueError(f"adapter {name!r} already exists; pick another name or remove it first")
    with warnings.catch_warnings():  # peft warns that several adapters now coexist: that is the point
        warnings.simplefilter("ignore", UserWarning)
        llm.add_adapter((settings or LoraSettings()).peft_config(), adapter_name=name)
    set_adapter(llm, name)


def set_adapter(llm: PreTrainedModel, name: str | None) -> None:
    """Makes `name` the active adapter; None runs the base model without any adapter."""
    names = adapter_names(llm)
    if name is None:
        if names:
            llm.disable_adapters()
        return
    if name not in names:
        raise KeyError(f"no adapter named {name!r}; loaded adapters: {', '.join(names) or 'none'}")
    llm.enable_adapters()
    llm.set_adapter(name)


def adapters_enabled(llm: PreTrainedModel) -> bool:
    """Whether adapters are on (transformers keeps this flag on each LoRA layer, not the model)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layer = next((m for m in llm.modules() if isinstance(m, BaseTunerLayer)), None)
    return layer is not None and not layer.disable_adapters


def active_adapter(llm: PreTrainedModel) -> str | None:
    if not adapter_names(llm) or not adapters_enabled(llm):
        return None
    active = llm.active_adapters()
    return active[0] if active else None


def save_adapter(llm: PreTrainedModel, name: str, folder: Path) -> Path:
    """`folder/adapter_model.safetensors` + `folder/adapter_config.json` for adapter `name`."""
    from safetensors.torch import save_file

    if name not in adapter_names(llm):
        raise KeyError(f"no adapter named {name!r}; loaded adapters: {', '.join(adapter_names(llm)) or 'none'}")
    from peft.utils import get_peft_model_state_dict

    folder.mkdir(parents=True, exist_ok=True)
    # Only the adapter's own weights: with "auto", peft also saves the embedding matrix when the
    # vocab grew (MMLLM adds <image>), and with tied embeddings that tensor is shared with lm_head,
    # which safetensors refuses. The base embeddings are the catalog model's, never trained here.
    state = get_peft_model_state_dict(llm, adapter_name=name, save_embedding_layers=False)
    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    save_file(state, str(folder / "adapter_model.safetensors"))
    llm.peft_config[name].save_pretrained(str(folder))
    return folder


def check_saved_adapter(folder: Path) -> None:
    """What `load_adapter` can refuse without a model (a lean `MMLLM` records an adapter without
    loading it): the files are there and read as a LoRA adapter (a truncated safetensors file fails here)."""
    import json

    from safetensors import safe_open

    if not (folder / "adapter_model.safetensors").is_file():
        raise FileNotFoundError(f"{folder} has no adapter_model.safetensors: not a saved adapter")
    json.loads((folder / "adapter_config.json").read_text())
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        if not any("lora_" in k for k in f.keys()):  # noqa: SIM118 - safe_open has no __iter__
            raise ValueError(f"adapter {folder}: no LoRA tensors in adapter_model.safetensors")


def load_adapter(llm: PreTrainedModel, folder: Path, name: str) -> None:
    """Loads a saved adapter under `name` (inactive until `set_adapter`). A load that fails (a
    truncated file, another base model's adapter) leaves no half-loaded `name` behind and the
    active adapter as it was."""
    if not (folder / "adapter_model.safetensors").is_file():
        raise FileNotFoundError(f"{folder} has no adapter_model.safetensors: not a saved adapter")
    from safetensors import safe_open
    from transformers.utils import logging as hf_logging

    current = active_adapter(llm)
    existed = name in adapter_names(llm)
    # transformers prints a "LOAD REPORT" listing the *other* adapters' weights as missing from
    # this checkpoint (they never are in it); we check completeness ourselves below instead.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            llm.load_adapter(str(folder), adapter_name=name)
        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
            expected = sum(1 for k in f.keys() if "lora_" in k)
        loaded = sum(1 for n, _ in llm.named_parameters() if f".{name}." in n and "lora_" in n)
        if loaded != expected:
            raise ValueError(f"adapter {folder}: {expected} LoRA tensors in the file but {loaded} loaded as {name!r}: saved for another base model?")
    except BaseException:
        if not existed and name in adapter_names(llm):  # peft injects the layers before it reads the weights
            with warnings.catch_warnings():  # "adapter was active, now deleted": the active one is restored next
                warnings.simplefilter("ignore", UserWarning)
                llm.delete_adapter(name)
        set_adapter(llm, current)
        raise
    finally:
        hf_logging.set_verbosity(verbosity)
    set_adapter(llm, current)
