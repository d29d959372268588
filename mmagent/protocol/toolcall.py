"""THE tool-call format: one text format for the prompt, the parser, the training data and the eval.

A model sees the tools as one compact line each in its system message (through its own chat
template), and calls them by emitting, anywhere in its reply, one or more blocks

    <tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>

Media are never paths: they are artifact ids (`image_1`, `audio_1`, ...). A tool's result goes
back to the model as a `tool` message whose content is

    <tool_response>{"name": "read_text", "result": {...}}</tool_response>   (or "error": "...")

The one-line signature rendering (`name(arg: type, opt?: type = default) - description`) is the
shape that let SmolLM2-135M learn tool calling in a CPU probe: a 10-tool prompt
fits in ~265 tokens, where pretty-printed JSON schemas take 3-4x that.

The parser is tolerant (prose around calls, code fences around or inside the tags, a missing
closing tag at the end of a cut-off generation, `"parameters"` for `"arguments"`, arguments given
as a JSON string) and says what it could not parse, so the agent can send it back for repair.
It never raises: JSON nested deeper than `MAX_JSON_DEPTH` (the one bound, shared with the tool
registry and `mmagent tools call --args`) is a parse error, not a RecursionError.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from mmagent.protocol.chat import Message, ToolCall

log = logging.getLogger(__name__)

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
RESULT_OPEN = "<tool_response>"
RESULT_CLOSE = "</tool_response>"

# A block ends at its closing tag, at the next opening tag (a missing close) or at the end of text.
_TAGGED = re.compile(
    re.escape(CALL_OPEN) + r"(.*?)(?:" + re.escape(CALL_CLOSE) + r"|(?=" + re.escape(CALL_OPEN) + r")|\Z)", re.DOTALL
)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)```", re.DOTALL)
_SNIPPET = 60  # chars of a bad fragment quoted back in an error message

# How deeply JSON may nest (arrays and objects), in model output, in `tools call --args` and in
# the arguments the registry validates. Real calls nest a handful of levels; without a bound,
# JSON nested ~1000 deep makes `json` raise RecursionError instead of a parse error.
MAX_JSON_DEPTH = 64
# A JSON string (escapes included; an unterminated one runs to the end) or a bracket.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


# ---------------------------------------------------------------------------------------------
# rendering: tool schemas -> system prompt
# ---------------------------------------------------------------------------------------------


def function_of(tool: dict[str, Any]) -> dict[str, Any]:
    """The `{"name", "description", "parameters"}` part of an OpenAI-style tool schema (or itself);
    an MCP tool's `inputSchema` is read as its `parameters` (the rest of the code knows one key)."""
    fn = tool.get("function", tool) if tool.get("type", "function") == "function" else tool
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise ValueError(f"not a tool schema (need a 'name', or {{'type': 'function', 'function': {{...}}}}): {str(tool)[:120]}")
    if "parameters" not in fn and isinstance(fn.get("inputSchema"), dict):
        return {**fn, "parameters": fn["inputSchema"]}
    return fn


def type_label(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> str:
    """A short type name for a JSON schema: `str`, `int`, `list[str]`, `"a"|"b"`, `str|null`..."""
    defs = defs or {}
    if "$ref" in schema:
        return type_label(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    if "x-artifact" in schema:  # an artifact id (tools.base.ImageId ...): say which kind, not "str"
        return f"{schema['x-artifact']}_id"
    if "enum" in schema:
        return "|".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return "|".join(type_label(s, defs) for s in schema[union])
    kind = schema.get("type")
    if isinstance(kind, list):
        return "|".join(type_label({**schema, "type": k}, defs) for k in kind)
    if kind == "array":
        return f"list[{type_label(schema.get('items', {}), defs)}]"
    if kind == "object" and "properties" in schema:
        return "{" + ", ".join(_arg_labels(schema, defs)) + "}"
    return {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "object": "dict",
            "null": "null"}.get(kind, "any")


def _arg_labels(params: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    required = set(params.get("required", []))
    labels = []
    for name, prop in params.get("properties", {}).items():
        label = f"{name}{'' if name in required else '?'}: {type_label(prop, defs)}"
        if "default" in prop and prop["default"] is not None:
            label += f" = {json.dumps(prop['default'])}"
        labels.append(label)
    return labels


def render_signature(tool: dict[str, Any]) -> str:
    """One line: `name(arg: type, opt?: type = default) - description` (first sentence)."""
    fn = function_of(tool)
    params = fn.get("parameters") or {}
    args = ", ".join(_arg_labels(params, params.get("$defs", {})))
    desc = " ".join((fn.get("description") or "").split())
    desc = desc.split(". ")[0].rstrip(".")
    return f"{fn['name']}({args})" + (f" - {desc}" if desc else "")


def render_tool_prompt(tools: Sequence[dict[str, Any]]) -> str:
    """The system-prompt text that lists the tools and explains the call format.

    `tools` are OpenAI-style function schemas (`Tool.schema()`); `?` marks an optional argument.
    """
    lines = [
        "You can call tools. To call one, write "
        '<tool_call>{"name": "TOOL", "arguments": {...}}</tool_call> '
        "(several calls allowed); otherwise answer in plain text. "
        "Refer to attached media by id (image_1, audio_1).",
        "Tools:",
    ]
    lines += [render_signature(t) for t in tools]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# formatting: calls and results -> text (what training data and the history contain)
# ---------------------------------------------------------------------------------------------


def format_call(call: ToolCall) -> str:
    body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return f"{CALL_OPEN}{body}{CALL_CLOSE}"


def format_calls(calls: Iterable[ToolCall]) -> str:
    """Calls as the model should emit them: one `<tool_call>` block per line."""
    return "\n".join(format_call(c) for c in calls)


def format_tool_result(name: str, result: Any = None, error: str | None = None,
                       expected: dict[str, str] | None = None) -> str:
    """A tool's outcome as the model reads it in the following `tool` message: the one renderer of
    a tool result (the training data, the agent's history, `ToolResult.observation`, the OpenAI
    endpoint's tool messages all use it; the shipped model is trained on exactly this text).

    `expected` (with `error`, for a call whose arguments were refused): the failing fields'
    expected types, `{field: "integer"}`, so that the model can repair the call."""
    body: dict[str, Any] = {"name": name}
    if error is not None:
        body["error"] = error
        if expected:
            body["expected"] = expected
    else:
        body["result"] = result
    return f"{RESULT_OPEN}{json.dumps(body, ensure_ascii=False, default=str)}{RESULT_CLOSE}"


def attachment_note(message: Message) -> str:
    """`[attached: image_1, audio_1]` for a message that carries media, else ``."""
    ids = [*message.images, *message.audio]
    return f"[attached: {', '.join(ids)}]" if ids else ""


def template_messages(messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None = None) -> list[dict[str, str]]:
    """`Message`s -> plain `{"role", "content"}` dicts for `tokenizer.apply_chat_template`.

    The tool prompt is appended to the system message (one is added when there is none); an
    assistant turn's calls are re-rendered in the call format; media ids are named in the text.
    Backends share this so that serving sees exactly what training data contains.
    """
    out: list[dict[str, str]] = []
    tool_text = render_tool_prompt(tools) if tools else ""
    if tool_text and (not messages or messages[0].role != "system"):
        out.append({"role": "system", "content": tool_text})
    for i, m in enumerate(messages):
        parts = [m.content] if m.content else []
        if i == 0 and m.role == "system" and tool_text:
            parts.append(tool_text)
        if m.role == "assistant" and m.tool_calls:
            parts.append(format_calls(m.tool_calls))
        note = attachment_note(m)
        if note:
            parts.insert(0, note)
        out.append({"role": m.role, "content": "\n".join(parts)})
    return out


# ---------------------------------------------------------------------------------------------
# parsing: model text -> calls, errors, prose
# ---------------------------------------------------------------------------------------------


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."


def _strip_fence(body: str) -> str:
    m = _FENCE.fullmatch(body.strip())
    return m.group(2).strip() if m else body.strip().strip("`").strip()


class JSONTooDeepError(ValueError):
    """JSON text nested deeper than `MAX_JSON_DEPTH`: refused before `json` recurses into it."""


def json_nesting_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> int | None:
    """The offset of the bracket that nests the first JSON value of `text` past `limit`, or None.

    A linear scan (strings skipped, escapes honoured) that stops where that value closes, so
    trailing text after it does not count; nothing is decoded.
    """
    depth = 0
    for m in _JSON_TOKEN.finditer(text):
        c = m.group()
        if c == "[" or c == "{":
            depth += 1
            if depth > limit:
                return m.start()
        elif c == "]" or c == "}":
            depth -= 1
            if depth <= 0:
                return None
    return None


def loads_json(text: str, limit: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` that never raises anything but `ValueError` (a JSONDecodeError, a
    `JSONTooDeepError`, or an integer too long to convert), whatever the text."""
    pos = json_nesting_exceeds(text, limit)
    if pos is not None:
        raise JSONTooDeepError(f"JSON nested more than {limit} levels deep (at char {pos}); flatten it")
    try:
        return json.loads(text)
    except RecursionError:  # unreachable after the scan; kept so that no input ends a turn
        raise JSONTooDeepError(f"JSON nested too deeply; keep it under {limit} levels") from None


def value_nesting_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether dicts / lists / tuples in `value` nest more than `limit` deep (iterative: no
    recursion; a self-containing value counts as infinitely deep). A part shared by several
    parents is walked again only from a deeper position, so at most `limit` times."""
    deepest: dict[int, int] = {}  # id of a container -> the deepest position it was walked from
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if deepest.get(id(node), 0) >= depth:  # walked from as deep already: nothing new below
            continue
        deepest[id(node)] = depth
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return False


def call_from_json(body: str) -> ToolCall:
    """One call from the JSON text inside a `<tool_call>` block; `ValueError` says what is wrong."""
    text = _strip_fence(body)
    if not text:
        raise ValueError("empty <tool_call> block: put a JSON object with 'name' and 'arguments' inside")
    pos = json_nesting_exceeds(text)
    if pos is not None:
        raise ValueError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep (at char {pos}) in {_snippet(text)!r}; "
                         "tool arguments never need that: flatten them")
    try:
        obj, _end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON ({err.msg} at char {err.pos}) in {_snippet(text)!r}") from None
    except (ValueError, RecursionError) as err:  # an integer literal over Python's int_max_str_digits
        what = "a number with too many digits" if "integer string conversion" in str(err) else str(err)
        raise ValueError(f"invalid JSON ({what}) in {_snippet(text)!r}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"a call must be a JSON object, got {type(obj).__name__}: {_snippet(text)!r}")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a call needs a string 'name': {_snippet(text)!r}")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # OpenAI wire style: arguments as a JSON string
        try:
            args = loads_json(args) if args.strip() else {}
        except json.JSONDecodeError as err:
            raise ValueError(f"'arguments' of {name} is a string that is not JSON ({err.msg})") from None
        except ValueError as err:
            raise ValueError(f"'arguments' of {name} is a string that is not usable JSON ({err})") from None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ValueError(f"'arguments' of {name} must be a JSON object, got {type(args).__name__}")
    call_id = obj.get("id")
    return ToolCall(name=name, arguments=args, id=call_id if isinstance(call_id, str) else None)


def _fenced_calls(text: str) -> tuple[list[ToolCall], list[str], str]:
    """Untagged calls in code fences (```json {"name": ..., "arguments": ...}```): a common slip.

    A fence that is not a call stays prose; one that is a call but unusable (too deep, arguments
    not an object ...) is an error, like a tagged call's."""
    calls: list[ToolCall] = []
    errors: list[str] = []

    def take(m: re.Match[str]) -> str:
        body = m.group(2).strip()
        if not body.startswith("{") or '"name"' not in body:
            return m.group(0)
        try:
            obj = loads_json(body)
        except JSONTooDeepError as err:
            errors.append(f"fenced tool call: {err}")
            return ""
        except ValueError:
            return m.group(0)
        if not (isinstance(obj, dict) and isinstance(obj.get("name"), str) and ("arguments" in obj or "parameters" in obj)):
            return m.group(0)
        try:
            calls.append(call_from_json(body))
        except ValueError as err:
            errors.append(f"fenced tool call: {err}")
        return ""

    prose = _FENCE.sub(take, text)
    return calls, errors, prose


def parse_tool_calls(text: str) -> tuple[list[ToolCall], list[str], str]:
    """Splits model output into (calls, errors, prose); never raises, whatever the text.

    `errors` has one line per fragment that looked like a call and did not parse (invalid JSON,
    JSON nested over `MAX_JSON_DEPTH`, no name, an unclosed tag...): the agent sends them back to
    the model as a repair. `prose` is everything that was not a call, stripped.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    try:
        return _parse(text)
    except Exception as err:  # noqa: BLE001 - a parser bug must not end the turn: report it as a repair
        log.warning("parse_tool_calls failed on %d chars: %s: %s", len(text), type(err).__name__, err, exc_info=True)
        hint = f'write each call as one {CALL_OPEN}{{"name": ..., "arguments": {{...}}}}{CALL_CLOSE} block'
        prose = text.replace(CALL_OPEN, "").replace(CALL_CLOSE, "").strip()
        return [], [f"the reply could not be parsed ({type(err).__name__}); {hint}"], prose


def _parse(text: str) -> tuple[list[ToolCall], list[str], str]:
    calls: list[ToolCall] = []
    errors: list[str] = []
    prose_parts: list[str] = []
    pos = 0
    for n, m in enumerate(_TAGGED.finditer(text), start=1):
        prose_parts.append(text[pos : m.start()])
        pos = m.end()
        closed = m.group(0).endswith(CALL_CLOSE)
        try:
            calls.append(call_from_json(m.group(1)))
        except ValueError as err:
            hint = "" if closed else f" (no closing {CALL_CLOSE}: the output may have been cut off)"
            errors.append(f"tool call {n}: {err}{hint}")
    prose_parts.append(text[pos:])
    prose = "".join(prose_parts)
    if CALL_CLOSE in prose:
        errors.append(f"found {CALL_CLOSE} without a matching {CALL_OPEN}")
        prose = prose.replace(CALL_CLOSE, "")
    if not calls and not errors:
        calls, errors, prose = _fenced_calls(prose)
    # Fences that only wrapped tagged calls are left empty: drop them from the prose.
    prose = _FENCE.sub(lambda m: m.group(0) if m.group(2).strip() else "", prose)
    return calls, errors, prose.strip()
