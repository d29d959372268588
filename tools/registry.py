"""The tool registry: unique names, schemas for the prompt, and calls that never crash the run.

`ToolRegistry.call` is the agent's one way to act. Whatever goes wrong comes back as a
`ToolResult` the model can read and repair:

    validation    arguments not an object, a field missing / of the wrong type / unknown, an
                  artifact id that does not exist or is of the wrong kind (details + the schema)
    unknown_tool  a name not registered (with the list of known names)
    timeout       the tool ran past its time; its worker thread is abandoned (daemon)
    exception     the tool raised; the message is kept, the traceback goes to the log

A timed-out tool may still finish in the background; artifacts it adds later are complete files
(the store writes temp + rename) but are not reported in any result.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from mmagent.tools.artifacts import ArtifactError
from mmagent.tools.base import Tool, ToolContext, tool
from mmagent.errors import UserError

log = logging.getLogger(__name__)

ErrorKind = Literal["validation", "unknown_tool", "timeout", "exception"]


class ToolResult(BaseModel):
    """The observation one call produces (what goes back to the model and into the log)."""

    name: str
    ok: bool
    output: dict[str, Any] | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    details: dict[str, Any] | None = None  # validation: {"errors": [{field, message, input}], "schema": ...}
    artifacts: list[str] = Field(default_factory=list)  # artifact ids in the output (new images ...)
    latency_s: float = 0.0

    def observation(self) -> str:
        """Compact text for the model's context: the output JSON, or the error and how to fix it."""
        if self.ok:
            return json.dumps(self.output, ensure_ascii=False, separators=(",", ":"))
        body: dict[str, Any] = {"error": self.error, "kind": self.error_kind}
        if self.details:
            body.update(self.details)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class UnknownToolError(KeyError, UserError):
    def __str__(self) -> str:
        return self.args[0]


class ToolRegistry:
    """Named tools; `subset` picks the tools one agent may use; user tools register the same way."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = (), default_timeout_s: float | None = 120.0) -> None:
        self._tools: dict[str, Tool] = {}
        self.default_timeout_s = default_timeout_s
        for t in tools:
            self.register(t)

    def register(self, t: Tool | Callable[..., Any]) -> Tool:
        """Adds a Tool (or a plain typed, documented function, wrapped with `@tool`)."""
        if not isinstance(t, Tool):
            t = tool(t)
        if not t.name:
            raise ValueError(f"{t!r} has no name; set the class attribute `name`")
        if t.name in self._tools:
            raise ValueError(f"a tool named {t.name!r} is already registered; tool names must be unique")
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
        timeout = self.default_timeout_s if timeout_s is None else timeout_s
        status, value = _run_with_timeout(lambda: t.invoke(args_or_err, ctx), timeout)
        if status == "timeout":
            return _fail(name, "timeout", f"{name} did not finish within {timeout:g} s and was abandoned; try smaller inputs or fewer steps", start)
        if status == "error":
            err = value
            log.info("tool %s raised %s: %s", name, type(err).__name__, err)
            log.debug("traceback of %s", name, exc_info=err)
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
    try:
        args = t.input_model.model_validate(arguments)
    except ValidationError as err:
        return _invalid(t.name, [_describe(e, schema) for e in err.errors()], schema)
    problems = []
    for field, kind in t.artifact_args.items():
        value = getattr(args, field)
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


def _invalid(name: str, errors: list[dict[str, Any]], schema: dict[str, Any]) -> ToolResult:
    lines = "; ".join(f"{e['field'] or 'arguments'}: {e['message']}" for e in errors)
    return ToolResult(
        name=name, ok=False, error_kind="validation",
        error=f"invalid arguments for {name}: {lines}. Call it again with arguments matching the schema.",
        details={"errors": errors, "schema": copy.deepcopy(schema)},
    )


def _describe(e: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    field = ".".join(str(p) for p in e["loc"])
    if e["type"] == "missing":
        msg = "required argument is missing"
    elif e["type"] == "extra_forbidden":
        msg = f"unknown argument; allowed: {', '.join(schema.get('properties', {})) or 'none'}"
    else:
        msg = e["msg"]
    out = {"field": field, "message": msg}
    if e["type"] != "missing":
        out["input"] = _short(e.get("input"))
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _short(value: Any, limit: int = 200) -> Any:
    text = json.dumps(value, default=str)
    return value if len(text) <= limit else text[:limit] + "..."


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
    worker.join(timeout_s if timeout_s and timeout_s > 0 else None)
    if worker.is_alive():
        return "timeout", None
    if "error" in box:
        return "error", box["error"]
    return "ok", box["value"]


def default_registry(settings=None, include: Iterable[str] | None = None) -> ToolRegistry:
    """The built-in tools (models load lazily on first call) and the user's `tools_modules`.
    `include` picks a subset by name."""
    from mmagent.config import get_settings
    from mmagent.tools.builtins import builtin_tools

    settings = settings or get_settings()
    reg = ToolRegistry(builtin_tools(settings))
    for t in custom_tools(settings.tools_modules):
        reg.register(t)
    return reg.subset(include) if include is not None else reg


class ToolModuleError(ValueError, UserError):
    """A `tools_modules` entry that cannot be imported or defines no tool."""


def custom_tools(modules: Iterable[str]) -> list[Tool]:
    """Every module-level `Tool` of each module (a dotted name, or a path to a .py file), in order."""
    found: list[Tool] = []
    for spec in modules:
        mod = _import_tools_module(spec)
        tools = [v for v in vars(mod).values() if isinstance(v, Tool)]
        if not tools:
            raise ToolModuleError(f"tools module {spec!r} defines no tool: decorate functions with `@mmagent.tools.tool` at module level")
        found += tools
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
    except ToolModuleError:
        raise
    except Exception as err:  # an import error or any failure inside the user's module
        raise ToolModuleError(f"tools module {spec!r} failed to import: {type(err).__name__}: {err}") from err


__all__ = ["ErrorKind", "ToolModuleError", "ToolRegistry", "ToolResult", "UnknownToolError", "custom_tools", "default_registry"]
