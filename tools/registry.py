"""The tool registry: unique names, schemas for the prompt, and calls that never crash the run.

`ToolRegistry.call` is the agent's one way to act. Whatever goes wrong comes back as a
`ToolResult` the model can read and repair:

    validation    arguments not an object, nested over MAX_JSON_DEPTH, a field missing / of the
                  wrong type / unknown, an artifact id that does not exist or is of the wrong kind
                  (details + the schema; the size of each image named), or a `ToolInputError`
                  the tool raised (a crop box outside the image ...)
    unknown_tool  a name not registered (with the list of known names)
    timeout       the tool ran past its time; its worker thread is abandoned (daemon)
    exception     the tool raised; the message is kept, the traceback goes to the log

A timed-out tool may still finish in the background; artifacts it adds later are complete files
(the store writes temp + rename) but are not reported in any result. A timeout is a positive
number of seconds, or `NO_TIMEOUT` (`math.inf`; `None` for `default_timeout_s`): zero or a
negative number is refused, never taken to mean "no timeout".
"""

from __future__ import annotations

import copy
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from mmagent.tools.base import Tool, ToolContext, ToolInputError, tool
from pydantic import BaseModel, Field, ValidationError

from mmagent.errors import UserError
from mmagent.media.artifacts import ArtifactError
from mmagent.protocol.toolcall import (
    MAX_JSON_DEPTH,
    format_tool_result,
    value_nesting_exceeds,
)

log = logging.getLogger(__name__)

ErrorKind = Literal["validation", "unknown_tool", "timeout", "exception"]
NO_TIMEOUT = math.inf  # wait for the tool however long it takes (say so explicitly: 0 is refused)


class ToolResult(BaseModel):
    """The observation one call produces (what goes back to the model and into the log)."""

    name: str
    ok: bool
    output: dict[str, Any] | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    # validation: {"errors": [{field, message, input}], "schema": ..., "expected": {field: type}[, "image_sizes"]}
    details: dict[str, Any] | None = None
    artifacts: list[str] = Field(default_factory=list)  # artifact ids in the output (new images ...)
    latency_s: float = 0.0

    @property
    def expected(self) -> dict[str, str] | None:
        """A refused call's failing fields and their expected types (`details["expected"]`), or None."""
        return (self.details or {}).get("expected") or None

    def observation(self) -> str:
        """What the model reads of this call in the next `tool` message: the output, or the error
        and (a refused call) the failing fields' expected types. The agent's history renders its
        records with the same one renderer (`mmagent.protocol.toolcall.format_tool_result`)."""
        if self.ok:
            return format_tool_result(self.name, self.output)
        return format_tool_result(self.name, error=self.error, expected=self.expected)


class UnknownToolError(KeyError, UserError):
    def __str__(self) -> str:
        return self.args[0]


class DuplicateToolError(ValueError, UserError):
    """Two tools with one name (names are how the model calls them)."""


class TimeoutSettingError(ValueError, UserError):
    """A tool timeout that is not a positive number of seconds (or `NO_TIMEOUT`)."""


def check_timeout(timeout_s: float | None, what: str = "timeout_s") -> float | None:
    """`timeout_s` itself when it is None, positive, or `NO_TIMEOUT`; else `TimeoutSettingError`."""
    if timeout_s is None or timeout_s == NO_TIMEOUT:
        return timeout_s
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (0 < timeout_s < math.inf):
        raise TimeoutSettingError(f"{what} must be a positive number of seconds, got {timeout_s!r}; "
                                  "use mmagent.tools.registry.NO_TIMEOUT (math.inf) for no timeout")
    return timeout_s


class ToolRegistry:
    """Named tools; `subset` picks the tools one agent may use; user tools register the same way:
    `Tool` objects, `@tool` functions, or JSON schemas (OpenAI or MCP style, see `SchemaTool`)."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any] | dict[str, Any]] = (), default_timeout_s: float | None = 120.0) -> None:
        self._tools: dict[str, Tool] = {}
        self.default_timeout_s = check_timeout(default_timeout_s, "default_timeout_s")  # None: no timeout
        for t in tools:
            self.register(t)

    def register(self, t: Tool | Callable[..., Any] | dict[str, Any]) -> Tool:
        """Adds a Tool, a plain typed, documented function (wrapped with `@tool`), or a JSON
        schema (a handler-less `SchemaTool`: its calls go back to the agent's caller)."""
        if isinstance(t, dict):
            from mmagent.tools.schema_tool import SchemaTool

            t = SchemaTool(t)
        elif not isinstance(t, Tool):
            t = tool(t)
        if not t.name:
            raise ValueError(f"{t!r} has no name; set the class attribute `name`")
        if t.name in self._tools:
            raise DuplicateToolError(f"a tool named {t.name!r} is already registered; tool names must be unique")
        self._tools[t.name] = t
        return t

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise self._unknown(name) from None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def schemas(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        return [self.get(n).schema() for n in (self.names() if names is None else names)]

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        """A registry holding only `names` (the same Tool objects, so loaded models are shared)."""
        return ToolRegistry([self.get(n) for n in names], self.default_timeout_s)

    def validate(self, name: str, arguments: Any, ctx: ToolContext) -> dict[str, Any] | ToolResult:
        """The arguments as the tool would receive them (validated, as JSON), or the failed
        `ToolResult` that `call` would return; runs nothing (the agent checks external calls so)."""
        start = time.perf_counter()
        if not isinstance(name, str) or name not in self._tools:
            return _fail(str(name), "unknown_tool", str(self._unknown(name)), start, {"known_tools": self.names()})
        t = self._tools[name]
        args = _validate(t, arguments, ctx)
        return args if isinstance(args, ToolResult) else t.dump_arguments(args)

    def call(self, name: str, arguments: Any, ctx: ToolContext, timeout_s: float | None = None) -> ToolResult:
        """Validates, runs with a timeout, and reports; never raises for anything the model did."""
        start = time.perf_counter()
        if not isinstance(name, str) or name not in self._tools:
            return _fail(str(name), "unknown_tool", str(self._unknown(name)), start, {"known_tools": self.names()})
        t = self._tools[name]
        args_or_err = _validate(t, arguments, ctx)
        if isinstance(args_or_err, ToolResult):
            args_or_err.latency_s = time.perf_counter() - start
            return args_or_err
        timeout = self.default_timeout_s if timeout_s is None else check_timeout(timeout_s)
        status, value = _run_with_timeout(lambda: t.invoke(args_or_err, ctx), timeout)
        if status == "timeout":
            return _fail(name, "timeout", f"{name} did not finish within {timeout:g} s and was abandoned; try smaller inputs or fewer steps", start)
        if status == "error":
            err = value
            log.info("tool %s raised %s: %s", name, type(err).__name__, err)
            log.debug("traceback of %s", name, exc_info=err)
            if isinstance(err, ToolInputError):  # arguments the schema allows that the inputs do not fit
                bad = _invalid(name, [{"field": err.field, "message": str(err)}], t.parameters)
                bad.latency_s = time.perf_counter() - start
                return bad
            kind = "validation" if isinstance(err, ArtifactError) else "exception"
            return _fail(name, kind, f"{name} failed: {type(err).__name__}: {err}", start)
        try:
            output = value.model_dump(mode="json")
        except Exception as err:  # noqa: BLE001 - an output that cannot become JSON is the tool's bug, not the run's end
            return _fail(name, "exception", f"{name} returned an output that is not JSON-serialisable: {err}", start)
        ids = [i for k in t.artifact_outputs for i in _as_list(output.get(k)) if isinstance(i, str)]
        return ToolResult(name=name, ok=True, output=output, artifacts=ids, latency_s=time.perf_counter() - start)

    def _unknown(self, name: str) -> UnknownToolError:
        return UnknownToolError(f"unknown tool {name!r}; known tools: {', '.join(self.names()) or 'none'}")


def _fail(name: str, kind: ErrorKind, message: str, start: float, details: dict[str, Any] | None = None) -> ToolResult:
    return ToolResult(name=name, ok=False, error=message, error_kind=kind, details=details, latency_s=time.perf_counter() - start)


def _validate(t: Tool, arguments: Any, ctx: ToolContext) -> BaseModel | ToolResult:
    schema = t.parameters
    if not isinstance(arguments, dict):
        return _invalid(t.name, [{"field": "", "message": f"arguments must be a JSON object, got {type(arguments).__name__}"}], schema)
    if value_nesting_exceeds(arguments, MAX_JSON_DEPTH):  # before pydantic or json.dumps recurse into it
        return _invalid(t.name, [{"field": "", "message": f"arguments nest more than {MAX_JSON_DEPTH} levels deep; flatten them"}], schema)
    try:
        args = t.input_model.model_validate(arguments)
    except (ValidationError, RecursionError) as err:
        problems = [_describe(e, schema) for e in err.errors()] if isinstance(err, ValidationError) else [
            {"field": "", "message": "arguments are nested too deeply to validate; flatten them"}]
        return _invalid(t.name, problems, schema, _image_sizes(t, arguments, ctx))
    problems = []
    # By property name: a SchemaTool's fields are aliased f0, f1 ... (dumped only when there is an id to check).
    dumped = args.model_dump(by_alias=True) if t.artifact_args else {}
    for field, kind in t.artifact_args.items():
        value = dumped.get(field)
        for aid in value if isinstance(value, list) else [value]:
            if aid is None:
                continue
            try:
                art = ctx.artifacts.get(aid)
            except ArtifactError as err:
                problems.append({"field": field, "message": str(err), "input": aid})
                continue
            if art.kind != kind:
                problems.append({"field": field, "message": f"{aid} is a {art.kind} artifact; this argument takes a {kind} id ({kind}_N)", "input": aid})
    return _invalid(t.name, problems, schema) if problems else args


def _invalid(name: str, errors: list[dict[str, Any]], schema: dict[str, Any], sizes: dict[str, list[int]] | None = None) -> ToolResult:
    lines = "; ".join(f"{e['field'] or 'arguments'}: {e['message']}" for e in errors)
    seen = "".join(f" {aid} is {w}x{h} pixels (width x height)." for aid, (w, h) in (sizes or {}).items())
    details: dict[str, Any] = {"errors": errors, "schema": copy.deepcopy(schema)}
    expected = _expected(errors, schema)
    if expected:
        details["expected"] = expected
    if sizes:
        details["image_sizes"] = sizes
    return ToolResult(
        name=name, ok=False, error_kind="validation",
        error=f"invalid arguments for {name}: {lines}.{seen} Call it again with arguments matching the schema.",
        details=details,
    )


def _image_sizes(t: Tool, arguments: dict[str, Any], ctx: ToolContext) -> dict[str, list[int]]:
    """{image id: [width, height]} for the image arguments that name stored images, so that a
    model whose box (or size) was refused learns the image's size (from the store's metadata)."""
    sizes: dict[str, list[int]] = {}
    for field, kind in t.artifact_args.items():
        if kind != "image":
            continue
        value = arguments.get(field)
        for aid in value if isinstance(value, list) else [value]:
            if not isinstance(aid, str) or aid in sizes:
                continue
            try:
                meta = ctx.artifacts.get(aid).meta
            except Exception:  # noqa: BLE001 - unknown / unreadable ids are reported by validation itself
                continue
            if isinstance(meta.get("width"), int) and isinstance(meta.get("height"), int):
                sizes[aid] = [meta["width"], meta["height"]]
    return sizes


def _describe(e: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    field = ".".join(str(p) for p in e["loc"])
    if e["type"] == "missing":
        msg = "required argument is missing"
    elif e["type"] == "extra_forbidden":
        msg = f"unknown argument; allowed: {', '.join(_allowed_at(schema, e['loc'][:-1])) or 'none'}"
    else:
        msg = e["msg"]
    out = {"field": field, "message": msg}
    if e["type"] != "missing":
        out["input"] = _short(e.get("input"))
    return out


def _expected(errors: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, str]:
    """{failing field: its expected type} for the fields the schema names (the short part of the
    schema the model needs to repair the call; an unknown field's message already lists the
    allowed ones)."""
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    out: dict[str, str] = {}
    for e in errors:
        field = e.get("field") or ""
        if not field or field in out:
            continue
        node: Any = schema
        for part in field.split("."):
            node = _resolved(node, defs)
            if part.isdigit() and isinstance(node.get("items"), dict):
                node = node["items"]
            elif part in node.get("properties", {}):
                node = node["properties"][part]
            else:
                node = None
                break
        if node is not None:
            out[field] = _type_text(node, defs)
    return out


def _type_text(node: Any, defs: dict[str, Any], depth: int = 0) -> str:
    """A JSON schema node in a few words: `integer >= 1`, `array of 4 number`, `object {x0, y0}`, `one of "a", "b"`."""
    node = _resolved(node, defs)
    if "enum" in node:
        return "one of " + ", ".join(json.dumps(v, ensure_ascii=False) for v in node["enum"][:12])
    if "const" in node:
        return json.dumps(node["const"], ensure_ascii=False)
    alts = node.get("anyOf", node.get("oneOf"))
    if isinstance(alts, list) and alts and depth < 3:
        return " or ".join(_type_text(a, defs, depth + 1) for a in alts[:4])
    kind = node.get("type")
    text = " or ".join(map(str, kind)) if isinstance(kind, list) else str(kind or "any")
    if kind == "array":
        lo, hi = node.get("minItems"), node.get("maxItems")
        count = f"{lo} " if lo is not None and lo == hi else ""
        items = node.get("items")
        text = f"array of {count}{_type_text(items, defs, depth + 1)}" if isinstance(items, dict) and depth < 3 else text
    elif kind == "object" and isinstance(node.get("properties"), dict) and node["properties"]:
        text = "object {" + ", ".join(list(node["properties"])[:12]) + "}"
    bounds = [f"{op} {node[k]}" for k, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                                              ("exclusiveMaximum", "<"), ("minLength", "length >="), ("maxLength", "length <="))
              if k in node]
    return " ".join([text, *bounds]) if bounds else text


def _allowed_at(schema: dict[str, Any], path: tuple[Any, ...]) -> list[str]:
    """The property names of the (nested) object at `path`: an unknown key inside `loc` is
    answered with `loc`'s keys, not the top level's. Steps the schema does not name (pydantic's
    union-member tags) are skipped."""
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    node = schema
    for part in path:
        node = _resolved(node, defs)
        if isinstance(part, int) and isinstance(node.get("items"), dict):
            node = node["items"]
        elif isinstance(part, str) and part in node.get("properties", {}):
            node = node["properties"][part]
    return list(_resolved(node, defs).get("properties", {}))


def _resolved(node: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """`node` with `$ref`s followed and an optional (`anyOf: [X, null]`) unwrapped to X."""
    for _ in range(8):  # a ref to a ref ...; bounded, so a cycle cannot hang the error path
        if not isinstance(node, dict):
            return {}
        if isinstance(node.get("$ref"), str):
            node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
            continue
        alts = [a for a in node.get("anyOf", node.get("oneOf", [])) if isinstance(a, dict) and a.get("type") != "null"]
        if len(alts) != 1:
            return node
        node = alts[0]
    return node if isinstance(node, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _short(value: Any, limit: int = 200) -> Any:
    """`value` itself if its JSON is short, else the start of that JSON (encoded lazily, so a huge
    or self-containing input costs no more than `limit` characters)."""
    text = ""
    try:
        for chunk in json.JSONEncoder(default=str).iterencode(value):
            text += chunk
            if len(text) > limit:
                return text[:limit] + "..."
    except (ValueError, TypeError, RecursionError):  # a circular reference, a key JSON cannot hold
        return (text or type(value).__name__)[:limit] + "..."
    return value


def _run_with_timeout(fn: Callable[[], Any], timeout_s: float | None) -> tuple[str, Any]:
    """Runs `fn` in a daemon worker thread: a hung tool cannot block the agent or interpreter exit."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - reported as an observation
            box["error"] = err

    worker = threading.Thread(target=target, name="mmagent-tool", daemon=True)
    worker.start()
    worker.join(None if timeout_s is None or timeout_s == NO_TIMEOUT else timeout_s)
    if worker.is_alive():
        return "timeout", None
    if "error" in box:
        return "error", box["error"]
    return "ok", box["value"]


def default_registry(settings=None, include: Iterable[str] | None = None) -> ToolRegistry:
    """The built-in tools (models load lazily on first call) and the user's `tools_modules`.
    `include` picks a subset by name."""
    from mmagent.tools.builtins import builtin_tools

    from mmagent.config import get_settings

    settings = settings or get_settings()
    reg = ToolRegistry(builtin_tools(settings))
    for spec, t in _module_tools(settings.tools_modules):
        if t.name in reg:
            if reg.get(t.name) is t:  # a built-in tool the module imported: already there
                continue
            raise ToolModuleError(f"tools module {spec!r} defines a tool named {t.name!r}, which is a built-in tool's name; rename it")
        reg.register(t)
    return reg.subset(include) if include is not None else reg


class ToolModuleError(ValueError, UserError):
    """A `tools_modules` entry that cannot be imported (it raised, even SystemExit), defines no
    tool, or reuses a tool name."""


def custom_tools(modules: Iterable[str]) -> list[Tool]:
    """Every module-level `Tool` of each module (a dotted name, or a path to a .py file), in order."""
    return [t for _spec, t in _module_tools(modules)]


def _module_tools(modules: Iterable[str]) -> list[tuple[str, Tool]]:
    """(module spec, tool) for each distinct module-level `Tool`; a name used twice is an error."""
    found: list[tuple[str, Tool]] = []
    owner: dict[str, tuple[str, Tool]] = {}
    for spec in modules:
        mod = _import_tools_module(spec)
        tools = list({id(v): v for v in vars(mod).values() if isinstance(v, Tool)}.values())  # one per object
        if not tools:
            raise ToolModuleError(f"tools module {spec!r} defines no tool: decorate functions with `@mmagent.tools.tool` at module level")
        for t in tools:
            if t.name in owner:
                if owner[t.name][1] is t:  # the same tool imported by two modules
                    continue
                raise ToolModuleError(f"tools modules {owner[t.name][0]!r} and {spec!r} both define a tool named {t.name!r}; tool names must be unique")
            owner[t.name] = (spec, t)
            found.append((spec, t))
    return found


_FILE_MODULES: dict[tuple[Any, int], Any] = {}  # (resolved path, mtime) -> module run from that file


def _import_tools_module(spec: str) -> Any:
    import importlib
    import importlib.util
    from pathlib import Path

    try:
        if spec.endswith(".py"):
            path = Path(spec).expanduser().resolve()
            if not path.is_file():
                raise ToolModuleError(f"tools module {spec!r}: no such file")
            key = (path, path.stat().st_mtime_ns)
            if key not in _FILE_MODULES:  # run a file once per process (and again if edited), as `import` would
                mspec = importlib.util.spec_from_file_location(f"mmagent_user_tools_{path.stem}", path)
                mod = importlib.util.module_from_spec(mspec)
                mspec.loader.exec_module(mod)
                _FILE_MODULES[key] = mod
            return _FILE_MODULES[key]
        return importlib.import_module(spec)
    except (ToolModuleError, KeyboardInterrupt):
        raise
    except SystemExit as err:  # sys.exit() / exit() at import would end the command silently (exit 0)
        raise ToolModuleError(f"tools module {spec!r} failed to import: it raised SystemExit({err.code!r}) (sys.exit() "
                              "at import time); a tools module must only define tools, so move that code under "
                              "`if __name__ == '__main__':`") from err
    except BaseException as err:  # an import error, a syntax error or any failure inside the user's module
        text = " ".join(str(err).split())  # one line, whatever the message held
        raise ToolModuleError(f"tools module {spec!r} failed to import: {type(err).__name__}: {text}") from err


__all__ = ["NO_TIMEOUT", "DuplicateToolError", "ErrorKind", "TimeoutSettingError", "ToolModuleError", "ToolRegistry", "ToolResult", "UnknownToolError",
           "check_timeout", "custom_tools", "default_registry"]
