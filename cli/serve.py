"""`mmagent serve`: the OpenAI protocol, the agent endpoints and the web page over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mmagent.cli.common import MCP_HELP, err_console, fail
from mmagent.errors import UserError


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind; loopback by default. Beyond loopback an --api-key and TLS are required (or --insecure).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec (catalog name, path, http(s)://.../v1#model, or scripted:FILE.json).")] = "mmagent-default",
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="MMAGENT_API_KEY", show_envvar=True, help="Require `Authorization: Bearer KEY` on /v1/ (prefer the env var: a flag shows in `ps`).")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow binding beyond loopback without a key or without TLS (a network that is yours).")] = False,
    ssl_certfile: Annotated[Optional[Path], typer.Option("--ssl-certfile", help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Optional[Path], typer.Option("--ssl-keyfile", help="TLS private key (PEM).")] = None,
    allow_image_urls: Annotated[bool, typer.Option("--allow-image-urls", help="Fetch http(s) image URLs in requests (off: a request could make the server fetch anything it reaches).")] = False,
    approve: Annotated[Optional[list[str]], typer.Option("--approve", help="A tool whose calls wait for the user's approval (repeatable).")] = None,
    tool: Annotated[Optional[list[str]], typer.Option("--tool", "-t", help="Offer only these built-in tools to the agent (repeatable); default: all.")] = None,
    mcp: Annotated[Optional[list[str]], typer.Option("--mcp", help=MCP_HELP)] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Model steps per agent turn.")] = 6,
) -> None:
    """Serves the model over HTTP: the OpenAI API, the agent, and a chat page at /.

    GET /v1/models, POST /v1/chat/completions (any OpenAI client: tools, tool_choice, images as
    data URIs, stream), POST /v1/agent/turns (streamed events), POST /v1/agent/sessions/ID/resume
    (approvals), POST /v1/feedback; open http://HOST:PORT/ in a browser for the chat page.

    Example: mmagent serve --port 8000 --approve generate_image
    """
    from mmagent.cli.run import resolve_model
    from mmagent.serve import ServeConfig, serve as run_server

    for p in (ssl_certfile, ssl_keyfile):
        if p is not None and not p.is_file():
            fail(f"no such file: {p}")
    try:
        config = ServeConfig(host=host, port=port, model=model, api_key=api_key, insecure=insecure, ssl_certfile=ssl_certfile,
                             ssl_keyfile=ssl_keyfile, allow_image_urls=allow_image_urls, approval=approve or [], tools=tool or None,
                             mcp=mcp or [], max_steps=max_steps)
        config.check_bind()  # before the model loads: a refused address costs nothing
        resolved = resolve_model(model)
        err_console.print(f"serving {model} on http{'s' if ssl_certfile else ''}://{_url_host(host)}:{port}/ "
                          f"({'API key required' if api_key else 'no API key'})", highlight=False, markup=False)
        run_server(config, None if isinstance(resolved, str) else resolved)
    except (UserError, FileNotFoundError) as err:
        fail(str(err))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
