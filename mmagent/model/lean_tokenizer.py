"""The part of a Hugging Face fast tokenizer that serving uses, loaded with the `tokenizers` library alone.

Why: `AutoTokenizer.from_pretrained` resolves the model's config class, which imports transformers'
whole modeling stack (torch.distributed, dynamo, sympy: ~2.5 s on one core) before it reads a
byte of tokenizer.json; the Rust tokenizer itself loads in ~0.1 s. A one-shot `mmagent run` whose
decoder comes from its on-disk cache (`mmagent.model.decoder_cache`) never needs the model
classes, so it tokenizes with this.

Exactness: encoding is `tokenizers`' own (what HF fast tokenizers call), the chat template is
rendered by transformers' own `render_jinja_template` (its sandboxed environment, a light import)
with the same special-token variables, and decoding is `tokenizers.decode` — the same calls
transformers' `TokenizersBackend` makes when `clean_up_tokenization_spaces` is off. `load` returns
None for any tokenizer folder outside that case (a slow tokenizer, cleanup on, no template), and
the caller falls back to `AutoTokenizer`. tests/test_lean_serving.py compares both token for token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer

_SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token")
_BACKENDS = {"TokenizersBackend", "PreTrainedTokenizerFast", "GPT2TokenizerFast", "LlamaTokenizerFast", "Qwen2TokenizerFast"}


def _content(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


class LeanTokenizer:
    """Duck-types the `PreTrainedTokenizerBase` calls of mmagent's serving path (mm_prompt, mmllm,
    generation.TextStream, protocol.constrained); anything else is not here on purpose."""

    def __init__(self, backend: Tokenizer, special: dict[str, str | None], chat_template: str) -> None:
        self.backend_tokenizer = backend
        self.special = special
        self.chat_template = chat_template

    @classmethod
    def load(cls, folder: Path | str) -> LeanTokenizer | None:
        folder = Path(folder)
        tok_file, cfg_file = folder / "tokenizer.json", folder / "tokenizer_config.json"
        if not (tok_file.is_file() and cfg_file.is_file()):
            return None
        cfg = json.loads(cfg_file.read_text())
        if cfg.get("tokenizer_class") not in _BACKENDS or cfg.get("clean_up_tokenization_spaces"):
            return None
        backend = Tokenizer.from_file(str(tok_file))
        extra = [_content(t) for t in (cfg.get("added_tokens_decoder") or {}).values()]
        if any(t is None or backend.token_to_id(t) is None for t in extra):
            return None  # tokens that only tokenizer_config.json adds: AutoTokenizer merges them
        template = cfg.get("chat_template")
        if (folder / "chat_template.jinja").is_file():
            template = (folder / "chat_template.jinja").read_text()
        if not isinstance(template, str):
            return None  # no template, or a dict of named templates: AutoTokenizer knows how to pick
        special = {k: _content(cfg.get(k)) for k in _SPECIAL}
        if special["pad_token"] is None:
            special["pad_token"] = special["eos_token"]  # as mmagent.model.backbone.load_causal_lm sets it
        return cls(backend, special, template)

    # --- vocabulary ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self.backend_tokenizer.get_vocab(with_added_tokens=True)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self.backend_tokenizer.token_to_id(token)

    def add_special_tokens(self, tokens: dict[str, list[str]], **_: Any) -> int:
        """`{"additional_special_tokens": [...]}` -> new special tokens appended to the vocabulary
        (the ids HF assigns too: the next free ones, in order)."""
        added = [AddedToken(t, special=True, normalized=False) for t in tokens.get("additional_special_tokens", [])]
        return self.backend_tokenizer.add_special_tokens(added)

    def _id(self, name: str) -> int | None:
        token = self.special.get(name)
        return None if token is None else self.backend_tokenizer.token_to_id(token)

    @property
    def eos_token_id(self) -> int | None:
        return self._id("eos_token")

    @property
    def pad_token_id(self) -> int | None:
        return self._id("pad_token")

    @property
    def eos_token(self) -> str | None:
        return self.special["eos_token"]

    # --- text ------------------------------------------------------------------------------------

    def apply_chat_template(self, messages: list[dict[str, Any]], tokenize: bool = False, add_generation_prompt: bool = False) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template

        if tokenize:
            raise NotImplementedError("LeanTokenizer renders text only; tokenize with __call__")
        variables = {k: v for k, v in self.special.items() if v is not None}
        rendered, _ = render_jinja_template(conversations=[messages], chat_template=self.chat_template,
                                            add_generation_prompt=add_generation_prompt, **variables)
        return rendered[0]

    def __call__(self, text: str, add_special_tokens: bool = False, return_offsets_mapping: bool = False) -> dict[str, list]:
        enc = self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens)
        out: dict[str, list] = {"input_ids": enc.ids, "attention_mask": enc.attention_mask}
        if return_offsets_mapping:
            out["offset_mapping"] = enc.offsets
        return out

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return self.backend_tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
