"""Serving an MM-LLM without building its HF model: the decoder from its cache, the tokenizer from tokenizer.json.

`MMLLM.from_pretrained` tries this first (for a saved folder over a local safetensors LLM, loaded in
fp32 with the fast decoder on): if `mmagent.model.decoder_cache` holds the fused decoder for exactly
these files, the model serves from it with a `LeanTokenizer`, and transformers' modeling stack,
peft and the HF model are never loaded. Another adapter (a version the learning loop promoted) is
served lean too when the cache holds the decoder for its bytes (`MMLLM.set_adapter`); otherwise, and
for whatever needs the real model (training, `use_cache=False`, saving), `MMLLM.llm` is built on
first use, from the same folder and the adapters recorded since, exactly as the non-lean path
would have (`MMLLM._materialize`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from mmagent.model import decoder_cache
from mmagent.model.lean_tokenizer import LeanTokenizer

log = logging.getLogger(__name__)


@dataclass
class CacheTarget:
    """Where a decoder built from a freshly loaded folder is saved for the next process, and what
    must still hold for it to be that decoder: the config the key was computed from (a caller that
    changes `decode_dtype` afterwards builds another path) and the adapter state (a training step or
    another adapter is not what the key says)."""

    folder: Path
    key: str
    llm_dir: Path  # the base LLM's local folder the key was computed from (the lean tokenizer reads it)
    config_json: str = ""
    pristine: tuple | None = None
    path: str = ""  # the decoder path the key was computed for (`decoder_path`)

    def matches(self, config) -> bool:
        return config.model_dump_json() == self.config_json

    def for_adapter(self, adapter: Path | None) -> CacheTarget | None:
        """The entry of the same base, config and decoder path with the adapter folder `adapter` active
        (None: no adapter), or None when it cannot have one."""
        key = decoder_cache.cache_key(self.llm_dir, self.config_json, adapter, self.path)
        return replace(self, key=key, pristine=None) if key else None

    @property
    def file(self) -> Path:
        return decoder_cache.entry(self.folder, self.key)


@dataclass
class LeanBackbone:
    """What serving needs of the LLM: its decoder (embeddings, weights, RoPE) and a few config values."""

    folder: Path  # the MM-LLM folder: the adapters are loaded from it when the real model is built
    settings: Any
    decoder: Any  # mmagent.model.llama_decoder.LlamaDecoder
    max_len: int
    eos_token_ids: list[int]
    where: CacheTarget | None = None  # its entry in the decoder cache: the prompt prefix is saved beside it
    prefix_saved: bool = False

    @property
    def embed(self) -> torch.Tensor:
        return self.decoder.embed  # [V, D], in the dtype the LLM was loaded in

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.embed.dtype

    @property
    def vocab_rows(self) -> int:
        return int(self.decoder.lm_head.w.shape[0])


def decoder_path(config, llm_dtype: torch.dtype) -> str:
    """The fast decoder's path for this config on this CPU over an LLM loaded in `llm_dtype`, in words."""
    from mmagent.model.llama_decoder import choose_path, path_name

    dtype, quantize, engine = choose_path(config.decode_dtype, config.prefill_dtype, llm_dtype, config.decode_kernel)
    return f"{path_name(quantize, str(dtype).removeprefix('torch.'), engine)}, LLM in {str(llm_dtype).removeprefix('torch.')}"


def llm_folder(config, settings) -> Path | None:
    """The base LLM's local folder, or None (a hub id: resolved by transformers, never lean)."""
    from mmagent.hub.catalog import CATALOG
    from mmagent.model.backbone import backbone_path

    path = Path(backbone_path(CATALOG.resolve(config.llm, kind="llm"), settings))
    return path if path.is_dir() else None


def target(folder: Path, config, settings, llm_dtype: torch.dtype) -> CacheTarget | None:
    """The cache entry a model loaded from `folder` (its LLM in `llm_dtype`) would use, if it can have one."""
    llm_dir = llm_folder(config, settings)
    if llm_dir is None:
        return None
    adapter = Path(folder) / "adapters" / config.active_adapter if config.active_adapter else None
    path, config_json = decoder_path(config, llm_dtype), config.model_dump_json()
    key = decoder_cache.cache_key(llm_dir, config_json, adapter, path)
    return CacheTarget(decoder_cache.cache_dir(settings), key, llm_dir, config_json, path=path) if key else None


def open_lean(folder: Path, config, settings, where: CacheTarget) -> tuple[LeanBackbone, LeanTokenizer] | None:
    """The lean backbone and tokenizer for `folder`, or None when the cache cannot serve it."""
    llm_dir = where.llm_dir
    tok = LeanTokenizer.load(llm_dir)
    if tok is None:
        return None
    decoder = load_decoder(where)
    if decoder is None:
        return None
    cfg = json.loads((llm_dir / "config.json").read_text())
    gen_file = llm_dir / "generation_config.json"
    eos = (json.loads(gen_file.read_text()) if gen_file.is_file() else {}).get("eos_token_id", cfg.get("eos_token_id"))
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tok.eos_token_id is not None:
        eos_ids.add(tok.eos_token_id)
    log.info("serving %s from the decoder cache (%s)", folder, decoder.path())
    return LeanBackbone(Path(folder), settings, decoder, int(cfg.get("max_position_embeddings", 2048)), sorted(eos_ids), where), tok


def load_decoder(where: CacheTarget):
    """The cached decoder of `where` with its saved prompt prefix, or None."""
    decoder = decoder_cache.load(where.folder, where.key)
    if decoder is not None:
        decoder_cache.load_prefix(where.folder, where.key, decoder)  # the last saved tool prompt's KV, if any
    return decoder


NEW_POSITIONS = 32  # a prompt that computed more than this past the saved prefix replaces it


def save_prefix_after(lean: LeanBackbone) -> None:
    """After a generation: if its prompt reused little of the saved prefix (none saved yet, or
    another tool set), its KV becomes the saved prefix, once per process, written by a thread that
    is not a daemon (a one-shot process finishes the ~30 MB write before it exits)."""
    import threading

    d = lean.decoder
    if lean.prefix_saved or lean.where is None or d.prompt_len - d.reused <= NEW_POSITIONS:
        return
    state = d.prefix_state()  # copied now: the next generation overwrites the decoder's KV
    if state is None:
        return
    lean.prefix_saved = True
    threading.Thread(target=decoder_cache.save_prefix, args=(lean.where.folder, lean.where.key, state),
                     name="mmllm-prefix-cache", daemon=False).start()
