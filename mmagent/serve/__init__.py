"""`mmagent serve`: the OpenAI protocol, the agent and a web page over HTTP, on one Agent and ChatModel.

    app.py              the Starlette app, `ServeConfig`, `serve()` (uvicorn)
    completions.py      POST /v1/chat/completions, GET /v1/models
    agent_routes.py     agent turns (SSE), approvals, artifacts, feedback
    openai_protocol.py  the OpenAI wire format as pydantic models, OpenAI-shaped errors
    shared_model.py     the one model instance behind a lock
    security.py         loopback by default, API keys, Host checks
    wire.py             bounded JSON bodies, SSE, the thread bridge
    web/                the page: index.html, app.js, style.css (no build step, nothing from a CDN)
"""

from mmagent.serve.app import ServeConfig, create_app, serve, shared_agent

__all__ = ["ServeConfig", "create_app", "serve", "shared_agent"]
