"""The Tool base: typed input and output, one schema derived from one source of truth.

Two ways to write a tool (as in smolagents' `tools.py`):

    @tool
    def crop_image(image: ImageId, box: Box, ctx: ToolContext) -> CropOutput:
        '''Crops an image to a box.

        Args:
            image: The image to crop.
            box: Pixel box to keep.
        '''

    class ReadText(Tool):            # holds a model: loaded lazily on the first call
        name = "read_text"; description = "..."
        input_model = ReadTextInput; output_model = ReadTextOutput
        def load(self) -> None: ...
        def run(self, args: ReadTextInput, ctx: ToolContext) -> ReadTextOutput: ...

The decorator builds the pydantic input model from the signature (types, defaults) and the
docstring's Google-style `Args:` section (descriptions); a parameter without a description, or a
description without a parameter, is an error at decoration time. Input models forbid extra keys.
A parameter annotated `ToolContext` is not part of the schema: the registry passes the context.
Media arguments are artifact ids (`ImageId`, `AudioId`): strings with a pattern and an
`x-artifact` marker in the schema; tools load them through `ctx.artifacts`, never from a path.
"""

from __future__ import annotations

import copy
import inspect
import re
import sys
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from mmagent.errors import UserError

if TYPE_CHECKING:
    from mmagent.media.artifacts import ArtifactStore


class ToolDefinitionError(TypeError):
    """A tool is declared wrongly (signature and docstring disagree, a type is missing ...)."""


class ToolInputError(ValueError, UserError):
    """Raised by a running tool for arguments that passed the schema but do not fit the inputs
    (a crop box outside the image ...). The registry reports it as a `validation` error, which the
    agent sends back to the model to repair; say what the inputs are (the image size ...).
    `field` names the argument at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# Artifact ids in schemas: the pattern lets constrained decoding and validation reject paths;
# `x-artifact` tells the registry which arguments to check against the store before a call.
ImageId = Annotated[str, Field(pattern=r"^image_[1-9][0-9]*$", json_schema_extra={"x-artifact": "image"})]
AudioId = Annotated[str, Field(pattern=r"^audio_[1-9][0-9]*$", json_schema_extra={"x-artifact": "audio"})]
TextId = Annotated[str, Field(pattern=r"^text_[1-9][0-9]*$", json_schema_extra={"x-artifact": "text"})]


@dataclass
class ToolContext:
    """What a running tool may touch: this session's artifacts and (optionally) the memory store.

    `open_memory` opens the store on first use (`memory_store()`), so a turn that never touches
    memory never opens it (its embedder takes seconds to load).
    """

    artifacts: ArtifactStore
    memory: Any = None  # mmagent.memory.store.MemoryStore
    session: str = "default"
    open_memory: Callable[[], Any] | None = None

    def memory_store(self) -> Any:
        """The memory store, opened now if only an opener was given; None when there is neither."""
        if self.memory is None and self.open_memory is not None:
            self.memory = self.open_memory()
        return self.memory


class StrictInput(BaseModel):
    """Base of every tool input: unknown argument names are errors the model is told about."""

    model_config = ConfigDict(extra="forbid")


class Tool:
    """A typed tool. Subclasses set the class attributes and implement `run` (and `load` if heavy)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    input_model: ClassVar[type[BaseModel]]
    output_model: ClassVar[type[BaseModel]]
    # True: the agent does not run this tool's calls, it hands them to its caller (a schema-only
    # `SchemaTool`); they are validated all the same.
    external: ClassVar[bool] = False
    # Media kinds ("image", "audio") whose arrival in a turn starts `load` in the background, while
    # the model plans: for a heavy model such a turn will likely call (OCR: ~1 s of ONNX sessions).
    warm_for: ClassVar[frozenset[str]] = frozenset()
    _loaded: bool = False  # class-level defaults: subclasses need not call super().__init__()

    def __init__(self) -> None:
        self._loaded = False

    def load(self) -> None:
        """Loads heavy state (models). Called once, on the first call, never at import or registration."""

    def run(self, args: BaseModel, ctx: ToolContext) -> BaseModel:
        raise NotImplementedError

    def ensure_loaded(self) -> None:
        if self._loaded:
            return
        # dict.setdefault is atomic under the GIL: one lock per tool, however many threads race here.
        with self.__dict__.setdefault("_load_lock", threading.Lock()):  # concurrent first calls load once
            if not self._loaded:
                self.load()
                self._loaded = True

    def warm(self) -> threading.Thread | None:
        """Starts `ensure_loaded` in a background thread (None if already loaded). Not a daemon (a
        thread inherits the flag otherwise): a process that exits mid-load waits for it instead of
        killing a native library halfway. A failure is left for the real call to report."""
        if self._loaded:
            return None

        def load() -> None:
            with contextlib.suppress(Exception):
                self.ensure_loaded()

        thread = threading.Thread(target=load, name=f"warm-{self.name}", daemon=False)
        thread.start()
        return thread

    def invoke(self, args: BaseModel, ctx: ToolContext) -> BaseModel:
        """Runs on validated arguments and checks that the tool kept its output contract."""
        self.ensure_loaded()
        out = self.run(args, ctx)
        if not isinstance(out, self.output_model):
            out = self.output_model.model_validate(out)
        return out

    def dump_arguments(self, args: BaseModel) -> dict[str, Any]:
        """Validated arguments as JSON: what a caller that runs the tool itself is handed."""
        return args.model_dump(mode="json", by_alias=True)

    def schema(self) -> dict[str, Any]:
        """OpenAI-style function schema: {"type": "function", "function": {name, description, parameters}}.

        Built once per tool (pydantic's schema generation costs ~0.1-0.5 ms); a deep copy is returned
        so callers may edit theirs."""
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": copy.deepcopy(self.parameters)}}

    @property
    def parameters(self) -> dict[str, Any]:
        """The input JSON schema, cached; treat as read-only (`schema()` hands out copies)."""
        if "_parameters" not in self.__dict__:
            self._parameters = clean_schema(self.input_model.model_json_schema())
        return self._parameters

    @property
    def artifact_args(self) -> dict[str, str]:
        """{argument: artifact kind} for the arguments that are artifact ids, cached."""
        if "_artifact_args" not in self.__dict__:
            self._artifact_args = artifact_fields(self.parameters)
        return self._artifact_args

    def output_schema(self) -> dict[str, Any]:
        return copy.deepcopy(self._output())

    @property
    def artifact_outputs(self) -> dict[str, str]:
        """{output field: artifact kind}: where new artifact ids appear in results, cached."""
        if "_artifact_outputs" not in self.__dict__:
            self._artifact_outputs = artifact_fields(self._output())
        return self._artifact_outputs

    def _output(self) -> dict[str, Any]:
        if "_output_schema" not in self.__dict__:
            self._output_schema = clean_schema(self.output_model.model_json_schema())
        return self._output_schema

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class FunctionTool(Tool):
    """A tool made by `@tool` from a plain function; calling it directly calls the function."""

    def __init__(self, fn: Callable[..., Any], name: str, description: str, input_model: type[BaseModel], output_model: type[BaseModel], ctx_param: str | None, wraps_result: bool) -> None:
        super().__init__()
        self.fn, self.ctx_param, self.wraps_result = fn, ctx_param, wraps_result
        # Instance attributes shadow the ClassVars: each function tool has its own schema.
        self.name, self.description = name, description  # type: ignore[misc]
        self.input_model, self.output_model = input_model, output_model  # type: ignore[misc]
        self.__doc__, self.__wrapped__ = fn.__doc__, fn

    def run(self, args: BaseModel, ctx: ToolContext) -> BaseModel:
        kwargs = {k: getattr(args, k) for k in type(args).model_fields}
        if self.ctx_param:
            kwargs[self.ctx_param] = ctx
        result = self.fn(**kwargs)
        return self.output_model(result=result) if self.wraps_result else result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Turns a typed, documented function into a `Tool` (see the module docstring)."""
    # The caller's locals resolve string annotations (`from __future__ import annotations`) of
    # tools defined inside a function, as they would resolve at module level.
    localns = dict(sys._getframe(1).f_locals)
    if fn is None:
        return lambda f: _function_tool(f, name or f.__name__, localns)
    return _function_tool(fn, name or fn.__name__, localns)


def _function_tool(fn: Callable[..., Any], name: str, localns: dict[str, Any] | None = None) -> FunctionTool:
    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]{0,63}", name):
        raise ToolDefinitionError(f"tool name {name!r} must be an identifier (letters, digits, _), at most 64 characters")
    summary, arg_docs = parse_docstring(fn.__doc__ or "")
    if not summary:
        raise ToolDefinitionError(f"tool {name!r}: add a docstring; its first paragraph is the description the model reads")
    try:
        hints = get_type_hints(fn, localns=localns, include_extras=True)
    except NameError as err:
        raise ToolDefinitionError(f"tool {name!r}: a type hint cannot be resolved ({err}); import the type at module level") from err
    fields: dict[str, Any] = {}
    ctx_param = None
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ToolDefinitionError(f"tool {name!r}: *args/**kwargs cannot be described by a schema; list the parameters")
        if p.name not in hints:
            raise ToolDefinitionError(f"tool {name!r}: parameter {p.name!r} needs a type hint")
        if hints[p.name] is ToolContext:
            ctx_param = p.name
            continue
        if p.name not in arg_docs:
            raise ToolDefinitionError(f"tool {name!r}: parameter {p.name!r} is not described in the docstring's Args: section")
        fields[p.name] = (hints[p.name], _field(p.default, arg_docs[p.name]))
    extra = sorted(set(arg_docs) - set(fields) - {ctx_param})
    if extra:
        raise ToolDefinitionError(f"tool {name!r}: the docstring describes {extra} but the function has no such parameter")
    input_model = create_model(_camel(name) + "Input", __base__=StrictInput, **fields)
    output_model, wraps = _output_model(name, hints.get("return", inspect.Signature.empty))
    return FunctionTool(fn, name, summary, input_model, output_model, ctx_param, wraps)


def _field(default: Any, description: str) -> FieldInfo:
    """The parameter's default as a Field; a `= Field(..., ge=1)` default keeps its constraints."""
    if isinstance(default, FieldInfo):
        return FieldInfo.merge_field_infos(default, description=default.description or description)
    return Field(... if default is inspect.Parameter.empty else default, description=description)


def _output_model(name: str, ret: Any) -> tuple[type[BaseModel], bool]:
    if ret is inspect.Signature.empty or ret is None or ret is type(None):
        raise ToolDefinitionError(f"tool {name!r}: annotate the return type (a pydantic model, or a JSON type wrapped as `result`)")
    if isinstance(ret, type) and issubclass(ret, BaseModel):
        return ret, False
    return create_model(_camel(name) + "Output", result=(ret, ...)), True


_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?)\s*:\s*$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Google style: (summary = first paragraph, {arg: description}) from the `Args:` section.

    Continuation lines (indented deeper than the arg line) join the description.
    """
    lines = inspect.cleandoc(doc).splitlines()
    summary_lines: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line):
            break
        summary_lines.append(line.strip())
    args: dict[str, str] = {}
    section, current, arg_indent = None, None, None
    for line in lines:
        m = _SECTION.match(line)
        if m:
            section, current, arg_indent = m.group(1), None, None
            continue
        if section not in ("Args", "Arguments", "Parameters") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        am = re.match(r"^\s*(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$", line)
        if am and (arg_indent is None or indent <= arg_indent):
            arg_indent, current = indent, am.group(1)
            args[current] = am.group(3).strip()
        elif current:
            args[current] = (args[current] + " " + line.strip()).strip()
    return " ".join(summary_lines), args


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drops pydantic's auto-generated `title`s (tokens a small model pays for, no information)."""

    def walk(node: Any, in_properties: bool = False) -> Any:
        if isinstance(node, dict):
            return {
                k: walk(v, k in ("properties", "$defs"))
                for k, v in node.items()
                if in_properties or not (k == "title" and isinstance(v, str))
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def artifact_fields(schema: dict[str, Any]) -> dict[str, str]:
    """{argument: kind} for top-level arguments that are artifact ids (or lists of them)."""
    out = {}
    for prop, sub in schema.get("properties", {}).items():
        for node in (sub, sub.get("items", {}), *sub.get("anyOf", []), *(s.get("items", {}) for s in sub.get("anyOf", []))):
            if isinstance(node, dict) and "x-artifact" in node:
                out[prop] = node["x-artifact"]
    return out


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


__all__ = [
    "AudioId", "FunctionTool", "ImageId", "StrictInput", "TextId", "Tool", "ToolContext", "ToolDefinitionError",
    "ToolInputError", "artifact_fields", "clean_schema", "parse_docstring", "tool",
]
