"""The composed MM-LLM: modality encoder -> token reduction -> input projector -> HF causal LM.

The survey's architecture (arXiv 2401.13601, Fig. 2) with LLaVA's recipe for the join: the prompt
carries one `<image>` placeholder per image; before the LLM runs, each placeholder is expanded to
M copies (M = visual tokens per image after reduction and projection) and the projected features
replace those rows of the input embeddings with ONE mask assignment:

    embeds[input_ids == image_token_id] = feats.flatten(0, 1)   # feats [I, M, D_lm]

Images are numbered in reading order over the whole batch (row by row), which is exactly the
row-major order of the mask, so batches mixing 0, 1 or several images per sample need no loop.

What is saved (`save_pretrained`) is what is not the frozen base: the config (naming the LLM and
encoder by catalog name), the projector, and the LoRA adapters, all as safetensors/JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from PIL import Image
from pydantic import BaseModel, Field, model_validator
from torch import nn

from mmagent.media.errors import UnsupportedMediaError
from mmagent.model import lora
from mmagent.model.adapter_routing import AdapterRouting
from mmagent.model.encoders.preprocess import MAX_PIXELS, check_image
from mmagent.model.generation import (
    Decoder,
    GenerationResult,
    HFDecoder,
    LogitsProcessor,
    RecomputeDecoder,
    SamplingConfig,
    generate,
)
from mmagent.model.lean_backbone import CacheTarget, LeanBackbone
from mmagent.model.mm_prompt import IGNORE, EmptyPromptError, ImageTokenMismatchError  # noqa: F401  (re-exported: defined with the prompt rendering)
from mmagent.model.projectors import ProjectorConfig, build_projector, projected_tokens
from mmagent.model.token_reduction import ReductionConfig, TokenReducer
from mmagent.protocol.chat import ContextOverflowError, Message

if TYPE_CHECKING:  # types only: transformers' modeling import costs ~2.5 s (see mmagent.model.lean_tokenizer)
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)
FEATURE_CACHE = 32  # image feature sets kept (49 x 576 floats each: ~110 KB)
LEAN_KEEP = 2  # cached decoders a lean model holds (the one serving + the last one switched from: ~0.5 GB each)
CONFIG_FILE, PROJECTOR_FILE, ADAPTERS_DIR = "mmllm_config.json", "projector.safetensors", "adapters"


class MMLLMConfig(BaseModel):
    """Everything that defines a composed MM-LLM; passed whole into `MMLLM`."""

    llm: str = Field(default="smollm2-135m-instruct", description="catalog name, local folder or hub id (kind llm)")
    encoder: str = Field(default="efficientnet-lite0", description="catalog name, local folder or hub id (kind image-encoder)")
    projector: ProjectorConfig = Field(default_factory=ProjectorConfig)
    reduction: ReductionConfig = Field(default_factory=ReductionConfig)
    image_token: str = "<image>"
    max_image_pixels: int = Field(default=MAX_PIXELS, gt=0)
    seed: int = Field(default=0, description="initializes the projector reproducibly until it is trained")
    fast_decode: bool = Field(default=True, description="decode Llama-style LLMs with mmagent.model.llama_decoder (fused weights, static cache)")
    decode_dtype: Literal["auto", "float32", "bfloat16", "int8"] = Field(
        default="auto", description="fast decoder's matmuls: auto = the LLM's dtype (exact); int8 = fbgemm int8 decode steps + float prefill")
    prefill_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto", description="int8 decoder's prefill matmuls: auto = bf16 where the CPU has AMX, else fp32 (mmagent.model.cpu)")
    decode_kernel: Literal["auto", "torch", "onnxruntime"] = Field(
        default="auto", description="int8 decoder's steps: auto = one onnxruntime graph per step where onnxruntime is installed (mmagent.model.ort_decode), else fbgemm")
    adapters: list[str] = Field(default_factory=list, description="saved adapter names (filled by save_pretrained)")
    active_adapter: str | None = None
    routing: AdapterRouting | None = Field(default=None, description="which adapter serves a reply, by its tools (mmagent.model.adapter_routing)")

    @model_validator(mode="after")
    def _routes_to_a_saved_adapter(self) -> MMLLMConfig:
        if self.routing is not None and self.adapters and self.routing.open_world not in self.adapters:
            raise ValueError(f"routing names adapter {self.routing.open_world!r}, which this folder does not have (adapters: {', '.join(self.adapters)})")
        return self


class PromptTooLongError(ContextOverflowError):
    pass


@dataclass
class MMInputs:
    """One conversation, ready for the model: token ids with placeholders expanded, and pixels."""

    input_ids: torch.Tensor  # [T]
    attention_mask: torch.Tensor  # [T]
    labels: torch.Tensor  # [T]: IGNORE outside assistant turns and on media tokens
    pixel_values: torch.Tensor | None  # [I, 3, H, W] in order of appearance, or None
    text: str  # the rendered prompt (placeholders not expanded)


class MMLLM(nn.Module):
    def __init__(self, config: MMLLMConfig, llm: PreTrainedModel | None, tokenizer: PreTrainedTokenizerBase, encoder: nn.Module,
                 lean: LeanBackbone | None = None) -> None:
        """`llm` is the HF causal LM, or None with `lean` (`mmagent.model.lean_backbone`): served from the
        cached decoder, the HF model built on first access of `.llm`."""
        super().__init__()
        if (llm is None) == (lean is None):
            raise ValueError("give the LLM or a lean backbone, not both or neither")
        self.config = config
        self._lean = lean
        # Decoder cache: the folder's entry (others derive from it: `CacheTarget.for_adapter`), and per adapter
        # state (`llama_decoder.fingerprint`) the entry the first decoder built for it is saved under.
        self._cache_base: CacheTarget | None = lean.where if lean else None
        self._cache: dict[tuple, CacheTarget] = {}
        self._adapter_dirs: dict[str, Path] = {}  # adapter name -> the folder it was loaded from (its bytes key its decoder)
        self._adapter_versions: dict[str, tuple] = {}  # ... and its LoRA tensors' versions then (a training step changes them)
        # Lean only: adapters recorded by `load_adapter` (loaded for real by `_materialize`), the adapter the
        # lean decoder serves, the lean states switched away from (LRU), load failures found on materializing.
        self._pending: dict[str, Path] = {}
        self._lean_active = config.active_adapter
        self._lean_states: OrderedDict[str | None, LeanBackbone] = OrderedDict()
        self._load_errors: dict[str, BaseException] = {}
        if lean is not None:
            self._adapter_dirs = {n: lean.folder / ADAPTERS_DIR / n for n in config.adapters}
        if llm is not None:
            self.llm = llm
        self.tokenizer, self.encoder = tokenizer, encoder
        self.reducer = TokenReducer(config.reduction)
        d_lm = self._embed_weight().shape[1]
        with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the caller's RNG
            torch.manual_seed(config.seed)
            self.projector = build_projector(config.projector, encoder.hidden_size, d_lm)
        self.projector.to(self._dtype)
        self.image_token_id = self._ensure_image_token()
        self._fast: tuple[tuple, Decoder] | None = (("lean",), lean.decoder) if lean else None  # (adapter fingerprint, dtype) -> fused decoder
        self._fast_lock = threading.RLock()
        self._features: OrderedDict[tuple, torch.Tensor] = OrderedDict()  # inference-time image features, LRU
        for p in [*(llm.parameters() if llm is not None else []), *self.encoder.parameters()]:
            p.requires_grad_(False)  # the base stays frozen; projector and adapters train

    def __getattr__(self, name: str) -> Any:
        # nn.Module keeps submodules in _modules, so every `.llm` lookup lands here: a lean model
        # builds its HF model the first time anything asks for it.
        if name == "llm" and self.__dict__.get("_lean") is not None:
            self._materialize()
        return super().__getattr__(name)

    def _materialize(self) -> None:
        """The HF model of a lean MM-LLM, loaded as `from_pretrained` would have (the same base and
        adapters from the same folder), plus the adapters `load_adapter` recorded since, with the adapter
        the lean decoder served active; its HF tokenizer replaces the lean one (same ids:
        tests/test_lean_serving.py). A recorded adapter that fails to load now is dropped (its error
        is raised by `set_adapter` of it)."""
        from mmagent.model.backbone import load_causal_lm

        lean = self._lean
        with self._fast_lock:
            if self.__dict__.get("_lean") is None:
                return
            llm, tok = load_causal_lm(self.config.llm, lean.settings, dtype=lean.dtype)
            for p in llm.parameters():
                p.requires_grad_(False)
            self._lean = None
            self.llm, self.tokenizer = llm, tok
            if self._ensure_image_token() != self.image_token_id:
                raise RuntimeError("the HF tokenizer numbers the image token differently from the lean one")
            for name in self.config.adapters:
                lora.load_adapter(self.llm, lean.folder / ADAPTERS_DIR / name, name)
                self._adapter_versions[name] = self._lora_versions(name)
            pending, self._pending = self._pending, {}
            for name, folder in pending.items():
                try:
                    lora.load_adapter(self.llm, folder, name)
                    self._adapter_versions[name] = self._lora_versions(name)
                except Exception as err:  # noqa: BLE001 - reported by set_adapter(name) (a session falls back)
                    log.warning("adapter %s (%s) does not load: %s", name, folder, err)
                    self._load_errors[name] = err
                    self._adapter_dirs.pop(name, None)  # what `name` holds now is not that folder: never cached
            active = self._lean_active
            if active is not None and active not in lora.adapter_names(self.llm):
                log.warning("adapter %s no longer loads; %s is active instead", active, self.config.active_adapter)
                active = self._lean_active = self.config.active_adapter
            lora.set_adapter(self.llm, active)
            self._lean_states.clear()
            self.llm.eval()
            self._register_cache_target(active)
            log.info("built the HF model of %s (lean serving ends)", lean.folder)

    @property
    def is_lean(self) -> bool:
        """Serving from the decoder cache, with no HF model loaded (yet)."""
        return self.__dict__.get("_lean") is not None

    def _embed_weight(self) -> torch.Tensor:
        return self._lean.embed if self.is_lean else self.llm.get_input_embeddings().weight  # [V, D]

    @property
    def _dtype(self) -> torch.dtype:
        return self._lean.dtype if self.is_lean else self.llm.dtype

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: MMLLMConfig, settings=None, dtype: torch.dtype | None = None) -> MMLLM:
        """Loads the LLM and encoder named in the config (provisioning embedded ones on first use)."""
        from mmagent.model.backbone import load_causal_lm
        from mmagent.model.encoders import load_encoder

        llm, tok = load_causal_lm(config.llm, settings, dtype=dtype)
        return cls(config, llm, tok, load_encoder(config.encoder, settings)).eval()

    def _ensure_image_token(self) -> int:
        """Adds `<image>` as a special token if absent; its new embedding row is the mean row."""
        tok = self.tokenizer
        if self.config.image_token not in tok.get_vocab():
            tok.add_special_tokens({"additional_special_tokens": [self.config.image_token]}, replace_extra_special_tokens=False)
        tid = tok.convert_tokens_to_ids(self.config.image_token)
        if self.is_lean:  # the cached embedding table was saved after this resize
            if tid >= self._lean.vocab_rows:
                raise ValueError(f"the cached decoder has {self._lean.vocab_rows} rows but {self.config.image_token} is id {tid}")
            return tid
        emb = self.llm.get_input_embeddings()
        if tid >= emb.num_embeddings:
            self.llm.resize_token_embeddings(len(tok), mean_resizing=False)
            with torch.no_grad():  # deterministic rows: never used as inputs, suppressed as outputs
                new = self.llm.get_input_embeddings().weight
                new[emb.num_embeddings:] = new[: emb.num_embeddings].mean(0)
                out = self.llm.get_output_embeddings()
                if out is not None and out.weight.data_ptr() != new.data_ptr():
                    out.weight[emb.num_embeddings:] = 0
        return tid

    @property
    def tokens_per_image(self) -> int:
        """M: placeholder copies per image (encoder tokens after reduction and projection)."""
        return projected_tokens(self.config.projector, self.reducer.num_tokens(self.encoder.num_tokens))

    @property
    def max_length(self) -> int:
        if self.is_lean:
            return self._lean.max_len
        return int(getattr(self.llm.config, "max_position_embeddings", 2048))

    # --- the forward pass --------------------------------------------------------------------

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[I, 3, H, W] -> projected visual tokens [I, M, D_lm]."""
        dev = self._embed_weight().device
        with torch.no_grad():  # the encoder is frozen: no activations kept for backward
            feats = self.reducer(self.encoder(pixel_values.to(dev)))  # [I, N', D_enc]
        return self.projector(feats.to(self._dtype))  # [I, M, D_lm]

    def _cached_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`encode_images`, remembered at inference: an agent's every step shows the model the
        same images again (and the decoder reuses their KV only if the features are identical).
        Keyed by the pixels' bytes and the projector's weight versions (a training step changes them)."""
        if torch.is_grad_enabled():
            return self.encode_images(pixel_values)
        raw = pixel_values.detach().cpu().contiguous().view(torch.uint8).numpy()  # any dtype, any device
        digest = hashlib.blake2b(raw.tobytes(), digest_size=16).hexdigest()
        key = (digest, tuple(p._version for p in self.projector.parameters()), self.config.reduction.model_dump_json())
        if key not in self._features:
            self._features[key] = self.encode_images(pixel_values)
            while len(self._features) > FEATURE_CACHE:
                self._features.popitem(last=False)
        self._features.move_to_end(key)
        return self._features[key]

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings [B, T, D] with the image features spliced in at the placeholders."""
        if self.is_lean:
            embeds = torch.nn.functional.embedding(input_ids, self._lean.embed)  # [B, T, D]
        else:
            embeds = self.llm.get_input_embeddings()(input_ids)  # [B, T, D]
        mask = input_ids == self.image_token_id  # [B, T]
        slots = int(mask.sum())
        if pixel_values is None or len(pixel_values) == 0:
            if slots:
                raise ImageTokenMismatchError(f"the input has {slots} image placeholder tokens but no images were given")
            return embeds
        feats = self._cached_features(pixel_values)  # [I, M, D]
        if slots != feats.shape[0] * feats.shape[1]:
            raise ImageTokenMismatchError(
                f"the input has {slots} image placeholder tokens but {feats.shape[0]} image(s) x {feats.shape[1]} "
                f"tokens = {feats.shape[0] * feats.shape[1]} features; build inputs with MMLLM.build_inputs so each "
                f"{self.config.image_token} expands to {self.tokens_per_image} tokens"
            )
        embeds[mask] = feats.flatten(0, 1).to(embeds.dtype)  # [I * M, D] into the placeholder rows, in order
        return embeds

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None, labels: torch.Tensor | None = None, **kwargs: Any):
        """As a causal LM's forward (loss when `labels` is given), with images."""
        embeds = self.embed(input_ids, pixel_values)
        return self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **kwargs)

    # --- prompts -----------------------------------------------------------------------------

    def build_inputs(
        self,
        messages: Sequence[Message | Mapping[str, Any]],
        tools: Sequence[dict[str, Any]] | None = None,
        *,
        artifacts: Mapping[str, Image.Image] | None = None,
        system: str | None = None,
        add_generation_prompt: bool = False,
        reserve_tokens: int = 0,
    ) -> MMInputs:
        """A conversation -> `MMInputs` (ids, mask, labels on assistant turns, pixels).

        `messages`: `mmagent.protocol.chat.Message`s (or dicts of their fields) whose `images` are artifact
        ids; `artifacts` maps them to decoded PIL images (the model decodes nothing: a backend resolves
        ids from its `ArtifactStore` first, see `mmagent.backends.composed.message_images`).
        `tools`: OpenAI-style schemas, rendered into the system prompt by `mmagent.protocol.toolcall`.
        `system`: extra system text. `reserve_tokens`: room to keep for generation.
        """
        from mmagent.config import get_settings
        from mmagent.model.mm_prompt import render_conversation
        from mmagent.protocol.grounding import annotated

        msgs = [m if isinstance(m, Message) else Message(**m) for m in messages]
        if tools and get_settings().annotate_values:  # the same view in training and serving (mmagent.protocol.grounding)
            msgs = annotated(msgs)
        rendered = render_conversation(self.tokenizer, msgs, tools, system, self.config.image_token, add_generation_prompt)
        images = self._resolve_images(msgs, artifacts)
        ids, labels = self._expand(rendered.input_ids, rendered.labels)
        if len(ids) + reserve_tokens > self.max_length:
            raise PromptTooLongError(
                f"the prompt is {len(ids)} tokens (+{reserve_tokens} to generate) but {self.config.llm} reads at most "
                f"{self.max_length}; shorten the conversation or attach fewer images ({self.tokens_per_image} tokens each)"
            )
        pixels = self.encoder.preprocess(images) if images else None
        ids_t = torch.tensor(ids, dtype=torch.long)
        return MMInputs(ids_t, torch.ones_like(ids_t), torch.tensor(labels, dtype=torch.long), pixels, rendered.text)

    def _expand(self, ids: list[int], labels: list[int]) -> tuple[list[int], list[int]]:
        """Each placeholder -> M placeholder copies (labels IGNORE on all of them)."""
        m = self.tokens_per_image
        out_ids: list[int] = []
        out_labels: list[int] = []
        for t, lab in zip(ids, labels):
            if t == self.image_token_id:
                out_ids += [t] * m
                out_labels += [IGNORE] * m
            else:
                out_ids.append(t)
                out_labels.append(lab)
        return out_ids, out_labels

    def _resolve_images(self, msgs: list[Message], artifacts: Mapping[str, Image.Image] | None) -> list[Image.Image]:
        ids = [i for m in msgs for i in m.images]
        if not ids:
            return []
        if artifacts is None:
            raise ValueError(f"the messages reference {', '.join(ids)} but no artifacts were passed (a dict id -> PIL image)")
        if not isinstance(artifacts, Mapping):
            raise TypeError(
                f"artifacts is a {type(artifacts).__name__}: the model takes a mapping id -> PIL image; resolve artifact ids "
                "from a store first (mmagent.backends.composed.message_images, or chat with the composed backend)"
            )
        return [check_image(self._lookup(art_id, artifacts), self.config.max_image_pixels, what=art_id) for art_id in ids]

    def _lookup(self, art_id: str, artifacts: Mapping[str, Image.Image]) -> Image.Image:
        """An image id -> its decoded PIL image."""
        if art_id not in artifacts:
            raise KeyError(f"unknown image {art_id!r}; given: {', '.join(artifacts) or 'none'}")
        img = artifacts[art_id]
        if not isinstance(img, Image.Image):
            raise UnsupportedMediaError(
                f"{art_id} is a {type(img).__name__}, not an image; pass a PIL image (bytes: decode them with "
                "mmagent.media.images.decode_image, which checks them first)"
            )
        return img

    def collate(self, items: Sequence[MMInputs], padding_side: str = "right") -> dict[str, torch.Tensor | None]:
        """Pads a list of `MMInputs` into a batch: input_ids/attention_mask/labels [B, T], pixels [sum I, ...]."""
        width = max(len(x.input_ids) for x in items)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

        def padded(t: torch.Tensor, value: int) -> torch.Tensor:
            fill = t.new_full((width - len(t),), value)
            return torch.cat([t, fill] if padding_side == "right" else [fill, t])

        pixels = [x.pixel_values for x in items if x.pixel_values is not None]
        return {
            "input_ids": torch.stack([padded(x.input_ids, pad) for x in items]),
            "attention_mask": torch.stack([padded(x.attention_mask, 0) for x in items]),
            "labels": torch.stack([padded(x.labels, IGNORE) for x in items]),
            "pixel_values": torch.cat(pixels) if pixels else None,
        }

    # --- generation ----------------------------------------------------------------------------

    @property
    def eos_token_ids(self) -> list[int]:
        """End-of-turn ids: the tokenizer's EOS plus the generation config's (ChatML: `<|im_end|>`)."""
        if self.is_lean:
            return list(self._lean.eos_token_ids)
        eos = getattr(self.llm.generation_config, "eos_token_id", None)
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(ids)

    def decoder(self, use_cache: bool = True) -> Decoder:
        """The step function for `mmagent.model.generation.generate`: the fast Llama path when the LLM is
        one (and `fast_decode`), else transformers' forward with its cache; `use_cache=False` is the
        recomputing reference."""
        from mmagent.model import llama_decoder
        if self.is_lean and use_cache:
            if self._lean.where is None or self._lean.where.matches(self.config):
                return self._fast[1]  # int8 matrices pack on first use, or in `warm_decoder`
            self._materialize()  # the config asks for another decoder path: build it from the real model
        if not use_cache:
            return RecomputeDecoder(self.llm)
        if not (self.config.fast_decode and llama_decoder.supports(self.llm)):
            return HFDecoder(self.llm)
        mode, prefill, kernel = self.config.decode_dtype, self.config.prefill_dtype, self.config.decode_kernel
        with self._fast_lock:  # a background warm-up may be building it right now; no adapter switch meanwhile
            key = (llama_decoder.fingerprint(self.llm), mode, prefill, kernel)
            if self._fast is None or self._fast[0] != key:  # built once per adapter state: fusing copies weights
                self._fast = None  # free the old copy before making the new one
                dtype, quantize, engine = llama_decoder.choose_path(mode, prefill, self.llm.dtype, kernel)
                self._fast = (key, llama_decoder.LlamaDecoder(self.llm, dtype=dtype, quantize=quantize, engine=engine))
                self._save_decoder(key[0])
            return self._fast[1]

    def _save_decoder(self, fingerprint: tuple) -> None:
        """Writes a decoder built from the folder as loaded to the cache, for the next process; in a
        thread that is not a daemon, so a one-shot process finishes the write (~1 s) before it exits."""
        from mmagent.model import decoder_cache

        where = self._cache.get(fingerprint)
        if where is None or not where.matches(self.config):
            return
        del self._cache[fingerprint]  # once
        decoder = self._fast[1]
        # daemon=False said explicitly: a thread inherits the flag of the one that starts it (often the
        # daemon warm-up thread), and a daemon writer is killed mid-write when the interpreter exits.
        self._cache_writer = threading.Thread(target=decoder_cache.save, args=(where.folder, where.key, decoder),
                                              name="mmllm-decoder-cache", daemon=False)
        self._cache_writer.start()

    def cache_decoder(self) -> bool:
        """Builds the fast decoder now and waits until it is in the decoder cache (`mmagent models pull`
        does this for the default, so that even the first `mmagent run` serves lean). True when a
        later load of this folder will be served from the cache."""
        decoder = self.decoder()
        if not self.is_lean:  # a lean decoder came from its entry; a built one is being written
            writer = self.__dict__.get("_cache_writer")
            if writer is None:
                return False
            writer.join()
        if getattr(decoder, "engine", "torch") == "onnxruntime":  # lean too: an entry whose graph was never written
            decoder.pack()  # writes its step graph beside the entry: a later process need not import onnx
        return True

    def cache_decoders(self) -> bool:
        """`cache_decoder` for every adapter the folder ships (the open-world one its routing serves too, so a
        routed reply never builds the HF model), then the active one again. True when all are cached.
        Not the bare base a `chat: base` routing serves: it is cached on the first chat reply. (Cached first
        here, it once left a fresh home's `tools` entry answering in loops: the adapter switch landing inside
        the warm-up thread's build, which `set_adapter` now waits for.)"""
        active, cached = self.active_adapter, True
        for name in [*(n for n in self.config.adapters if n != active), active]:
            self.set_adapter(name)
            cached = self.cache_decoder() and cached
        return cached

    def warm_decoder(self) -> threading.Thread:
        """Builds the fast decoder (fusing and quantizing: ~1.6 s for SmolLM2-135M; from the decoder
        cache, packing its int8 copies) and the tool grammar's tokenizer in a background thread, so
        that they overlap with what a caller does before its first generation (the prompt, the
        images); `decoder()` waits for it."""
        def warm() -> None:
            from mmagent.protocol.constrained import llg_tokenizer

            decoder = self.decoder()
            with contextlib.suppress(ValueError):  # a slow tokenizer: constrained decoding will say so itself
                llg_tokenizer(self.tokenizer, self.eos_token_ids)  # the grammar's view of the vocabulary (~0.4 s)
            if hasattr(decoder, "pack"):  # a cached decoder's int8 copies (~0.4 s), while the prompt prefills
                decoder.pack()

        thread = threading.Thread(target=warm, name="mmllm-decoder-warmup", daemon=True)
        thread.start()
        return thread

    @torch.inference_mode()
    def generate(self, batch: dict[str, torch.Tensor | None], sampling: SamplingConfig | None = None,
                 processors: Sequence[LogitsProcessor] = (), on_step: Callable[[torch.Tensor], None] | None = None,
                 use_cache: bool = True) -> GenerationResult:
        """Decodes from a batch made by `collate(..., padding_side="left")` (a single item needs no padding)."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        if bool((mask[:, -1] == 0).any()):
            raise ValueError("generation needs left padding: collate(items, padding_side='left')")
        embeds = self.embed(ids, batch.get("pixel_values"))
        # The placeholder token and ids past the tokenizer (padding rows of the table) are never outputs.
        rows = self._lean.vocab_rows if self.is_lean else self.llm.get_output_embeddings().weight.shape[0]
        suppress = [self.image_token_id, *range(len(self.tokenizer), rows)]
        out = generate(self.decoder(use_cache), embeds, mask, ids, sampling=sampling, eos_token_ids=self.eos_token_ids,
                       processors=processors, suppress_token_ids=suppress, on_step=on_step)
        if self.is_lean and use_cache and ids.shape[0] == 1:
            from mmagent.model.lean_backbone import save_prefix_after

            save_prefix_after(self._lean)  # the tool prompt's KV for the next process
        return out

    # --- adapters ------------------------------------------------------------------------------

    def add_adapter(self, name: str, settings: lora.LoraSettings | None = None) -> None:
        lora.add_adapter(self.llm, name, settings)

    def set_adapter(self, name: str | None) -> None:
        """Makes `name` active (None: the bare base). A lean model switches to the cached decoder of that
        adapter's bytes when there is one; else it builds the HF model, whose first decoder for `name`
        then goes to the cache, so that the next process serves it lean."""
        if self.is_lean:
            if name == self._lean_active:
                return  # what the lean decoder was merged with
            if name is not None and name not in self.adapters:
                raise KeyError(f"no adapter named {name!r}; loaded adapters: {', '.join(self.adapters) or 'none'}")
            if self._switch_lean(name):
                return
            self._materialize()
        err = self._load_errors.pop(name, None) if name is not None else None
        if err is not None:
            raise err
        # Not while a decoder is being fused (the warm-up thread): it would read the new adapter's weights
        # for its later layers and be cached under the old one's key. `mmagent models pull` switched
        # adapters right after the load this way, and the `tools` entry held mostly open-world weights.
        with self._fast_lock:
            lora.set_adapter(self.llm, name)
            self._register_cache_target(name)

    def load_adapter(self, folder: Path, name: str) -> None:
        """Loads a saved adapter under `name` (inactive until `set_adapter`). A lean model only checks its
        files and records it: `set_adapter(name)` may serve it from the decoder cache."""
        folder = Path(folder)
        self._load_errors.pop(name, None)
        if self.is_lean and name != self._lean_active:
            lora.check_saved_adapter(folder)
            self._pending[name] = folder
            self._adapter_dirs[name] = folder
            self._lean_states.pop(name, None)  # a decoder of the bytes `name` had before
            return
        self._adapter_dirs.pop(name, None)  # a failed load over `name` may leave it part old, part new
        lora.load_adapter(self.llm, folder, name)
        self._adapter_dirs[name] = folder
        self._adapter_versions[name] = self._lora_versions(name)

    def _lora_versions(self, name: str) -> tuple:
        return tuple(p._version for n, p in self.llm.named_parameters() if "lora_" in n and f".{name}." in n)

    def _switch_lean(self, name: str | None) -> bool:
        """Serves `name` from its cached decoder (kept from an earlier switch, or loaded); False when
        the cache has none for it. The tokenizer, embedding table rows and projector stay."""
        from mmagent.model import lean_backbone

        with self._fast_lock:
            lean = self.__dict__.get("_lean")
            if lean is None or lean.where is None or not lean.where.matches(self.config):
                return False
            state = self._lean_states.pop(name, None)
            if state is None:
                where = lean.where.for_adapter(self._adapter_dirs[name] if name is not None else None)
                decoder = lean_backbone.load_decoder(where) if where is not None else None
                if decoder is None:
                    return False
                state = replace(lean, decoder=decoder, where=where, prefix_saved=False)
            self._lean_states[self._lean_active] = lean
            while len(self._lean_states) > LEAN_KEEP - 1:
                self._lean_states.popitem(last=False)
            self._lean, self._fast, self._lean_active = state, (("lean", name), state.decoder), name
            log.info("serving adapter %s from the decoder cache", name)
            return True

    def _register_cache_target(self, name: str | None) -> None:
        """After `name` became active on the HF model: the first decoder built for this state is saved
        under the key of `name`'s folder (unless the cache already holds it, its folder is unknown, or its
        weights changed since they were loaded from it: a training step)."""
        base = self._cache_base
        if base is None:
            return
        if name is not None and (name not in self._adapter_dirs or self._adapter_versions.get(name) != self._lora_versions(name)):
            return
        where = base.for_adapter(self._adapter_dirs[name] if name is not None else None)
        if where is None or where.file.is_file():
            return
        from mmagent.model.llama_decoder import fingerprint

        where.pristine = fingerprint(self.llm)
        self._cache[where.pristine] = where

    @property
    def adapters(self) -> list[str]:
        return sorted({*self.config.adapters, *self._pending}) if self.is_lean else lora.adapter_names(self.llm)

    @property
    def active_adapter(self) -> str | None:
        return self._lean_active if self.is_lean else lora.active_adapter(self.llm)

    # --- persistence -------------------------------------------------------------------------

    def save_pretrained(self, folder: Path | str) -> Path:
        """Config JSON + projector safetensors + one folder per adapter; the base is referenced by name."""
        adapters = {name: partial(lora.save_adapter, self.llm, name) for name in self.adapters}
        return write_pretrained(Path(folder), self.config, self.projector, adapters, self.active_adapter)

    @classmethod
    def from_pretrained(cls, folder: Path | str, settings=None, *, llm: PreTrainedModel | None = None,
                        tokenizer: PreTrainedTokenizerBase | None = None, encoder: nn.Module | None = None,
                        dtype: torch.dtype | None = None) -> MMLLM:
        """Loads a `save_pretrained` folder; the base LLM/encoder come from the catalog unless given."""
        from mmagent.config import get_settings, torch_dtype
        from mmagent.model import lean_backbone

        folder = Path(folder)
        config = cls.read_config(folder)
        settings = settings or get_settings()
        where = None
        if llm is None and config.fast_decode and settings.decoder_cache:
            where = lean_backbone.target(folder, config, settings, dtype or torch_dtype(settings))
            opened = lean_backbone.open_lean(folder, config, settings, where) if where else None
            if opened is not None:
                from mmagent.model.encoders import load_encoder

                model = cls(config, None, opened[1], load_encoder(config.encoder, settings), lean=opened[0])
                model._load_projector_of(folder)
                return model.eval()
        model = cls(config, llm, tokenizer, encoder) if llm is not None else cls.from_config(config, settings, dtype)
        model._load_projector_of(folder)
        model._cache_base = where  # the first decoder built for an adapter state goes to the cache (`set_adapter`)
        for name in config.adapters:
            model.load_adapter(folder / ADAPTERS_DIR / name, name)
        model.set_adapter(config.active_adapter)
        return model.eval()

    def _load_projector_of(self, folder: Path) -> None:
        if (folder / PROJECTOR_FILE).is_file():
            self.load_projector(folder / PROJECTOR_FILE)
        else:  # the embedded default before its projector is trained: runs, but sees images as noise
            log.warning("%s has no %s: the projector is untrained (seed %d)", folder, PROJECTOR_FILE, self.config.seed)

    @staticmethod
    def read_config(folder: Path | str) -> MMLLMConfig:
        cfg_path = Path(folder) / CONFIG_FILE
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{folder} has no {CONFIG_FILE}: not a saved MM-LLM (see MMLLM.save_pretrained)")
        return MMLLMConfig.model_validate(json.loads(cfg_path.read_text()))

    def load_projector(self, path: Path) -> None:
        from safetensors.torch import load_file

        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the projector weights of this MM-LLM")
        self.projector.load_state_dict(load_file(str(path)))


def write_pretrained(folder: Path, config: MMLLMConfig, projector: nn.Module,
                     adapters: Mapping[str, Callable[[Path], Any]], active: str | None) -> Path:
    """The one writer of an MM-LLM folder (`save_pretrained`, the alignment and tool-tuning exports):
    `projector.safetensors`, `adapters/<name>/` written by `adapters[name](folder)`, and the config
    naming those adapters. The savers are given, so a training export can write its adapter in fp16."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in projector.state_dict().items()}
    save_file(state, str(folder / PROJECTOR_FILE))
    for name, save in adapters.items():
        save(folder / ADAPTERS_DIR / name)
    routing = config.routing if config.routing is not None and config.routing.open_world in adapters else None  # routes only to what is written
    cfg = config.model_copy(update={"adapters": list(adapters), "active_adapter": active, "routing": routing})
    (folder / CONFIG_FILE).write_text(cfg.model_dump_json(indent=2))
    return folder
