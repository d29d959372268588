"""Schema-guided decoding of tool calls, on llguidance (https://github.com/guidance-ai/llguidance).

Guarantee: once the model opens `<tool_call>`, every next token is masked so that the block can only
become `{"name": "<a registered tool>", "arguments": <JSON valid for that tool's schema>}</tool_call>`,
written exactly as `mmagent.protocol.toolcall.format_call` writes it (the training format: `", "` and
`": "`, no free whitespace, no unknown argument). Outside a call the model is free: it may answer in
prose (`mode="auto"`), or it must call (`mode="required"`). Given `max_new_tokens`, the processor
spends the end of the budget closing an open call; a call can still be cut off when the budget
is smaller than what the grammar forces (the parser reports it).

Why llguidance: it is maintained (guidance-ai; used by vLLM, SGLang and llama.cpp), a 3 MB wheel
with no dependencies, CPU-only is fine, and it has "lazy" lexemes: free text up to a trigger string,
which is exactly "prose, then maybe a call" (its `StructTag` tool-calling construct). xgrammar needs
triton and apache-tvm-ffi; outlines and lm-format-enforcer have no such trigger construct and build
whole-vocabulary indexes per schema (slow for a 49k vocabulary on 2 cores).

One processor serves both decode loops: it has the `transformers.LogitsProcessor` call signature (HF `generate`)
and a plain callable `(input_ids [B, T], scores [B, V]) -> scores` (the composed backend's loop in
`mmagent.model.generation`). It is stateful: one instance per generation.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from mmagent.protocol.toolcall import CALL_CLOSE, CALL_OPEN, function_of

Mode = Literal["auto", "required"]

# The JSON inside a call is written the way `json.dumps` writes it, so that constrained output is
# byte-identical to the training data; no free whitespace also rules out the newline loops that
# small models fall into inside constrained JSON.
JSON_STYLE = {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False}

_lltokenizers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_lock = threading.Lock()

if TYPE_CHECKING:  # a type only: importing transformers' generation package costs ~2 s
    from transformers import PreTrainedTokenizerBase


def llg_tokenizer(tokenizer: PreTrainedTokenizerBase, eos_token_ids: Sequence[int] | None = None) -> Any:
    """llguidance's view of a fast tokenizer, built once per tokenizer (~0.7 s for 49k tokens).

    The steps of `llguidance.hf.from_tokenizer`, taken on the Rust tokenizer itself, so that an HF
    fast tokenizer and a `mmagent.model.lean_tokenizer.LeanTokenizer` give the same LLTokenizer."""
    from llguidance import LLTokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"constrained decoding needs a fast (Rust) tokenizer; {type(tokenizer).__name__} is not one")
    with _lock:
        key = (tuple(eos_token_ids) if eos_token_ids else None)
        per_tok = _lltokenizers.setdefault(tokenizer, {})
        if key not in per_tok:
            rust = copy.copy(backend)  # padding and truncation off on a copy, as llguidance.hf does
            rust.no_padding()
            rust.no_truncation()
            per_tok[key] = LLTokenizer(rust.to_str(), eos_token=list(key) if key else tokenizer.eos_token_id)
        return per_tok[key]


def argument_schema(tool: dict[str, Any]) -> dict[str, Any]:
    """The tool's parameter schema, closed to unknown arguments at every depth, in the training
    JSON style. `lenient`: a keyword or string format llguidance does not implement (`not`,
    `uniqueItems`, `format: uri` ...) is left unenforced instead of failing the whole grammar,
    so any schema a user brings compiles; the registry still validates what was written."""
    params = closed_objects(dict(function_of(tool).get("parameters") or {"type": "object", "properties": {}}))
    params.setdefault("type", "object")
    params.setdefault("additionalProperties", False)
    params["x-guidance"] = {"lenient": True, **JSON_STYLE, **params.get("x-guidance", {})}
    return params


_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")  # keywords whose values are {name: schema}
_SCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems", "items")
_SCHEMA_ONE = ("items", "additionalProperties")


def closed_objects(schema: Any, open_: bool = False) -> Any:
    """A copy in which every object schema that lists `properties` and says nothing of
    `additionalProperties` is closed, as the arguments object is (JSON Schema leaves it open, so
    the grammar would let a model invent nested keys). Only schema-holding keywords are walked
    (a `default` or `enum` value is data). An `allOf` member stays open: closing each member would
    forbid the keys the others add. `tools.schema_tool` validates nested objects by the same rule."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for k in _SCHEMA_MAPS:
        if isinstance(out.get(k), dict):
            out[k] = {name: closed_objects(sub) for name, sub in out[k].items()}
    for k in _SCHEMA_LISTS:
        if isinstance(out.get(k), list):
            out[k] = [closed_objects(sub) for sub in out[k]]
    for k in _SCHEMA_ONE:
        if isinstance(out.get(k), dict):
            out[k] = closed_objects(out[k])
    if isinstance(out.get("allOf"), list):
        out["allOf"] = [closed_objects(sub, open_=True) for sub in out["allOf"]]
    if not open_ and "properties" in out and "additionalProperties" not in out and "patternProperties" not in out:
        out["additionalProperties"] = False
    return out


def _call_rule(tool: dict[str, Any]) -> str:
    """`"<tool_call>{\\"name\\": \\"x\\", \\"arguments\\": " %json {...} "}</tool_call>"` minus the trigger."""
    head = '{"name": ' + json.dumps(function_of(tool)["name"]) + ', "arguments": '
    return f"{json.dumps(head)} %json {json.dumps(argument_schema(tool))} {json.dumps('}' + CALL_CLOSE)}"


def tool_call_lark(tools: Sequence[dict[str, Any]], mode: Mode = "auto") -> str:
    """The grammar, in llguidance's Lark dialect.

    auto:     TEXT (CALL TEXT)*  where a call starts lazily at the first `<tool_call>` in TEXT
    auto, no tools: TEXT without `<tool_call>` (prose only: OpenAI's `tool_choice: "none"`; what
              tool retrieval asks for when no offered tool fits the request)
    required: CALL ("\\n" CALL)*
    """
    if not tools and mode != "auto":
        raise ValueError("a required call needs at least one tool schema")
    lines = ["%llguidance {}"]
    names = [f"call_{i}" for i in range(len(tools))]
    close = re.escape(CALL_CLOSE).replace("/", "\\/")
    if not tools:
        tags = f"({re.escape(CALL_OPEN)}|{close})"
        lines += ["start: TEXT", rf"TEXT: /(.|\n)*/ & ~/(.|\n)*{tags}(.|\n)*/"]
    elif mode == "auto":
        # Free text may hold anything but a stray closing tag (the parser would report it).
        lines += [f"start: ({' | '.join(names)})* TEXT", rf"TEXT: /(.|\n)*/ & ~/(.|\n)*{close}(.|\n)*/"]
        for name, tool in zip(names, tools):
            # [lazy]: the shortest free text that ends in the trigger, as in llguidance's StructTag.
            lines += [f"{name}_open[lazy]: TEXT {json.dumps(CALL_OPEN)}", f"{name}: {name}_open {_call_rule(tool)}"]
    elif mode == "required":
        lines += ["start: call (\"\\n\" call)*", f"call: {' | '.join(names)}"]
        lines += [f"{name}: {json.dumps(CALL_OPEN)} {_call_rule(tool)}" for name, tool in zip(names, tools)]
    else:
        raise ValueError(f"mode must be 'auto' or 'required', got {mode!r}")
    return "\n".join(lines)


class ToolCallGrammar:
    """The tool-call grammar compiled for one tokenizer; makes a fresh matcher per sequence."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        tools: Sequence[dict[str, Any]],
        *,
        mode: Mode = "auto",
        eos_token_ids: Sequence[int] | None = None,
    ) -> None:
        from llguidance import LLMatcher

        self.lltok = llg_tokenizer(tokenizer, eos_token_ids)
        self.grammar = LLMatcher.grammar_from_lark(tool_call_lark(tools, mode))
        is_error, messages = LLMatcher.validate_grammar_with_warnings(self.grammar, self.lltok)
        if is_error:
            raise ValueError(f"the tools' JSON schemas do not compile to a grammar: {messages[0]}")
        self.vocab_size = self.lltok.vocab_size
        self.mode = mode
        self.tools = list(tools)
        self._min_tokens: dict[str, int] | None = None
        self._fragments: dict[str, dict[str, int]] | None = None
        self._close_tag = 0
        self._classes: dict[str, np.ndarray] | None = None

    def matcher(self) -> Any:
        from llguidance import LLMatcher

        return LLMatcher(self.lltok, self.grammar, log_level=0)

    def token_classes(self) -> dict[str, np.ndarray]:
        """Token classes for closing a call at the end of the budget, each a bool [V]:
        `quote` starts with `"` and then only closes (`"`, `"}`, `"]}`...), `bracket` only closes
        (`]`, `}}`...), `opens` holds a `<` (could start a new call). Built once (~0.1 s for 49k)."""
        if self._classes is None:
            texts = [self.lltok.decode_bytes([i]) for i in range(self.vocab_size)]
            self._classes = {
                "quote": np.array([t.startswith(b'"') and not t.strip(b'"]} ') for t in texts]),
                "bracket": np.array([bool(t.strip()) and not t.strip(b"]} ") for t in texts]),
                "opens": np.array([b"<" in t for t in texts]),
            }
        return self._classes

    def missing_tokens(self, name: str, body: str) -> int:
        """Tokens an open call of `name` (its text so far `body`, after `<tool_call>`) needs at least
        to finish: each required argument not yet written at its minimal value, one token per open
        string, array or object, and the closing tag. Far less than a whole call once most is written."""
        if self._fragments is None:
            self._fragments = {}
            for tool in self.tools:
                fn = function_of(tool)
                params = fn.get("parameters") or {}
                props, defs = params.get("properties", {}), params.get("$defs", {})
                self._fragments[fn["name"]] = {
                    k: len(self.lltok.tokenize_str(f", {json.dumps(k)}: {json.dumps(minimal_instance(props.get(k, {}), defs))}"))
                    for k in params.get("required", [])}
            self._close_tag = len(self.lltok.tokenize_str("}" + CALL_CLOSE))
        args = body.split('"arguments": ', 1)[-1] if '"arguments": ' in body else ""
        missing = sum(n for k, n in self._fragments.get(name, {}).items() if f"{json.dumps(k)}: " not in args)
        return missing + _open_depth(body) + self._close_tag

    def min_call_tokens(self) -> dict[str, int]:
        """Tokens of the shortest valid call of each tool (required arguments at minimal values):
        how much budget a call needs to be finished."""
        if self._min_tokens is None:
            from mmagent.protocol.chat import ToolCall
            from mmagent.protocol.toolcall import format_call

            self._min_tokens = {}
            for tool in self.tools:
                fn = function_of(tool)
                params = fn.get("parameters") or {}
                args = minimal_instance(params, params.get("$defs", {}))
                text = format_call(ToolCall(name=fn["name"], arguments=args if isinstance(args, dict) else {}))
                self._min_tokens[fn["name"]] = len(self.lltok.tokenize_str(text))
        return self._min_tokens


def minimal_instance(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A short JSON value valid for `schema` (required keys only, smallest values); an estimate
    for patterns and formats, which it does not solve."""
    if "$ref" in schema:
        return minimal_instance(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return min(schema["enum"], key=lambda v: len(json.dumps(v)))
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return min((minimal_instance(s, defs) for s in schema[union]), key=lambda v: len(json.dumps(v)))
    kind = schema.get("type")
    if isinstance(kind, list):
        return min((minimal_instance({**schema, "type": k}, defs) for k in kind), key=lambda v: len(json.dumps(v)))
    if "x-artifact" in schema:
        return f"{schema['x-artifact']}_1"
    if kind == "string":
        return "a" * schema.get("minLength", 0)
    if kind in ("integer", "number"):
        return schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return [minimal_instance(schema.get("items", {}), defs)] * schema.get("minItems", 0)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: minimal_instance(props.get(k, {}), defs) for k in schema.get("required", [])}
    return None


class ToolCallLogitsProcessor:
    """Masks disallowed tokens to -inf; `(input_ids [B, T], scores [B, V]) -> scores`.

    The first call sees the prompt (length T0) and only masks; each later call first feeds the
    matchers the tokens appended since (one per step, or more after a forced prefix).

    Given the generation's `max_new_tokens`, the end of the budget is spent closing: once the
    tokens left are no more than what the open call still needs to finish (its missing required
    arguments at minimal values, its open brackets and the closing tag, + `margin`),
    tokens that only close (`"`, `]`, `}`) are preferred whenever the grammar allows one (what it
    forces, such as a missing required key, still comes first); outside a call, no new call opens
    when the shortest one would not fit, and in `required` mode the reply ends. Without this a
    small model looping inside a long argument is cut off mid-call by the budget.
    """

    def __init__(self, grammar: ToolCallGrammar, batch_size: int = 1, max_new_tokens: int | None = None,
                 margin: int = 8) -> None:
        self.grammar = grammar
        self.matchers = [grammar.matcher() for _ in range(batch_size)]
        self.max_new_tokens = max_new_tokens
        self.margin = margin
        self._seen: int | None = None
        self._prompt_len = 0
        self._generated: list[list[int]] = [[] for _ in range(batch_size)]
        self._need = max(grammar.min_call_tokens().values(), default=0) + margin if max_new_tokens is not None else 0
        self._padded: dict[str, torch.Tensor] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, length = input_ids.shape
        if batch != len(self.matchers):
            raise ValueError(f"processor built for batch {len(self.matchers)}, got input_ids of batch {batch}")
        if self._seen is not None:
            self._consume(input_ids[:, self._seen :].tolist())
        else:
            self._prompt_len = length
        self._seen = length
        allowed = self._allowed(scores.shape[-1])  # [B, V] bool
        left = None if self.max_new_tokens is None else self.max_new_tokens - (length - self._prompt_len)
        if left is not None and left <= self._need and self.grammar.tools:  # cheap test first: most steps are far from the end
            self._wind_down(allowed, left)
        return scores.masked_fill(~allowed.to(scores.device), float("-inf"))

    def _wind_down(self, allowed: torch.Tensor, left: int) -> None:
        """Near the end of the budget: close open calls, open no new ones (in place on [B, V]).

        Inside a call the JSON so far is valid and has no free whitespace, so an odd number of
        unescaped quotes means "inside a string": close it with a `"` token; otherwise close
        arrays and objects with `]` / `}` tokens. The grammar still decides what is allowed."""
        classes = self._classes(allowed.shape[1])
        sizes = self.grammar.min_call_tokens()
        for row, (m, inside) in enumerate(zip(self.matchers, self.in_call)):
            if m.is_stopped():
                continue
            if inside:
                body = self._call_text(row)
                name = _CALL_NAME.match(body)
                need = self.grammar.missing_tokens(name.group(1), body) if name else max(sizes.values())
                if left > need + self.margin:
                    continue
                preferred = allowed[row] & classes["quote" if _in_string(body) else "bracket"]
            elif left > min(sizes.values()) + self.margin:
                continue
            elif self.grammar.mode == "required":
                preferred = allowed[row] & classes["eos"]
            else:
                preferred = allowed[row] & ~classes["opens"]
            if preferred.any():
                allowed[row] = preferred

    def _classes(self, vocab: int) -> dict[str, torch.Tensor]:
        """The grammar's token classes padded to the model's vocab [V], built once per processor."""
        if self._padded is None or next(iter(self._padded.values())).shape[0] != vocab:
            self._padded = {k: _pad(torch.from_numpy(v), vocab) for k, v in self.grammar.token_classes().items()}
            eos = torch.zeros(vocab, dtype=torch.bool)
            eos[[e for e in self.grammar.lltok.eos_tokens if e < vocab]] = True
            self._padded["eos"] = eos
        return self._padded

    def _call_text(self, row: int) -> str:
        """The open call's text after `<tool_call>`."""
        text = self.grammar.lltok.decode_bytes(self._generated[row]).decode("utf-8", "replace")
        return text.rsplit(CALL_OPEN, 1)[-1]

    def _consume(self, new_tokens: list[list[int]]) -> None:
        for row, (m, tokens) in enumerate(zip(self.matchers, new_tokens)):
            for tok in tokens:
                if m.is_stopped():  # finished rows keep receiving pad tokens in batched generate
                    break
                self._generated[row].append(tok)
                if not m.consume_token(tok):
                    raise RuntimeError(
                        f"row {row}: the decode loop sampled token {tok}, which the grammar mask forbade "
                        f"({m.get_error()}); apply this processor last, right before sampling"
                    )

    def _allowed(self, vocab: int) -> torch.Tensor:
        rows = []
        for m in self.matchers:
            if m.is_stopped():  # let batched generate pad a finished row freely
                rows.append(np.ones(vocab, dtype=bool))
                continue
            bits = np.unpackbits(np.frombuffer(m.compute_bitmask(), dtype=np.uint8), bitorder="little")
            row = np.zeros(vocab, dtype=bool)  # model vocab may be padded past the tokenizer's
            n = min(vocab, self.grammar.vocab_size)
            row[:n] = bits[:n].astype(bool)
            rows.append(row)
        return torch.from_numpy(np.stack(rows))

    @property
    def in_call(self) -> list[bool]:
        """Whether each row is inside an open `<tool_call>` (for budget-aware callers)."""
        return [not m.is_accepting() and not m.is_stopped() for m in self.matchers]


def tool_call_processor(
    tokenizer: PreTrainedTokenizerBase,
    tools: Sequence[dict[str, Any]],
    *,
    mode: Mode = "auto",
    batch_size: int = 1,
    eos_token_ids: Sequence[int] | None = None,
    max_new_tokens: int | None = None,
) -> ToolCallLogitsProcessor:
    """A fresh processor for one generation over `tools` (the grammar is compiled once and cached).

    Pass the generation's `max_new_tokens` so that calls close before the budget runs out.
    """
    return ToolCallLogitsProcessor(_grammar(tokenizer, tools, mode, eos_token_ids), batch_size, max_new_tokens)


_CALL_NAME = re.compile(r'\{"name": "([^"]+)"')


def _in_string(body: str) -> bool:
    """Odd count of unescaped quotes in valid, whitespace-free JSON so far = inside a string."""
    return body.replace("\\\\", "").replace('\\"', "").count('"') % 2 == 1


def _open_depth(body: str) -> int:
    """Open strings, arrays and objects in valid JSON so far (each needs at least one token to close)."""
    depth, in_str, escaped = 0, False, False
    for ch in body:
        if in_str:
            escaped, in_str = (not escaped and ch == "\\"), in_str and (escaped or ch != '"')
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
    return depth + in_str


def _pad(mask: torch.Tensor, vocab: int) -> torch.Tensor:
    """A tokenizer-sized mask [V_tok] -> the model's vocab [V] (padded ids are never preferred)."""
    out = torch.zeros(vocab, dtype=torch.bool)
    n = min(vocab, mask.shape[0])
    out[:n] = mask[:n]
    return out


_grammars: weakref.WeakKeyDictionary[Any, dict[tuple, ToolCallGrammar]] = weakref.WeakKeyDictionary()


def _grammar(tokenizer: Any, tools: Sequence[dict[str, Any]], mode: Mode, eos: Sequence[int] | None) -> ToolCallGrammar:
    key = (json.dumps(list(tools), sort_keys=True, default=str), mode, tuple(eos) if eos else None)
    with _lock:
        cached = _grammars.setdefault(tokenizer, {}).get(key)
    if cached is None:
        cached = ToolCallGrammar(tokenizer, tools, mode=mode, eos_token_ids=eos)
        with _lock:
            _grammars[tokenizer][key] = cached
    return cached
