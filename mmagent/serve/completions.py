"""`POST /v1/chat/completions` for any ChatModel: OpenAI messages in, `ChatModel.chat`, OpenAI out.

The mapping, and nothing more (decoding, parsing and tool-call formats are the model's):

    messages      system/developer -> system; user text + `image_url` (data URIs) + `input_audio`
                  -> a Message whose media sit in a per-request artifact store; assistant
                  `tool_calls` -> ToolCalls; `tool` results -> tool Messages (in the tool-result
                  format the agent writes)
    tools         OpenAI function schemas, passed as they are
    tool_choice   none -> no tools; auto -> the tools, schema-guided decoding where the backend
                  has it (the project's default); required / a named function -> the grammar's
                  "required" mode over all / that one tool (the reply must be valid calls), or a
                  400 where the backend cannot constrain
    out           the model's calls as `tool_calls` (finish_reason "tool_calls"), its prose as
                  `content`; `stream: true` sends the tokens (`on_token`) as SSE chunks, the
                  calls as one chunk at the end, then usage (stream_options) and `[DONE]`
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mmagent.errors import UserError
from mmagent.interop.media import MediaInputError, audio_bytes, image_bytes
from mmagent.protocol.chat import (
    ChatResult,
    Constrained,
    ContextOverflowError,
    Message,
    ServesSessions,
    ToolCall,
    resolve_constrained,
    supports_constrained,
)
from mmagent.protocol.toolcall import CALL_CLOSE, CALL_OPEN, format_tool_result, parse_tool_calls
from mmagent.serve.openai_protocol import (
    ApiError,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessageIn,
    Choice,
    ChunkChoice,
    Delta,
    DeltaToolCall,
    FunctionCallOut,
    ModelCard,
    ModelList,
    ToolCallOut,
    Usage,
)
from mmagent.serve.shared_model import SharedChatModel, use_session
from mmagent.serve.wire import parse, read_json, run_streaming, sse

log = logging.getLogger(__name__)
DEFAULT_MAX_TOKENS = 256
OPENAI_SESSION = "openai-api"  # the adapter the endpoint serves: the promoted one, as for a new agent session


class Completions:
    """The OpenAI endpoints over one shared model (see the module docstring)."""

    def __init__(self, model: SharedChatModel, model_id: str, *, max_body_bytes: int, max_tokens: int = 4096,
                 allow_image_urls: bool = False) -> None:
        self.model, self.model_id = model, model_id
        self.max_body_bytes, self.max_tokens, self.allow_image_urls = max_body_bytes, max_tokens, allow_image_urls
        self.created = int(time.time())

    async def models(self, request: Request) -> Response:
        return JSONResponse(ModelList(data=[ModelCard(id=self.model_id, created=self.created)]).model_dump())

    async def create(self, request: Request) -> Response:
        req = parse(ChatCompletionRequest, await read_json(request, self.max_body_bytes))
        self._check(req)
        tools, constrained = self._tools(req)
        max_new = req.max_completion_tokens or req.max_tokens or DEFAULT_MAX_TOKENS
        if max_new > self.max_tokens:
            raise ApiError(400, f"max_tokens is {max_new}, over this server's limit of {self.max_tokens}", param="max_tokens")
        from mmagent.media.artifacts import ArtifactStore

        tmp = tempfile.TemporaryDirectory(prefix="mmagent-serve-")  # this request's media, gone when it is answered
        store = ArtifactStore(tmp.name, "request")
        try:
            messages = to_messages(req.messages, store, self.allow_image_urls)
        except BaseException:
            store.close()
            tmp.cleanup()
            raise

        def work(emit: Any) -> ChatResult:
            try:
                if isinstance(self.model, ServesSessions):
                    use_session(OPENAI_SESSION)
                return self.model.chat(messages, tools, artifacts=store, max_new_tokens=max_new, constrained=constrained,
                                       on_token=emit if req.stream else None, temperature=req.temperature)
            finally:
                store.close()
                tmp.cleanup()

        events = run_streaming(work)
        # The first event decides the status: a refusal before any token (a prompt over the context,
        # bad media) is a 4xx the client raises on, not a stream that starts and then fails.
        kind, value = await events.__anext__()
        if kind == "error":
            raise _model_error(value)
        if req.stream:
            return StreamingResponse(self._chunks(kind, value, events, req, max_new, tools is not None), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        while kind == "item":
            kind, value = await events.__anext__()
        if kind == "error":
            raise _model_error(value)
        return JSONResponse(completion(value, self.model_id, max_new, tools is not None).model_dump())

    def _check(self, req: ChatCompletionRequest) -> None:
        if req.model != self.model_id:
            raise ApiError(404, f"the model {req.model!r} does not exist here; this server serves {self.model_id!r} (GET /v1/models)",
                           param="model", code="model_not_found")
        if req.n != 1:
            raise ApiError(400, "n must be 1: this server returns one choice", param="n")
        if req.response_format is not None and req.response_format.type != "text":
            raise ApiError(400, f"response_format {req.response_format.type!r} is not supported; use tools for structured output",
                           param="response_format")
        if req.logprobs:
            raise ApiError(400, "logprobs are not supported by this server", param="logprobs")

    def _tools(self, req: ChatCompletionRequest) -> tuple[list[dict[str, Any]] | None, Constrained]:
        """(tools for the model, constrained) from `tools` and `tool_choice` (see the module docstring)."""
        from mmagent.tools.schema_tool import ToolSchemaError, openai_schema

        schemas = []
        for i, t in enumerate(req.tools or []):
            try:
                schemas.append(openai_schema(t.model_dump(exclude_none=True)))
            except ToolSchemaError as err:
                raise ApiError(400, str(err), param=f"tools.{i}") from None
        choice = req.tool_choice or ("auto" if schemas else "none")
        if choice == "none" or not schemas:
            if choice not in ("none", "auto"):
                raise ApiError(400, "tool_choice asks for a tool call but no tools were given", param="tool_choice")
            return None, False
        if choice == "auto":
            return schemas, resolve_constrained(self.model, None)
        if not supports_constrained(self.model):
            raise ApiError(400, f"{self.model_id} cannot constrain decoding to the tool schemas, so tool_choice "
                           f"{choice if isinstance(choice, str) else 'function'!r} cannot be honoured; use 'auto'",
                           param="tool_choice", code="unsupported_tool_choice")
        if choice == "required":
            return schemas, "required"
        named = [s for s in schemas if s["function"]["name"] == choice.function.name]
        if not named:
            raise ApiError(400, f"tool_choice names {choice.function.name!r}, which is not among the tools", param="tool_choice")
        return named, "required"

    async def _chunks(self, kind: str, value: Any, events: AsyncIterator[tuple[str, Any]], req: ChatCompletionRequest,
                      max_new: int, offered: bool) -> AsyncIterator[str]:
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(delta: Delta, finish: str | None = None, usage: Usage | None = None, choices: bool = True) -> str:
            body = ChatCompletionChunk(id=cid, created=created, model=self.model_id, usage=usage,
                                       choices=[ChunkChoice(delta=delta, finish_reason=finish)] if choices else [])
            data = body.model_dump(exclude_none=True)
            for c in data["choices"]:
                c["finish_reason"] = finish  # null until the last chunk, as OpenAI sends it
            return sse(data)

        yield chunk(Delta(role="assistant", content=""))
        prose = ProseStream() if offered else None
        while True:
            if kind == "item":
                text = prose.feed(value) if prose else value
                if text:
                    yield chunk(Delta(content=text))
            elif kind == "error":
                err = _model_error(value)
                yield sse(err.body())
                return
            else:
                out = completion(value, self.model_id, max_new, offered)
                rest = prose.flush() if prose else ""
                if rest:
                    yield chunk(Delta(content=rest))
                message, finish = out.choices[0].message, out.choices[0].finish_reason
                if message.tool_calls:
                    calls = [DeltaToolCall(index=i, id=c.id, function=c.function) for i, c in enumerate(message.tool_calls)]
                    yield chunk(Delta(tool_calls=calls))
                yield chunk(Delta(), finish)
                if req.stream_options and req.stream_options.include_usage:
                    yield chunk(Delta(), usage=out.usage, choices=False)
                break
            kind, value = await events.__anext__()
        yield sse("[DONE]")


def completion(result: ChatResult, model_id: str, max_new: int, offered: bool) -> ChatCompletion:
    """A `ChatResult` as an OpenAI chat completion: calls as `tool_calls` (when tools were offered)."""
    calls = result.tool_calls if offered else []
    prose = result.prose if result.prose is not None else parse_tool_calls(result.text)[2]
    content = (prose or None) if calls else result.text
    out_calls = [ToolCallOut(id=c.id or f"call_{uuid.uuid4().hex[:24]}",
                             function=FunctionCallOut(name=c.name, arguments=json.dumps(c.arguments, ensure_ascii=False)))
                 for c in calls]
    finish = "tool_calls" if calls else "length" if result.completion_tokens >= max_new else "stop"
    usage = Usage(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                  total_tokens=result.prompt_tokens + result.completion_tokens)
    return ChatCompletion(model=model_id, usage=usage,
                          choices=[Choice(message=AssistantMessage(content=content, tool_calls=out_calls or None), finish_reason=finish)])


def to_messages(messages: list[ChatMessageIn], store: Any, allow_urls: bool) -> list[Message]:
    """OpenAI messages -> `Message`s; media are stored in `store` (checked there) and named by id."""
    from mmagent.media.artifacts import ArtifactError
    from mmagent.protocol.toolcall import loads_json

    out: list[Message] = []
    called: dict[str, str] = {}  # call id -> tool name, to name the tool that a `tool` message answers
    for i, m in enumerate(messages):
        where = f"messages.{i}"
        parts = [m.content] if isinstance(m.content, str) else list(m.content or [])
        texts, images, audio = [], [], []
        for j, p in enumerate(parts):
            if isinstance(p, str):
                texts.append(p)
            elif p.type == "text":
                texts.append(p.text)
            elif m.role != "user":
                raise ApiError(400, f"{where}: only user messages may carry {p.type} parts", param=f"{where}.content.{j}")
            else:
                try:
                    if p.type == "image_url":
                        data = image_bytes(p.image_url.url, what=f"{where}.content.{j}", allow_urls=allow_urls)
                        images.append(store.add_image(data).id)
                    else:
                        audio.append(store.add_audio(audio_bytes(p.input_audio.data, what=f"{where}.content.{j}",
                                                                 fmt=p.input_audio.format)).id)
                except (MediaInputError, ArtifactError) as err:
                    raise ApiError(400, str(err), param=f"{where}.content.{j}", code="invalid_image" if p.type == "image_url" else None) from None
        text = "\n".join(texts)
        if m.role in ("system", "developer"):
            out.append(Message(role="system", content=text))
        elif m.role == "user":
            out.append(Message(role="user", content=text, images=images, audio=audio))
        elif m.role == "assistant":
            calls = []
            for k, c in enumerate(m.tool_calls or []):
                try:
                    args = loads_json(c.function.arguments or "{}")
                except ValueError as err:
                    raise ApiError(400, f"{where}.tool_calls.{k}: arguments are not JSON: {err}", param=f"{where}.tool_calls.{k}") from None
                if not isinstance(args, dict):
                    raise ApiError(400, f"{where}.tool_calls.{k}: arguments must be a JSON object", param=f"{where}.tool_calls.{k}")
                called[c.id] = c.function.name
                calls.append(ToolCall(name=c.function.name, arguments=args, id=c.id))
            out.append(Message(role="assistant", content=text, tool_calls=calls))
        else:
            name = called.get(m.tool_call_id or "") or m.name
            if name is None:
                raise ApiError(400, f"{where}: a tool message must answer a tool_call_id of an earlier assistant message",
                               param=f"{where}.tool_call_id")
            try:
                result: Any = json.loads(text)
            except ValueError:
                result = text
            out.append(Message(role="tool", name=name, tool_call_id=m.tool_call_id, content=format_tool_result(name, result)))
    return out


class ProseStream:
    """Streams model text minus its `<tool_call>...</tool_call>` blocks (they go out as
    `tool_calls`); a tail that may be the start of a tag is held back until it is decided."""

    def __init__(self) -> None:
        self.buf, self.in_call = "", False

    def feed(self, piece: str) -> str:
        self.buf += piece
        out = ""
        while True:
            tag = CALL_CLOSE if self.in_call else CALL_OPEN
            at = self.buf.find(tag)
            if at >= 0:
                out += "" if self.in_call else self.buf[:at]
                self.buf, self.in_call = self.buf[at + len(tag):], not self.in_call
                continue
            if self.in_call:
                return out
            keep = next((n for n in range(min(len(tag) - 1, len(self.buf)), 0, -1) if tag.startswith(self.buf[-n:])), 0)
            out, self.buf = out + self.buf[:len(self.buf) - keep], self.buf[len(self.buf) - keep:]
            return out

    def flush(self) -> str:
        rest, self.buf = ("" if self.in_call else self.buf), ""
        return rest


def _model_error(err: BaseException) -> ApiError:
    """An exception from the model as the answer's error: the user's (400) or the server's (500)."""
    if isinstance(err, ApiError):
        return err
    if isinstance(err, ContextOverflowError):
        return ApiError(400, str(err), param="messages", code="context_length_exceeded")
    from mmagent.backends.media import MediaError

    if isinstance(err, UserError | MediaError):  # bad media, unsupported decoding, a prompt the model refuses
        return ApiError(400, str(err))
    log.error("chat completion failed", exc_info=err)
    return ApiError(500, f"the model failed: {type(err).__name__}: {err}")
