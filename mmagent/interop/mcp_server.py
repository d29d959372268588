"""`mmagent mcp`: the tool registry as a Model Context Protocol server (the official `mcp` SDK's
low-level `Server`), over stdio or streamable HTTP.

Each tool is listed with its own JSON schema, except that its media arguments, artifact ids
inside mmagent, become strings an MCP client can fill: a data URI (`data:image/png;base64,...`),
bare base64, or an `image_N` id this server returned earlier in its life (so calls chain).
They are marked `contentMediaType: image/*` (audio: `audio/*`), which is how `Agent(mcp_servers=)`
recognises image arguments on the other side. A call runs through `ToolRegistry.call`, exactly as
the agent runs it (validation, timeout, errors as observations); its result comes back as a text
block with the output's JSON (also as `structuredContent`), plus an image block (base64 and its
mime type) for each image the tool made. A failed call is a result with `isError`, so the
client's model can read it and repair; an unknown tool is a protocol error.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from typing import Any

from mmagent.interop.mcp_client import MEDIA_HELP
from mmagent.interop.media import MediaInputError, audio_bytes, image_bytes

MEDIA_TYPE = {"image": "image/*", "audio": "audio/*", "text": "text/plain"}


def media_schema(node: Any) -> Any:
    """A copy of a (sub)schema in which every artifact-id string is an MCP media string."""
    if isinstance(node, list):
        return [media_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("x-artifact")
    if kind in MEDIA_HELP:
        desc = " ".join(p for p in (node.get("description"), MEDIA_HELP[kind]) if p)
        return {"type": "string", "contentMediaType": MEDIA_TYPE[kind], "description": desc}
    return {k: media_schema(v) for k, v in node.items()}


def listed_tools(registry: Any) -> list[Any]:
    """The registry's tools as MCP `Tool`s (schemas as the tools declare them, media as above)."""
    import mcp_types as types

    return [types.Tool(name=n, description=registry.get(n).description, input_schema=media_schema(copy.deepcopy(registry.get(n).parameters)))
            for n in registry.names() if not registry.get(n).external]


def media_in(tool: Any, arguments: dict[str, Any], store: Any) -> dict[str, Any]:
    """The call's media strings stored as artifacts, replaced by their ids (checked before decoding)."""
    out = dict(arguments)
    for prop, kind in tool.artifact_args.items():
        value = out.get(prop)
        if isinstance(value, str):
            out[prop] = _artifact(value, kind, store, prop)
        elif isinstance(value, list):
            out[prop] = [_artifact(v, kind, store, f"{prop}.{i}") if isinstance(v, str) else v for i, v in enumerate(value)]
    return out


def _artifact(value: str, kind: str, store: Any, what: str) -> str:
    if re.fullmatch(rf"{kind}_[1-9][0-9]*", value):
        return value  # an id from an earlier call (the registry checks that it exists)
    if kind == "image":
        return store.add_image(image_bytes(value, what=what, bare_base64=True)).id
    if kind == "audio":
        return store.add_audio(audio_bytes(value, what=what)).id
    return store.add_text(value).id


def call_result(result: Any, store: Any) -> Any:
    """A `ToolResult` as an MCP `CallToolResult`: the JSON, and the images it made as image blocks."""
    import mcp_types as types

    if not result.ok:  # MCP's own wire text (the client's model reads it): the error, its kind and the repair details
        body = {"error": result.error, "kind": result.error_kind, **(result.details or {})}
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(body, ensure_ascii=False, separators=(",", ":")))],
                                    is_error=True)
    content: list[Any] = [types.TextContent(text=json.dumps(result.output, ensure_ascii=False))]
    for art_id in result.artifacts:
        art = store.get(art_id)
        data = base64.b64encode(store.read_bytes(art_id)).decode("ascii")
        if art.kind == "image":
            content.append(types.ImageContent(data=data, mime_type=art.mime))
        elif art.kind == "audio":
            content.append(types.AudioContent(data=data, mime_type=art.mime))
    return types.CallToolResult(content=content, structured_content=result.output)


class RegistryServer:
    """One MCP server over a registry; its artifacts live in one session of the artifact store."""

    def __init__(self, registry: Any, store: Any = None, timeout_s: float | None = 300.0) -> None:
        from mmagent.media.artifacts import ArtifactStore

        self.registry, self.timeout_s = registry, timeout_s
        self.store = store or ArtifactStore.open(f"mcp-{uuid.uuid4().hex[:12]}")
        self.memory: Any = None
        self.tools = listed_tools(registry)

    def server(self) -> Any:
        from mcp.server.lowlevel import Server

        from mmagent import __version__

        return Server("mmagent", version=__version__, on_list_tools=self._list, on_call_tool=self._call,
                      instructions="mmagent's typed multimodal tools. Image arguments take data URIs or base64; "
                                   "images a tool makes come back as image content.")

    async def _list(self, ctx: Any, params: Any) -> Any:
        import mcp_types as types

        return types.ListToolsResult(tools=self.tools)

    async def _call(self, ctx: Any, params: Any) -> Any:
        import anyio
        import mcp_types as types
        from mcp.shared.exceptions import MCPError

        from mmagent.media.artifacts import ArtifactError
        from mmagent.tools.base import ToolContext

        name = params.name
        if name not in self.registry or self.registry.get(name).external:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {name!r}; tools: {', '.join(t.name for t in self.tools)}")
        try:
            arguments = media_in(self.registry.get(name), dict(params.arguments or {}), self.store)
        except (MediaInputError, ArtifactError) as err:
            return types.CallToolResult(content=[types.TextContent(text=json.dumps({"error": str(err), "kind": "validation"}))], is_error=True)
        ctx_ = ToolContext(artifacts=self.store, session=self.store.session, open_memory=self._memory)
        result = await anyio.to_thread.run_sync(lambda: self.registry.call(name, arguments, ctx_, timeout_s=self.timeout_s))
        return call_result(result, self.store)

    def _memory(self) -> Any:
        """The local user's memory store (as `mmagent run` uses it), opened on the first memory call."""
        if self.memory is None:
            from mmagent.config import get_settings
            from mmagent.memory.store import MemoryStore

            self.memory = MemoryStore(get_settings().home / "memory", namespace="default")
        return self.memory

    def close(self) -> None:
        if self.memory is not None:
            self.memory.close()
        self.store.close()


def run_stdio(registry: Any) -> None:
    """Serves over this process's stdin/stdout until the client closes them."""
    import anyio
    from mcp.server.stdio import stdio_server

    rs = RegistryServer(registry)

    async def main() -> None:
        server = rs.server()
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    try:
        anyio.run(main)
    finally:
        rs.close()


def run_http(registry: Any, host: str, port: int) -> None:
    """Serves streamable HTTP at http://HOST:PORT/mcp (loopback-bound: the SDK's DNS-rebinding guard is on)."""
    import uvicorn

    rs = RegistryServer(registry)
    try:
        uvicorn.run(rs.server().streamable_http_app(host=host), host=host, port=port, log_level="info")
    finally:
        rs.close()
