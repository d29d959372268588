"""Tools declared by a JSON schema (OpenAI function schemas, MCP tools), with or without a handler.

    weather = SchemaTool({"type": "function", "function": {"name": "weather.current", "description": "...",
                          "parameters": {"type": "object", "properties": {...}, "required": [...]}}},
                         handler=lambda arguments: {"temp_c": 21})
    SchemaTool({"name": "fs.read-file", "description": "...", "inputSchema": {...}})  # MCP; no handler

The model sees the schema as given; arguments are validated by a pydantic model built from it:
string / integer / number / boolean / null, `enum` and `const`, arrays (`items`, `minItems`,
`maxItems`), nested objects (closed to unknown keys like the arguments object unless
`additionalProperties` says otherwise, the rule `mmagent.protocol.constrained` decodes by), `anyOf` /
`oneOf` / type lists / `nullable`, `$ref` into `$defs` or `definitions`, required vs optional
(+ `default`), and the cheap constraints (`minLength`, `maxLength`, `pattern`, `minimum`,
`maximum`, exclusive bounds, `multipleOf`). A keyword it does not know leaves that value
unchecked; it is never an error. Names may hold dots and dashes (`weather.current`, `read-file`).

The handler gets the validated arguments as a JSON dict (schema defaults filled in; an optional
argument without a default is left out) and returns a JSON dict or any JSON value (then wrapped
as `{"result": value}`, as `@tool` does). A tool without a handler is *external*: the agent
validates its calls and hands them to the caller (`RunResult.pending`, `"external": true`), who
runs them and resumes the turn with their results, as OpenAI clients run their own functions.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from mmagent.tools.base import Tool, ToolContext, ToolDefinitionError
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_core import to_jsonable_python

from mmagent.errors import UserError

Handler = Callable[[dict[str, Any]], Any]
# OpenAI's function-name alphabet plus the dots MCP servers use to namespace their tools.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")
_LITERALS = (str, int, bool, type(None))  # values typing.Literal holds (floats and containers are checked by hand)


class ToolSchemaError(ToolDefinitionError, UserError):
    """A tool schema that cannot be used: not an object, no or a bad name, parameters that are not
    an object schema, a pattern that is not a regex ..."""


class ExternalToolError(RuntimeError):
    """An external tool (no handler) was called directly: its caller is the one who runs it."""


class SchemaToolOutput(BaseModel):
    """Whatever JSON object the handler returned (the schema says nothing of outputs)."""

    model_config = ConfigDict(extra="allow")


class SchemaTool(Tool):
    """A `Tool` whose input model is built from a JSON schema; see the module docstring."""

    def __init__(self, schema: dict[str, Any], handler: Handler | None = None) -> None:
        super().__init__()
        fn = function_schema(schema)
        if handler is not None and not callable(handler):
            raise ToolSchemaError(f"tool {fn['name']!r}: the handler must be a callable (arguments: dict) -> Any, got {type(handler).__name__}")
        # Instance attributes shadow the ClassVars, as for FunctionTool.
        self.name, self.description = fn["name"], fn["description"]  # type: ignore[misc]
        self.input_model = input_model(fn["name"], fn["parameters"])  # type: ignore[misc]
        self.output_model = SchemaToolOutput  # type: ignore[misc]
        self.handler = handler
        self._parameters = fn["parameters"]  # what the model sees: the schema as given, not a regeneration

    @property
    def external(self) -> bool:  # type: ignore[override]
        return self.handler is None

    def run(self, args: BaseModel, ctx: ToolContext) -> BaseModel:
        if self.handler is None:
            raise ExternalToolError(f"{self.name} has no handler: its caller runs it (the agent returns its calls in RunResult.pending)")
        out = self.handler(self.dump_arguments(args))
        return SchemaToolOutput.model_validate(out if isinstance(out, dict) else {"result": out})

    def dump_arguments(self, args: BaseModel) -> dict[str, Any]:
        return _dump(args)


def function_schema(schema: Any) -> dict[str, Any]:
    """`{"name", "description", "parameters"}` from an OpenAI (`{"type": "function", "function": ...}`
    or flat) or MCP (`inputSchema`) tool schema; `ToolSchemaError` says what is wrong."""
    from mmagent.protocol.toolcall import function_of

    if not isinstance(schema, dict):
        raise ToolSchemaError(f"a tool schema must be a JSON object, got {type(schema).__name__}")
    try:
        fn = function_of(schema)
    except ValueError as err:
        raise ToolSchemaError(str(err)) from None
    name = fn["name"]
    if not NAME.fullmatch(name):
        raise ToolSchemaError(f"tool name {name!r} must be 1-64 letters, digits, '_', '.' or '-' (not starting with '.' or '-')")
    params = fn.get("parameters")
    params = {"type": "object", "properties": {}} if params is None or params == {} else params
    if not isinstance(params, dict) or params.get("type", "object") != "object" or not isinstance(params.get("properties", {}), dict):
        raise ToolSchemaError(f"tool {name!r}: parameters must be an object schema ({{\"type\": \"object\", \"properties\": {{...}}}})")
    return {"name": name, "description": str(fn.get("description") or ""), "parameters": {"type": "object", **copy.deepcopy(params)}}


def openai_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Any accepted tool schema in the OpenAI form `{"type": "function", "function": {...}}`."""
    return {"type": "function", "function": function_schema(schema)}


def load_tool_schemas(path: Path | str) -> list[SchemaTool]:
    """Handler-less tools from a JSON file: a list of schemas, one schema, or an MCP `tools/list`
    result (`{"tools": [...]}`)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no tool schemas file {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ToolSchemaError(f"{path} is not JSON ({err}); it must hold a list of tool schemas") from None
    if isinstance(data, dict):
        data = data["tools"] if isinstance(data.get("tools"), list) else [data]
    if not isinstance(data, list):
        raise ToolSchemaError(f"{path} must hold a list of tool schemas (OpenAI or MCP style)")
    tools = []
    for i, schema in enumerate(data):
        try:
            tools.append(SchemaTool(schema))
        except ToolSchemaError as err:
            raise ToolSchemaError(f"{path}: tool {i}: {err}") from None
    return tools


# -- schema -> pydantic model ----------------------------------------------------------------------


def input_model(name: str, params: dict[str, Any]) -> type[BaseModel]:
    """The pydantic model validating a tool's arguments; `ToolSchemaError` if pydantic refuses it."""
    try:
        builder = _Builder(name, params)
        model = builder.model(params, top=True)
        model.model_json_schema()  # fails now on what would fail later (a bad pattern ...)
        return model
    except ToolSchemaError:
        raise
    except Exception as err:  # noqa: BLE001 - pydantic's many errors (and RecursionError): one clear kind
        raise ToolSchemaError(f"tool {name!r}: its parameters schema cannot be used for validation: {type(err).__name__}: {err}") from None


class _Builder:
    """Turns (sub)schemas into annotations; `$ref`s resolve into the root's `$defs` / `definitions`."""

    def __init__(self, tool: str, root: dict[str, Any]) -> None:
        self.tool = tool
        self.defs = {**(root.get("definitions") or {}), **(root.get("$defs") or {})}
        self.resolving: set[str] = set()
        self.models = 0

    def annotation(self, s: Any) -> Any:
        if not isinstance(s, dict):
            return Any  # `true` / `{}`: anything goes
        if "$ref" in s:
            return self._ref(s["$ref"])
        if "const" in s:
            return _one_of([s["const"]])
        if isinstance(s.get("enum"), list) and s["enum"]:
            return _one_of(s["enum"])
        for key in ("anyOf", "oneOf"):
            if isinstance(s.get(key), list) and s[key]:
                return Union[tuple(self.annotation(sub) for sub in s[key])]  # noqa: UP007 - built at runtime
        if isinstance(s.get("allOf"), list) and len(s["allOf"]) == 1:
            return self.annotation(s["allOf"][0])
        kind = s.get("type")
        ann = Union[tuple(self.annotation({**s, "type": k}) for k in kind)] if isinstance(kind, list) and kind else self._typed(kind, s)  # noqa: UP007
        return Optional[ann] if s.get("nullable") is True else ann  # noqa: UP007 - OpenAPI's spelling of null

    def _typed(self, kind: Any, s: dict[str, Any]) -> Any:
        if kind == "string":
            return Annotated[str, Field(**_bounds(s, min_length="minLength", max_length="maxLength", pattern="pattern"))]
        if kind in ("integer", "number"):
            bounds = _bounds(s, ge="minimum", le="maximum", gt="exclusiveMinimum", lt="exclusiveMaximum", multiple_of="multipleOf")
            return Annotated[int if kind == "integer" else float, Field(**bounds)]
        if kind == "boolean":
            return bool
        if kind == "null":
            return None
        if kind == "array":
            item = self.annotation(s["items"]) if isinstance(s.get("items"), dict) else Any
            return Annotated[list[item], Field(**_bounds(s, min_length="minItems", max_length="maxItems"))]
        if kind == "object" or "properties" in s:
            return self._object(s)
        return Any  # no type, or one JSON Schema does not have

    def _object(self, s: dict[str, Any]) -> Any:
        if isinstance(s.get("properties"), dict) or s.get("additionalProperties") is False:
            return self.model(s)
        extra = s.get("additionalProperties")
        return dict[str, self.annotation(extra) if isinstance(extra, dict) else Any]

    def model(self, s: dict[str, Any], top: bool = False) -> type[BaseModel]:
        """A model per object schema. Fields are `f0, f1 ...` aliased to the property names, so a
        name that is no identifier (`max-results`) or a BaseModel attribute (`schema`) still works."""
        props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
        required = set(s.get("required") or [])
        fields = {f"f{i}": self._field(prop, sub, prop in required) for i, (prop, sub) in enumerate(props.items())}
        self.models += 1
        # strict: JSON types as JSON Schema means them ("3" is no integer, true no number); python-re:
        # JSON Schema patterns are ECMA regexes, closer to Python's than to Rust's (lookarounds).
        config = ConfigDict(extra=_extra(s), strict=True, regex_engine="python-re")
        return create_model(f"{_camel(self.tool)}{'Input' if top else f'Arg{self.models}'}", __config__=config, **fields)

    def _field(self, prop: str, sub: Any, required: bool) -> tuple[Any, Any]:
        ann = self.annotation(sub)
        if required:
            return ann, Field(..., alias=prop)
        if isinstance(sub, dict) and "default" in sub:
            # A factory: each call gets its own copy of a list / dict default (and `_dump` knows
            # the field had a schema default).
            default = sub["default"]
            return ann, Field(default_factory=lambda: copy.deepcopy(default), alias=prop)
        return Optional[ann], Field(None, alias=prop)  # noqa: UP007

    def _ref(self, ref: Any) -> Any:
        name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None
        if name not in self.defs or ref in self.resolving:
            return Any  # unresolvable or recursive: that value is not checked
        self.resolving.add(ref)
        try:
            return self.annotation(self.defs[name])
        finally:
            self.resolving.discard(ref)


def _one_of(values: list[Any]) -> Any:
    """`Literal[...]` (pydantic's clear "Input should be 'a' or 'b'") where typing allows it, else a check."""
    if all(isinstance(v, _LITERALS) for v in values):
        return Literal[tuple(values)]
    from pydantic import AfterValidator

    def check(v: Any) -> Any:
        if v not in values:
            raise ValueError(f"Input should be one of {json.dumps(values)}")
        return v

    return Annotated[Any, AfterValidator(check)]


def _bounds(s: dict[str, Any], **keys: str) -> dict[str, Any]:
    """pydantic Field kwargs from the schema keywords present (draft-4 boolean exclusive bounds skipped)."""
    return {arg: s[kw] for arg, kw in keys.items() if kw in s and not isinstance(s[kw], bool)
            and (isinstance(s[kw], (int, float)) or (arg == "pattern" and isinstance(s[kw], str)))}


def _extra(s: dict[str, Any]) -> Literal["forbid", "allow"]:
    """Closed when `additionalProperties` is false, or absent on an object that lists properties."""
    extra = s.get("additionalProperties")
    return "forbid" if extra is False or (extra is None and "patternProperties" not in s) else "allow"


def _dump(m: BaseModel) -> dict[str, Any]:
    """Validated arguments as JSON under the schema's names: what was given, plus schema defaults;
    an optional argument without a default that was left out stays out (not `null`)."""
    out = {}
    for name, f in type(m).model_fields.items():
        if name in m.model_fields_set or f.default_factory is not None:
            out[f.alias or name] = _plain(getattr(m, name))
    out.update({k: _plain(v) for k, v in (m.model_extra or {}).items()})
    return to_jsonable_python(out)


def _plain(v: Any) -> Any:
    if isinstance(v, BaseModel):
        return _dump(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[_.\-]+", name)) or "Tool"


__all__ = ["ExternalToolError", "SchemaTool", "SchemaToolOutput", "ToolSchemaError", "function_schema", "input_model",
           "load_tool_schemas", "openai_schema"]
