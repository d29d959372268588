"""`mmagent mcp`: the built-in tools as an MCP server (stdio by default, or streamable HTTP)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from mmagent.cli.common import fail
from mmagent.errors import UserError


def mcp(
    http: Annotated[bool, typer.Option("--http", help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")] = False,
    host: Annotated[str, typer.Option("--host", help="Address to bind with --http (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port with --http.")] = 8001,
    tool: Annotated[Optional[list[str]], typer.Option("--tool", "-t", help="Expose only these tools (repeatable); default: all.")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow --http beyond loopback (this server has no authentication).")] = False,
) -> None:
    """Runs an MCP server exposing the tools with their JSON schemas; images go in as data URIs
    or base64 and come back as MCP image content.

    Over stdio (the default) an MCP client starts it as a subprocess; stdout is the protocol, so
    logs go to stderr.

    Example: mmagent mcp --tool resize_image --tool read_text
    Example: mmagent mcp --http --port 8001
    """
    from mmagent.interop.mcp_server import run_http, run_stdio
    from mmagent.serve.security import is_loopback
    from mmagent.tools.registry import default_registry

    if http and not is_loopback(host) and not insecure:
        fail(f"refusing to serve MCP on {host}: this server has no authentication, so anyone who reaches it runs the tools; "
             "bind loopback, or pass --insecure if this network is yours")
    try:
        registry = default_registry(include=tool or None)
    except UserError as err:
        fail(str(err))
    if http:
        run_http(registry, host, port)
    else:
        run_stdio(registry)
