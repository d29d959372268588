"""The part of a Hugging Face fast tokenizer that serving uses, loaded with the `tokenizers` library alone.

Why: `AutoTokenizer.from_pretrained` resolves the model's config class, which imports transformers'
whole modeling stack (torch.distributed, dynamo, sympy: ~2.5 s on one core) before it reads a
byte of tokenizer.json; the Rust tokenizer itself loads in ~0.1 s. A one-shot `mmagent run` whose
decoder comes from its on-disk cache (`mmagent.model.decoder_cache`) never needs the model
classes, so it tokenizes with this.

Exactness: encoding is `tokenizers`' own (what HF fast tokenizers call), the chat template is
rendered in the environment transformers builds for chat templates (`utils/chat_template_utils.py`:
jinja2's ImmutableSandboxedEnvironment, trim_blocks + lstrip_blocks, loopcontrols, its `tojson`,
`raise_exception`, `strftime_now`, and namespaces that refuse underscore names) with the same
special-token variables — rebuilt here because importing that module pulls in transformers'
package init (~0.7 s) — and decoding is `tokenizers.decode`, the call transformers'
`TokenizersBackend` makes when `clean_up_tokenization_spaces` is off. Messages must be plain
JSON-like data (what `mmagent.protocol.toolcall.template_messages` builds), checked before rendering. `load` returns
None for any tokenizer folder outside that case (a slow tokenizer, cleanup on, no template), and
the caller falls back to `AutoTokenizer`. tests/test_lean_serving.py compares both token for token.
"""

from __future__ import annotations

import datetime
import functools
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
        if tokenize:
            raise NotImplementedError("LeanTokenizer renders text only; tokenize with __call__")
        _check_plain(messages)
        variables = {k: v for k, v in self.special.items() if v is not None}
        return _compiled(self.chat_template).render(messages=messages, tools=None, documents=None,
                                                    add_generation_prompt=add_generation_prompt, **variables)

    def __call__(self, text: str, add_special_tokens: bool = False, return_offsets_mapping: bool = False) -> dict[str, list]:
        enc = self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens)
        out: dict[str, list] = {"input_ids": enc.ids, "attention_mask": enc.attention_mask}
        if return_offsets_mapping:
            out["offset_mapping"] = enc.offsets
        return out

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return self.backend_tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)


def _check_plain(value: Any) -> None:
    """Only JSON types reach the template (transformers rebuilds other objects into inert ones)."""
    if value is None or type(value) in (str, int, float, bool):
        return
    if type(value) is dict:
        for k, v in value.items():
            _check_plain(k)
            _check_plain(v)
        return
    if type(value) in (list, tuple):
        for v in value:
            _check_plain(v)
        return
    raise TypeError(f"chat template data must be plain JSON types, got {type(value).__name__}")


@functools.lru_cache(maxsize=8)
def _compiled(template: str):
    """The template in transformers' chat-template environment (see the module docstring)."""
    import jinja2
    import jinja2.ext
    import jinja2.utils
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt: str) -> str:
        return datetime.datetime.now().strftime(fmt)

    class Namespace(jinja2.utils.Namespace):  # no underscore attributes: no way to CPython internals
        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                Namespace._check(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name, value):
            Namespace._check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name):
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"chat templates cannot store underscore-prefixed attributes ({name!r})")

    class TemplateDict:
        def __call__(self, *args, **kwargs):
            return dict(*args, **kwargs)

        def fromkeys(self, *args, **kwargs):
            return dict.fromkeys(*args, **kwargs)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception, strftime_now=strftime_now, dict=TemplateDict(), namespace=Namespace)
    return env.from_string(template)
