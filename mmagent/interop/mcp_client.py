"""MCP servers' tools imported into a tool registry: `Agent(mcp_servers=[...])`, `mmagent run/chat --mcp`.

A server is a command line (`"python weather.py"`, run as a subprocess speaking stdio), an
`http(s)://.../mcp` URL (streamable HTTP), or an `mcp.StdioServerParameters`. Its connection (the
official SDK's `mcp.Client`) stays open for the agent's life on an event loop in a background
thread (an anyio blocking portal); the agent's tool threads call into it.

Each MCP tool becomes a `SchemaTool` (`MCPTool`): the model sees its `inputSchema` and the
arguments are validated against it before the server is called, like any other tool. A name
that a registered tool already has is prefixed with the server's name (`mmagent.resize_image`).
Images cross both ways: a string argument marked `contentMediaType: image/*` (as `mmagent mcp`
marks its image arguments) is offered to the model as an image id and sent as a data URI of that
artifact; image (and audio) blocks in a result are stored in the session's artifact store and
returned as ids in `images` / `audio`, which the agent reports as artifacts, as for its own tools.
A result with `isError` is the tool's failure, which the model reads and may repair.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mmagent.errors import UserError
from mmagent.tools.base import AudioId, ImageId, ToolContext
from mmagent.tools.schema_tool import SchemaTool

# This module is a tool source (it sits with the tools, below the serving surfaces): it imports
# nothing from them, and `mmagent mcp` takes its wire help for media arguments from here.
MediaKinds = {"image": r"^image_[1-9][0-9]*$", "audio": r"^audio_[1-9][0-9]*$"}
MEDIA_HELP = {
    "image": "An image: a data URI (data:image/png;base64,...), base64 bytes, or an image_N id this server returned earlier.",
    "audio": "Audio (WAV): a data URI (data:audio/wav;base64,...), base64 bytes, or an audio_N id this server returned earlier.",
    "text": "Text, or a text_N id this server returned earlier.",
}


class MCPConnectError(RuntimeError, UserError):
    """An MCP server that could not be started or reached, or that answered the handshake wrongly."""


class MCPToolError(RuntimeError):
    """The MCP server ran the tool and reported a failure (`isError`); the message is its text."""


class MCPToolOutput(BaseModel):
    """What an MCP tool returned: its text blocks, the media it returned (as artifact ids) and its
    structured content, when it has one."""

    model_config = ConfigDict(extra="forbid")
    text: str = ""
    images: list[ImageId] = Field(default_factory=list)
    audio: list[AudioId] = Field(default_factory=list)
    structured: Any = None


def server_target(spec: Any) -> Any:
    """A spec -> what `mcp.Client` connects to (a URL string or `StdioServerParameters`)."""
    from mcp import StdioServerParameters

    if isinstance(spec, StdioServerParameters):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise MCPConnectError(f"an MCP server is a command line or an http(s):// URL, got {spec!r}")
    if spec.startswith(("http://", "https://")):
        return spec
    argv = shlex.split(spec)
    return StdioServerParameters(command=argv[0], args=argv[1:])


class MCPConnection:
    """One open MCP session, usable from any thread (see the module docstring)."""

    def __init__(self, spec: Any, timeout_s: float = 120.0) -> None:
        from anyio.from_thread import start_blocking_portal
        from mcp import Client

        self.spec = spec
        self._stack: list[Any] = []
        try:
            portal_cm = start_blocking_portal()
            self._portal = portal_cm.__enter__()
            self._stack.append(portal_cm)
            client_cm = self._portal.wrap_async_context_manager(Client(server_target(spec), read_timeout_seconds=timeout_s))
            self.client = client_cm.__enter__()
            self._stack.append(client_cm)
            self.tools = self._portal.call(self._list_tools)
        except MCPConnectError:
            self.close()
            raise
        except Exception as err:  # noqa: BLE001 - a missing command, a refused connection, a bad handshake: one clear line
            self.close()
            raise MCPConnectError(f"cannot use MCP server {spec!r}: {_why(err)}") from err
        info = getattr(self.client, "server_info", None)
        self.name = re.sub(r"[^A-Za-z0-9_\-]+", "_", getattr(info, "name", "") or "mcp").strip("_")[:24] or "mcp"

    async def _list_tools(self) -> list[Any]:
        tools, cursor = [], None
        for _ in range(100):  # pages; a server whose cursor never ends cannot hang the agent
            page = await self.client.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """`tools/call` from any thread; returns the `CallToolResult`."""
        return self._portal.call(self.client.call_tool, name, arguments)

    def close(self) -> None:
        while self._stack:
            try:
                self._stack.pop().__exit__(None, None, None)
            except Exception:  # noqa: BLE001,S110 - a server that died first: nothing left to close
                pass


def _why(err: BaseException) -> str:
    """The innermost message of an exception group (anyio wraps what a task raised)."""
    while getattr(err, "exceptions", None):  # BaseExceptionGroup (3.11+, or the backport anyio uses on 3.10)
        err = err.exceptions[0]
    return f"{type(err).__name__}: {err}"


class MCPTool(SchemaTool):
    """A tool of an MCP server, called through its connection (see the module docstring)."""

    def __init__(self, connection: MCPConnection, tool: Any, name: str | None = None) -> None:
        params, self_media = offered_schema(tool.input_schema or {"type": "object", "properties": {}})
        super().__init__({"name": name or tool.name, "description": tool.description or "", "parameters": params})
        self.output_model = MCPToolOutput  # type: ignore[misc]
        self.input_model = _by_property_name(self.input_model)  # type: ignore[misc]
        self.connection, self.remote_name, self.media = connection, tool.name, self_media

    @property
    def external(self) -> bool:  # type: ignore[override]
        return False  # the agent runs it: `run` is the call to the server

    def run(self, args: BaseModel, ctx: ToolContext) -> BaseModel:
        arguments = self.dump_arguments(args)
        for prop in self.media:  # artifact ids -> data URIs of their bytes
            ids = arguments.get(prop)
            if isinstance(ids, str):
                data = base64.b64encode(ctx.artifacts.read_bytes(ids)).decode("ascii")
                arguments[prop] = f"data:{ctx.artifacts.get(ids).mime};base64,{data}"
        result = self.connection.call(self.remote_name, arguments)
        return self._result(result, ctx)

    def _result(self, result: Any, ctx: ToolContext) -> MCPToolOutput:
        limits = ctx.artifacts.limits
        texts, images, audio = [], [], []
        for block in result.content:
            kind = getattr(block, "type", "")
            if kind == "text":
                texts.append(block.text)
            elif kind == "image":
                data = _b64(block.data, limits.image.max_bytes, f"{self.name}'s image")
                images.append(ctx.artifacts.add_image(data, meta={"source": f"mcp:{self.name}"}).id)
            elif kind == "audio":
                data = _b64(block.data, limits.max_audio_bytes, f"{self.name}'s audio")
                audio.append(ctx.artifacts.add_audio(data, meta={"source": f"mcp:{self.name}"}).id)
            else:  # resources and links: named, not fetched
                texts.append(f"[{kind}: {getattr(block, 'uri', '') or getattr(getattr(block, 'resource', None), 'uri', '')}]")
        if result.is_error:
            raise MCPToolError("\n".join(texts) or f"{self.remote_name} reported an error")
        return MCPToolOutput(text="\n".join(texts), images=images, audio=audio, structured=result.structured_content)


def _b64(payload: str, max_bytes: int, what: str) -> bytes:
    """A result's base64 media -> bytes, refused over the store's limit before it is decoded."""
    if len(payload) * 3 // 4 > max_bytes + 2:
        raise MCPToolError(f"{what} is over the limit of {max_bytes:,} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError as err:  # binascii.Error
        raise MCPToolError(f"{what} is not valid base64: {err}") from None


def _by_property_name(model: type[BaseModel]) -> type[BaseModel]:
    """`model` whose instances also answer to the property names. Why: SchemaTool names its fields
    f0, f1 ... (aliased to the properties), while the registry reads artifact arguments by property
    name (`getattr(args, "image")`) to check the ids exist; without this an image argument fails."""
    names = {f.alias: n for n, f in model.model_fields.items() if f.alias and f.alias != n}

    def __getattr__(self: BaseModel, item: str) -> Any:
        if item in names:
            return getattr(self, names[item])
        return model.__getattr__(self, item)  # type: ignore[operator] - pydantic's own (extras, private attributes)

    return type(model.__name__, (model,), {"__getattr__": __getattr__, "__module__": model.__module__})


def offered_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the schema the model sees, the media arguments): a top-level string argument marked
    `contentMediaType: image/*` (or `audio/*`) is offered as an artifact id."""
    props = dict(schema.get("properties") or {})
    media = []
    for prop, sub in props.items():
        kind = str(sub.get("contentMediaType", "")).split("/")[0] if isinstance(sub, dict) and sub.get("type") == "string" else ""
        if kind in MediaKinds:
            said = str(sub.get("description", "")).replace(MEDIA_HELP.get(kind, ""), "").strip()  # mmagent mcp's wire help
            props[prop] = {"type": "string", "pattern": MediaKinds[kind], "x-artifact": kind,
                           "description": " ".join(p for p in (said, f"The id of the {kind} ({kind}_N).") if p)}
            media.append(prop)
    return {**schema, "type": "object", "properties": props}, media


def import_mcp_tools(registry: Any, servers: Iterable[Any]) -> list[MCPConnection]:
    """Connects to each server and registers its tools in `registry`; returns the connections
    (close them when done: `Agent.close` does). Nothing stays open when one fails."""
    connections: list[MCPConnection] = []
    try:
        for spec in servers:
            conn = MCPConnection(spec)
            connections.append(conn)
            for tool in conn.tools:
                name = tool.name if tool.name not in registry else f"{conn.name}.{tool.name}"
                registry.register(MCPTool(conn, tool, name[:64]))
    except BaseException:
        for conn in connections:
            conn.close()
        raise
    return connections


def as_servers(specs: Sequence[Any] | Any | None) -> list[Any]:
    if specs is None:
        return []
    return [specs] if isinstance(specs, str) else list(specs)
