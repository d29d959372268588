"""The fused decoder on disk: a later process loads it instead of building the model and fusing it.

Why: building `LlamaDecoder` from the HF model (LoRA merged into fused q/k/v and gate/up, bf16
copies, int8 quantization) takes ~1.6-2 s for SmolLM2-135M, and the HF model under it needs
transformers' modeling import (~2.5 s) and peft. A one-shot `mmagent run` pays all of that before
its first token. The first process that builds a decoder from a saved MM-LLM folder writes the
decoder's tensors here (safetensors: no pickle; fbgemm's packed int8 cannot be saved, so its int8
values and scales are, and packing again takes ~0.4 s); the next process with the same inputs
loads them (`mmagent.model.mmllm.MMLLM.from_pretrained`, lean mode).

The key hashes everything the tensors depend on: the base LLM's files (name, size, mtime), the
MM-LLM config, the files of the adapter being served (their bytes: the folder's own active adapter,
or a version the learning loop promoted, `MMLLM.set_adapter`), the decoder path (dtypes, int8 range,
the CPU capability that chose them) and the torch version. A file whose key or layout does not
match is ignored and replaced; writes go to a temp file renamed into place, so a killed writer
leaves no half file. At most `KEEP` entries are kept (~0.5 GB each for the default): the default's two
adapters' (`tools` and the `open-world` one its routing serves), a promoted version's, and one more
(another decoder path, or the candidate `mmagent learn` evaluated).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)
# 3: entries written before the adapter-switch race was closed (MMLLM.set_adapter) may hold another adapter's
# weights (`models pull` cached `tools` fused from open-world's): every earlier entry is rebuilt, not served.
# 2: 8-bit blocks of 64 where K allows (1: always 32).
FORMAT = "3"
KEEP = 4  # fewer would evict one of the default's decoders (or the promoted one) whenever another is written
_LLM_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors")


def _stat(path: Path) -> list:
    st = path.stat()
    return [path.name, st.st_size, st.st_mtime_ns]


def adapter_digest(folder: Path) -> str:
    """The bytes of every file of an adapter folder (names included), hashed."""
    h = hashlib.blake2b(digest_size=16)
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def cache_key(llm_folder: Path, config_json: str, adapter: Path | None, path: str) -> str | None:
    """The key of a decoder built from these files with the adapter folder `adapter` active (None:
    no adapter), or None when nothing may be cached: the base is not a local folder with safetensors
    weights (a hub id, sharded weights), or `adapter` is not a folder. The adapter's name is not in
    it (the tensors do not depend on it): the same bytes loaded under another name hit the same entry."""
    from mmagent.model.llama_decoder import REDUCE_RANGE

    llm_folder = Path(llm_folder)
    if not (llm_folder / "model.safetensors").is_file() or not (llm_folder / "config.json").is_file():
        return None
    if adapter is not None and not Path(adapter).is_dir():
        return None
    material = {
        "format": FORMAT, "torch": torch.__version__, "capability": torch.backends.cpu.get_cpu_capability(),
        "path": path, "reduce_range": REDUCE_RANGE, "config": config_json,
        "llm": [_stat(llm_folder / n) for n in _LLM_FILES if (llm_folder / n).is_file()],
        "adapter": adapter_digest(Path(adapter)) if adapter is not None else None,
    }
    return hashlib.blake2b(json.dumps(material, sort_keys=True).encode(), digest_size=16).hexdigest()


def entry(folder: Path, key: str) -> Path:
    return Path(folder) / f"{key}.safetensors"


def graph_file(folder: Path, key: str) -> Path:
    """The onnxruntime step graph of the decoder `key` (`mmagent.model.ort_decode`), written by its first step."""
    from mmagent.model.ort_decode import GRAPH_VERSION

    return Path(folder) / f"{key}.step-v{GRAPH_VERSION}.onnx"


def cache_dir(settings=None) -> Path:
    from mmagent.config import get_settings

    return (settings or get_settings()).home / "cache" / "decoders"


def load(folder: Path, key: str):
    """The cached `LlamaDecoder` for `key`, or None (absent, unreadable or not this key: removed)."""
    from safetensors import safe_open

    from mmagent.model.llama_decoder import LlamaDecoder

    path = Path(folder) / f"{key}.safetensors"
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("key") != key or meta.get("format") != FORMAT:
                raise ValueError("key or format mismatch")
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        decoder = LlamaDecoder.from_tensors(tensors, meta)
        decoder.graph_file = graph_file(folder, key)
    except Exception as err:  # noqa: BLE001 - any damage means "not cached": rebuild and rewrite
        log.warning("decoder cache %s unusable (%s: %s); rebuilding it", path.name, type(err).__name__, err)
        path.unlink(missing_ok=True)
        return None
    os.utime(path)  # most recently used: kept by `prune`
    return decoder


def save(folder: Path, key: str, decoder) -> Path | None:
    """Writes `decoder` under `key` (atomically); returns the file, or None if it could not be written."""
    folder = Path(folder)
    tensors, meta = decoder.tensors()
    seen: set[int] = set()
    for name, t in tensors.items():  # safetensors refuses shared storage (tied embeddings / lm_head)
        if t.untyped_storage().data_ptr() in seen:
            tensors[name] = t.clone()
        seen.add(tensors[name].untyped_storage().data_ptr())
    path = folder / f"{key}.safetensors"
    if not _write(path, tensors, {**meta, "key": key, "format": FORMAT}):
        return None
    decoder.graph_file = graph_file(folder, key)
    prune(folder)
    return path


def _write(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bool:
    """safetensors into a temp file beside `path`, renamed over it: a killed writer leaves no half file
    (its temp file is dropped by `prune`). False when the disk refused (full, read-only): that costs the
    next process time, nothing else."""
    from safetensors.torch import save_file

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=metadata)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as err:
        log.warning("could not write %s: %s", path, err)
        return False
    return True


# --- the prompt prefix: the KV of the system prompt and tool signatures, for the next process ---------
# ~32 MB for the default's ~700-token tool prompt (fp32 KV); a one-shot run then prefills only the
# user's message. Valid for exactly one decoder (the file is named after its key) and checked on
# its embeddings before any position is reused (LlamaDecoder._common_prefix).


def load_prefix(folder: Path, key: str, decoder) -> int:
    """Loads `<key>.prefix.safetensors` into `decoder`; the positions loaded (0: none, or unusable)."""
    from safetensors.torch import load_file

    path = Path(folder) / f"{key}.prefix.safetensors"
    if not path.is_file():
        return 0
    try:
        return decoder.load_prefix(load_file(str(path)))
    except Exception as err:  # noqa: BLE001 - a damaged prefix only costs one prefill
        log.warning("prompt prefix cache %s unusable (%s); dropping it", path.name, err)
        path.unlink(missing_ok=True)
        return 0


def save_prefix(folder: Path, key: str, state: dict[str, torch.Tensor]) -> None:
    """Writes a prompt's KV (`LlamaDecoder.prefix_state`) for the decoder `key`, atomically."""
    _write(Path(folder) / f"{key}.prefix.safetensors", state, {"key": key, "format": FORMAT})


def prune(folder: Path, keep: int = KEEP, stale_s: float = 3600) -> None:
    """Keeps the `keep` most recently used entries, and drops temp files a killed writer left (older than `stale_s`)."""
    files = sorted((p for p in Path(folder).glob("*.safetensors") if not p.name.endswith(".prefix.safetensors")),
                   key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
        (old.parent / f"{old.stem}.prefix.safetensors").unlink(missing_ok=True)
        for graph in old.parent.glob(f"{old.stem}.step-v*.onnx"):
            graph.unlink(missing_ok=True)
    now = time.time()
    for tmp in Path(folder).glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > stale_s:
                tmp.unlink()
