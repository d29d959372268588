"""The LLM backbone: any Hugging Face causal LM, addressed by catalog name, local path or hub id.

The embedded SmolLM2 ships as a Q4_1 GGUF. transformers can read GGUF but dequantizing takes
12-17 s and 1.2 GB, so it is done once at provisioning (`mmagent.hub.convert`) and saved as fp32
safetensors (`<model>/hf/`), which reloads in well under a second.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from mmagent.config import Settings, apply_thread_policy, get_settings, torch_dtype
from mmagent.hub.catalog import CATALOG, EmbeddedSource, HubSource, ModelEntry

if TYPE_CHECKING:  # transformers is imported where a model is built: `backbone_path` must stay light
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


def backbone_path(entry: ModelEntry, settings: Settings | None = None) -> str:
    """Where `from_pretrained` should look for this entry's weights."""
    if isinstance(entry.source, EmbeddedSource):
        from mmagent.hub.provision import ensure

        return str(ensure(entry, settings) / "hf")
    if isinstance(entry.source, HubSource):
        return entry.source.repo_id
    return str(entry.source.path)


def load_causal_lm(
    spec: str = "smollm2-135m-instruct", settings: Settings | None = None, dtype: torch.dtype | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Loads (model, tokenizer) in eval mode on the configured device and dtype."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = settings or get_settings()
    apply_thread_policy(settings)
    entry = CATALOG.resolve(spec, kind="llm")
    path = backbone_path(entry, settings)
    from mmagent.hub.loading import hf_loading

    with hf_loading():
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch_dtype(settings))
    model.to(settings.device).eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok
