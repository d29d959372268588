"""What every route shares: bounded JSON bodies, pydantic at the edge, SSE framing, and the
bridge from blocking work (a model generating, an agent turn) to an async event stream."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from mmagent.serve.openai_protocol import ApiError

M = TypeVar("M", bound=BaseModel)
Emit = Callable[[Any], None]


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body, refused over `max_bytes` before it is all read (the declared
    length first, then the bytes as they arrive) and parsed with the project's depth limit.

    Why `application/json` is required: a page on another site can POST `text/plain` to a
    loopback server without a CORS preflight; JSON makes the browser ask first, and this server
    answers no preflight, so such a request never runs."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, f"the body must be JSON sent with Content-Type: application/json, got {ctype or 'none'!r}",
                       code="unsupported_media_type")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(len(body), max_bytes)
    from mmagent.protocol.toolcall import loads_json

    try:
        return loads_json(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:  # invalid JSON, too deep, not UTF-8
        raise ApiError(400, f"the body is not valid JSON: {err}", code="invalid_json") from None


def _too_large(n: int, limit: int) -> ApiError:
    return ApiError(413, f"the body is over {limit:,} bytes (at least {n:,}); send smaller images (downscale or recompress them)",
                    code="request_too_large")


def parse(model: type[M], data: Any) -> M:
    """`data` as `model`, or a 400 naming the first field at fault (OpenAI's `param`)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        # Union members appear in the location as type tags (`literal['approve','deny']`): not a field.
        param = ".".join(str(p) for p in e["loc"] if isinstance(p, int) or str(p).isidentifier()) or None
        raise ApiError(400, f"{param + ': ' if param else ''}{e['msg']}", param=param, code="invalid_value") from None


def sse(data: Any, event: str | None = None) -> str:
    """One server-sent event; `data` is JSON (or the literal string `[DONE]`)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return (f"event: {event}\n" if event else "") + f"data: {text}\n\n"


async def run_streaming(work: Callable[[Emit], Any]) -> AsyncIterator[tuple[str, Any]]:
    """Runs `work(emit)` in its own thread and yields `("item", x)` for each `emit(x)`, then
    `("done", result)` or `("error", exception)`.

    A thread per piece of work, not the event loop's pool: an agent turn can take minutes and must
    keep one context from start to end (the shared model reads the session from it). When the
    client goes away the work still finishes, so a turn is never left half-checkpointed by a
    dropped connection."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the server shut down while the work ran
            pass

    def target() -> None:
        try:
            put("done", work(lambda item: put("item", item)))
        except BaseException as err:  # noqa: BLE001 - handed to the request, which answers it
            put("error", err)

    threading.Thread(target=target, name="mmagent-serve-work", daemon=True).start()
    while True:
        kind, value = await queue.get()
        yield kind, value
        if kind != "item":
            return
