"""The ASGI app of `mmagent serve` (Starlette on uvicorn) and its routes.

    GET  /                                the web page (web/: plain HTML + one JS file, served from memory)
    GET  /v1/models                       the one model this server serves
    POST /v1/chat/completions             the OpenAI protocol over the ChatModel (completions.py)
    POST /v1/agent/turns ...              the Agent: turns, approvals, artifacts (agent_routes.py)
    POST /v1/feedback                     feedback on a logged turn (as `mmagent feedback`)

One model instance serves every request: `SharedChatModel` holds a lock around each generation,
so concurrent requests queue for the model (their tools and I/O still run in parallel), and the
Agent runs on that same shared model. Errors are OpenAI-shaped
(`{"error": {"message", "type", "param", "code"}}`) whatever the route.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmagent.serve.openai_protocol import ApiError
from mmagent.serve.security import Guard, check_bind, is_loopback

log = logging.getLogger(__name__)
WEB = Path(__file__).parent / "web"
PAGES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/style.css": ("style.css", "text/css; charset=utf-8")}
# The page loads only itself: no CDN, no inline script, images only from this server (or blob:/data: made from its bytes).
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class ServeConfig(BaseModel):
    """`mmagent serve`'s settings (the CLI flags)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    model: str = "mmagent-default"
    api_key: SecretStr | None = None
    insecure: bool = False
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    allow_image_urls: bool = False  # off: a request could make the server fetch any URL it can reach
    # One image at the store's limit (50 MB) as base64 is ~67 MB: the body may carry one.
    max_body_bytes: int = Field(72 * 1024 * 1024, ge=1024)
    max_tokens: int = Field(4096, ge=1)
    approval: list[str] = Field(default_factory=list)
    tools: list[str] | None = None
    mcp: list[str] = Field(default_factory=list)
    max_steps: int = Field(6, ge=1)

    def key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None

    def check_bind(self) -> None:
        check_bind(self.host, api_key=self.key(), tls=bool(self.ssl_certfile and self.ssl_keyfile), insecure=self.insecure)


def create_app(config: ServeConfig, agent: Any, model_id: str | None = None) -> Starlette:
    """The app over `agent` (whose model is the one shared instance, see `shared_agent`)."""
    from mmagent.serve.agent_routes import AgentRoutes
    from mmagent.serve.completions import Completions

    from mmagent.backends.tool_retrieval import RetrievingChatModel

    # The OpenAI endpoint offers the model exactly the request's tools (the client chose them, as with
    # any OpenAI server); the agent's routes and the page go through the agent's tool retrieval.
    model = agent.model.inner if isinstance(agent.model, RetrievingChatModel) else agent.model
    completions = Completions(model, model_id or config.model, max_body_bytes=config.max_body_bytes,
                              max_tokens=config.max_tokens, allow_image_urls=config.allow_image_urls)
    turns = AgentRoutes(agent, max_body_bytes=config.max_body_bytes, allow_image_urls=config.allow_image_urls)
    pages = {path: (_read(name), mime) for path, (name, mime) in PAGES.items()}

    async def page(request: Request) -> Response:
        body, mime = pages[request.url.path]
        return Response(body, media_type=mime, headers=PAGE_HEADERS)

    routes = [
        *(Route(path, page, methods=["GET"]) for path in pages),
        Route("/v1/models", completions.models, methods=["GET"]),
        Route("/v1/chat/completions", completions.create, methods=["POST"]),
        Route("/v1/agent/turns", turns.turn, methods=["POST"]),
        Route("/v1/agent/sessions/{session}/resume", turns.resume, methods=["POST"]),
        Route("/v1/agent/sessions/{session}/artifacts/{artifact_id}", turns.artifact, methods=["GET"]),
        Route("/v1/feedback", turns.feedback, methods=["POST"]),
    ]
    handlers = {ApiError: _api_error, HTTPException: _http_error, Exception: _server_error}
    guard = Middleware(Guard, api_key=config.key(), loopback_only=is_loopback(config.host))
    return Starlette(routes=routes, middleware=[guard], exception_handlers=handlers)  # type: ignore[arg-type]


def shared_agent(config: ServeConfig, model: Any = None, **agent_options: Any) -> Any:
    """The server's Agent, on the one shared model instance (`model`, or `config.model` loaded now)."""
    from mmagent.agent import Agent
    from mmagent.backends import load_chat_model
    from mmagent.protocol import adapter_hook
    from mmagent.serve.shared_model import SharedChatModel

    inner = model if model is not None else load_chat_model(config.model)
    # The OpenAI endpoint serves the promoted adapter too: the default hook (`import mmagent` registers
    # the learning loop's), installed now, before any agent turn would install it.
    shared = SharedChatModel(adapter_hook.install(inner))
    return Agent(model=shared, tools=config.tools, approval=config.approval, max_steps=config.max_steps,
                 mcp_servers=config.mcp, **agent_options)


def serve(config: ServeConfig, model: Any = None) -> None:
    """Checks the bind address, loads the model and runs the server until interrupted."""
    import uvicorn

    config.check_bind()
    with shared_agent(config, model) as agent:
        app = create_app(config, agent)
        uvicorn.run(app, host=config.host, port=config.port, log_level="info", ssl_certfile=config.ssl_certfile,
                    ssl_keyfile=config.ssl_keyfile, timeout_graceful_shutdown=5)


def _read(name: str) -> bytes:
    return (WEB / name).read_bytes()


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    what = {404: f"no route {request.method} {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
    err = ApiError(exc.status_code, what.get(exc.status_code, str(exc.detail)), code="not_found" if exc.status_code == 404 else None)
    return JSONResponse(err.body(), status_code=exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    err = ApiError(500, f"the server failed: {type(exc).__name__} (see the server's log)")
    return JSONResponse(err.body(), status_code=500)
