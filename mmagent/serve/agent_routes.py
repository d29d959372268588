"""The agent over HTTP: turns, approvals, artifacts and feedback, each one `Agent` call.

    POST /v1/agent/turns                          {session?, prompt, images?: [data URI], stream?}
    POST /v1/agent/sessions/{session}/resume      {decision: "approve" | "deny" | {call id: decision or result}, stream?}
    GET  /v1/agent/sessions/{session}/artifacts/{artifact_id}    the bytes (images tools made ...)
    POST /v1/feedback                             {turn_id, rating, correct_call? | correct_answer?}

A streamed turn is server-sent events, one per `AgentEvent` (`event:` its type, `data:` its
JSON), then `event: result` with the `RunResult`; without `stream` the `RunResult` is the body.
Images come as data URIs only and reach the agent as bytes: a string from a request is never
handed to `Agent.run`, which would read it as a path. Feedback goes through
`mmagent.feedback.record_feedback` into the interaction log, as `mmagent feedback` does.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mmagent.errors import UserError
from mmagent.interop.media import MediaInputError, image_bytes
from mmagent.protocol.chat import ToolCall
from mmagent.serve.openai_protocol import ApiError
from mmagent.serve.wire import parse, read_json, run_streaming, sse

SESSION = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"  # what the artifact store and the checkpoint accept as a name
ARTIFACT = re.compile(r"^(image|audio|text)_[1-9][0-9]{0,8}$")
MAX_IMAGES = 8


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TurnRequest(_In):
    prompt: str
    session: str | None = Field(None, pattern=SESSION)
    images: list[str] = Field(default_factory=list, max_length=MAX_IMAGES)
    stream: bool = True


class ResumeRequest(_In):
    decision: Literal["approve", "deny"] | dict[str, Any]
    stream: bool = True


class FeedbackRequest(_In):
    turn_id: str = Field(min_length=1, max_length=64)
    rating: Literal["up", "down"]
    correct_call: ToolCall | list[ToolCall] | None = None
    correct_answer: str | None = None


class AgentRoutes:
    """Routes over one `Agent`; a session runs one turn at a time (a second one gets a 409)."""

    def __init__(self, agent: Any, *, max_body_bytes: int, allow_image_urls: bool = False) -> None:
        self.agent, self.max_body_bytes, self.allow_image_urls = agent, max_body_bytes, allow_image_urls
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()

    async def turn(self, request: Request) -> Response:
        req = parse(TurnRequest, await read_json(request, self.max_body_bytes))
        try:
            images = [image_bytes(src, what=f"images.{i}", allow_urls=self.allow_image_urls) for i, src in enumerate(req.images)]
        except MediaInputError as err:
            raise ApiError(400, str(err), param="images", code="invalid_image") from None
        session = req.session or f"s-{uuid.uuid4().hex[:12]}"
        return await self._run(session, req.stream, lambda: self.agent.stream(req.prompt, images=images, session=session))

    async def resume(self, request: Request) -> Response:
        session = _session(request)
        req = parse(ResumeRequest, await read_json(request, self.max_body_bytes))
        return await self._run(session, req.stream, lambda: self.agent.resume_stream(session, req.decision))

    async def artifact(self, request: Request) -> Response:
        """An artifact's bytes, looked up by id in the session's store (never by a path)."""
        session, art_id = _session(request), request.path_params["artifact_id"]
        if not ARTIFACT.fullmatch(art_id):
            raise ApiError(404, f"{art_id!r} is not an artifact id (image_N, audio_N, text_N)", code="not_found")
        try:
            self.agent.history(session)  # an unknown session is a 404 before any store is opened for it
            store = self.agent.artifacts(session)
            art = store.get(art_id)
            data = store.read_bytes(art_id)
        except UserError as err:
            raise ApiError(404, str(err), code="not_found") from None
        return Response(data, media_type=art.mime, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"})

    async def feedback(self, request: Request) -> Response:
        from mmagent.feedback import FeedbackError, FeedbackStore, record_feedback

        req = parse(FeedbackRequest, await read_json(request, self.max_body_bytes))
        calls = req.correct_call if isinstance(req.correct_call, list) or req.correct_call is None else [req.correct_call]
        log = self.agent.log
        try:
            fb = record_feedback(FeedbackStore(log.path), log, self.agent.registry, req.turn_id, req.rating, calls,
                                 req.correct_answer, source="http")
        except FeedbackError as err:
            unknown = str(err).startswith("no logged turn")  # record_feedback's message for a turn id it cannot find
            raise ApiError(404 if unknown else 400, str(err), param="turn_id" if unknown else None) from None
        return JSONResponse(fb.model_dump(mode="json"))

    # -- internals ---------------------------------------------------------------------------------

    async def _run(self, session: str, stream: bool, start: Any) -> Response:
        """Runs `start()`'s events in a worker thread; a refusal before the first event (an unknown
        session, a bad decision, an unfinished turn) is a 4xx, not a stream that starts and fails."""
        with self._busy_lock:
            if session in self._busy:
                raise ApiError(409, f"session {session!r} is running a turn; wait for it to end", param="session", code="session_busy")
            self._busy.add(session)

        def work(emit: Any) -> Any:
            try:
                for event in start():
                    emit(event)
                return self.agent.result(session)
            finally:
                with self._busy_lock:
                    self._busy.discard(session)

        events = run_streaming(work)
        kind, value = await events.__anext__()
        if kind == "error":
            raise _agent_error(value)
        if stream:
            return StreamingResponse(_sse(kind, value, events), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        while kind == "item":
            kind, value = await events.__anext__()
        if kind == "error":
            raise _agent_error(value)
        return JSONResponse(value.model_dump(mode="json"))


async def _sse(kind: str, first: Any, events: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[str]:
    pending = [(kind, first)]
    while True:
        kind, value = pending.pop() if pending else await events.__anext__()
        if kind == "item":
            yield sse(value.model_dump(mode="json", exclude_none=True), event=value.type)
        elif kind == "done":
            yield sse(value.model_dump(mode="json"), event="result")
            return
        else:
            err = _agent_error(value)
            yield sse(err.body(), event="error")
            return


def _session(request: Request) -> str:
    session = request.path_params["session"]
    if not re.fullmatch(SESSION, session):
        raise ApiError(404, f"{session[:80]!r} is not a session id", code="not_found")
    return session


def _agent_error(err: BaseException) -> ApiError:
    if isinstance(err, ApiError):
        return err
    if isinstance(err, UserError):  # an unknown session, a bad decision, an unfinished turn, bad media
        busy = "has an unfinished turn" in str(err)  # Agent._start: the session waits on its last turn
        return ApiError(409 if busy else 400, str(err), code="session_busy" if busy else None)
    import logging

    logging.getLogger(__name__).error("agent turn failed", exc_info=err)
    return ApiError(500, f"the turn failed: {type(err).__name__}: {err}")
