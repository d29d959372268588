"""Any OpenAI-compatible `/v1/chat/completions` endpoint as a `ChatModel` (vLLM, llama.cpp
server, TGI, Ollama, OpenAI itself), over httpx.

    from mmagent.backends.remote import RemoteChatModel
    model = RemoteChatModel.from_spec("http://127.0.0.1:8000/v1#Qwen2-VL-7B-Instruct")
    result = model.chat(messages, tools=registry.schemas(), artifacts=store, on_token=print)

Spec string for `mmagent.backends.load_chat_model`: `openai:<base url>#<model name>`, e.g.
`openai:http://127.0.0.1:8000/v1#qwen2-vl` -> `RemoteChatModel.from_spec("http://127.0.0.1:8000/v1#qwen2-vl")`.
The API key is read from the env var named by `api_key_env` (default `OPENAI_API_KEY`), never
from the spec, so it does not end up in logs or configs.

Wire format: images go as `data:` URIs in `image_url` content parts (the stored bytes, re-encoded
only when `max_image_side` asks for smaller images), WAV/MP3 audio as `input_audio` parts, and
each message with media names its ids (`[attached: image_1]`) so the model can pass them to tools.
With `native_tools` (default) the tool schemas go in `tools` and the server's `tool_calls` become
`ToolCall`s; `<tool_call>` blocks in the content are parsed too, for servers that answer in text.
With `native_tools=False` the tool prompt and past calls are rendered as text
(`mmagent.protocol.toolcall.template_messages`), exactly as the local backends see them. `ChatResult.text`
always holds the calls in the one `<tool_call>` format, so a remote model's logged turns are
training data for the local one.

Failures: connect errors, timeouts before any token arrived, 429 and 5xx are retried up to
`max_retries` times with exponential backoff (`backoff_s * 2**attempt`, capped, `Retry-After`
honoured); then, and for any other failure, a `RemoteModelError` naming the URL and the cause.
A stream that breaks after tokens were delivered is not retried (the tokens were already shown).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx
from pydantic import BaseModel, Field

from mmagent.backends.media import audio_payload, image_payload, to_data_uri
from mmagent.errors import UserError
from mmagent.protocol.chat import ChatResult, Constrained, Message, OnToken, ToolCall

if TYPE_CHECKING:
    from mmagent.media.artifacts import ArtifactStore

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class RemoteModelError(RuntimeError):
    """The endpoint could not give an answer; the message names the URL and what went wrong."""


class InsecureKeyError(ValueError, UserError):
    """The API key would travel in clear text to a host that is not this machine."""


class RemoteConfig(BaseModel):
    """Where the endpoint is and how patiently to talk to it."""

    base_url: str = Field(description="Up to and including /v1, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(min_length=1, description="The server's model name")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Env var holding the API key (unset: no auth header)")
    timeout_s: float = Field(default=120.0, gt=0, description="Longest wait for any read (whole body, or the next stream chunk)")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0, description="Retries after the first attempt")
    backoff_s: float = Field(default=0.5, ge=0, description="First retry delay; doubles each retry")
    backoff_max_s: float = Field(default=8.0, ge=0)
    native_tools: bool = True
    temperature: float | None = Field(default=0.0, ge=0, description="None: the server's default")
    max_image_side: int | None = Field(default=None, gt=0, description="Downscale images whose longer side is larger")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Merged into every request (e.g. top_p, seed)")
    allow_insecure_key: bool = Field(default=False, description="Send the API key over plain http to a non-loopback host")


class RemoteChatModel:
    """An OpenAI-compatible chat endpoint behind the chat interface."""

    def __init__(self, config: RemoteConfig | None = None, **fields: Any) -> None:
        if config is not None and fields:
            raise TypeError(f"pass either a RemoteConfig or its fields, not both (got config and {', '.join(fields)})")
        self.config = config or RemoteConfig(**fields)
        url = urlparse(self.config.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"base_url {self.config.base_url!r} is not an http(s) URL; e.g. http://127.0.0.1:8000/v1")
        self.url = self.config.base_url.rstrip("/") + "/chat/completions"
        self.name = f"openai:{self.config.base_url}#{self.config.model}"
        timeout = httpx.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s)
        self._client = httpx.Client(timeout=timeout)

    @classmethod
    def from_spec(cls, spec: str, **overrides: Any) -> RemoteChatModel:
        """`http://host:port/v1#model-name` (an `openai:` prefix is accepted too)."""
        spec = spec.removeprefix("openai:")
        base_url, _, model = spec.partition("#")
        if not model:
            raise ValueError(f"remote model spec {spec!r} names no model; write <base url>#<model>, e.g. http://127.0.0.1:8000/v1#qwen2-vl")
        return cls(RemoteConfig(base_url=base_url, model=model, **overrides))

    @property
    def temperature(self) -> float | None:
        """The temperature sent with each request (None: the server's default)."""
        return self.config.temperature

    @temperature.setter
    def temperature(self, value: float | None) -> None:
        self.config.temperature = value

    @property
    def constrains_decoding(self) -> bool:
        """Native tool calling hands the schemas to the server (strict where they qualify); in text
        mode the server decodes freely, so constrained decoding is not offered."""
        return self.config.native_tools

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chat(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
        *,
        artifacts: ArtifactStore | None = None,
        max_new_tokens: int = 256,
        constrained: Constrained = False,
        on_token: OnToken | None = None,
    ) -> ChatResult:
        """`constrained` is honoured through the server's native tool calling (it returns calls
        as structured JSON); in text mode (`native_tools=False`) it cannot be, and is refused."""
        if constrained and tools and not self.config.native_tools:
            raise ValueError("a remote endpoint in text mode cannot constrain decoding; use native_tools=True or constrained=False")
        body = self.request_body(messages, tools, artifacts, max_new_tokens, stream=on_token is not None, constrained=constrained)
        reply = self._send(body, on_token)
        return reply.to_result(self.name)

    # -- request ----------------------------------------------------------------------------

    def request_body(
        self, messages: Sequence[Message], tools: list[dict[str, Any]] | None, artifacts: ArtifactStore | None,
        max_new_tokens: int, *, stream: bool, constrained: Constrained = False,
    ) -> dict[str, Any]:
        """The JSON body of one chat-completions request; `constrained` marks the functions whose
        schemas qualify as `strict` (OpenAI structured outputs: the server decodes to the schema)."""
        _check_prompt(messages, max_new_tokens)
        native = self.config.native_tools
        wire = native_messages(messages) if native else text_messages(messages, tools)
        for msg, out in zip(messages, wire[len(wire) - len(messages):]):
            if msg.images or msg.audio:
                out["content"] = self._media_parts(msg, out.get("content") or "", artifacts)
        body: dict[str, Any] = {"model": self.config.model, "messages": wire, "max_tokens": max_new_tokens}
        if self.config.temperature is not None:
            body["temperature"] = self.config.temperature
        if tools and native:
            body["tools"] = [_strict(t) for t in tools] if constrained else list(tools)
            body["tool_choice"] = "required" if constrained == "required" else "auto"
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return {**body, **self.config.extra_body}

    def _media_parts(self, msg: Message, text: str, artifacts: ArtifactStore | None) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        for art_id in msg.images:
            data, mime = image_payload(art_id, artifacts, max_side=self.config.max_image_side)
            parts.append({"type": "image_url", "image_url": {"url": to_data_uri(data, mime)}})
        for art_id in msg.audio:
            data, fmt = audio_payload(art_id, artifacts)
            parts.append({"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode("ascii"), "format": fmt}})
        return parts

    # -- transport --------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.config.api_key_env)
        if key and not (self.config.allow_insecure_key or _private_channel(self.config.base_url)):
            raise InsecureKeyError(
                f"refusing to send ${self.config.api_key_env} in clear text to {self.config.base_url}: use https, a loopback "
                f"address, or allow_insecure_key=True if this network is yours (or unset ${self.config.api_key_env})")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _send(self, body: dict[str, Any], on_token: OnToken | None) -> _Reply:
        attempts = self.config.max_retries + 1
        headers = self._headers()  # an unsafe key is refused before any byte is sent
        for attempt in range(attempts):
            reply = _Reply()
            try:
                with self._client.stream("POST", self.url, json=body, headers=headers) as resp:
                    if resp.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                        resp.read()
                        self._wait(attempt, f"HTTP {resp.status_code}", resp.headers.get("retry-after"))
                        continue
                    if resp.status_code >= 400:
                        raise RemoteModelError(self._status_message(resp, attempt + 1))
                    if body.get("stream"):
                        _read_stream(resp, reply, on_token, self.url)
                    else:
                        _read_json(resp, reply, self.url)
                    return reply
            except (httpx.TimeoutException, httpx.TransportError) as err:
                if reply.delivered:
                    raise RemoteModelError(f"{self.url}: the stream broke after {len(reply.content)} characters: {_why(err)}") from err
                if attempt + 1 < attempts:
                    self._wait(attempt, _why(err), None)
                    continue
                raise RemoteModelError(self._transport_message(err, attempts)) from err
        raise AssertionError("unreachable")  # the loop returns or raises

    def _wait(self, attempt: int, why: str, retry_after: str | None) -> None:
        delay = min(self.config.backoff_s * 2**attempt, self.config.backoff_max_s)
        if retry_after and retry_after.strip().isdigit():
            delay = min(max(delay, float(retry_after)), self.config.backoff_max_s)
        log.warning("%s: %s; retry %d/%d in %.2f s", self.url, why, attempt + 1, self.config.max_retries, delay)
        time.sleep(delay)

    def _status_message(self, resp: httpx.Response, tries: int) -> str:
        resp.read()
        detail = _server_error(resp)
        hint = {
            401: f"; set ${self.config.api_key_env} to a valid API key",
            403: f"; the key in ${self.config.api_key_env} may lack access to {self.config.model!r}",
            404: f"; check the base URL (it should end in /v1) and that the server serves {self.config.model!r}",
        }.get(resp.status_code, "")
        after = f" after {tries} attempts" if resp.status_code in RETRY_STATUSES and tries > 1 else ""
        return f"{self.url} answered HTTP {resp.status_code}{after}: {detail}{hint}"

    def _transport_message(self, err: Exception, tries: int) -> str:
        if isinstance(err, httpx.ConnectError):
            return f"cannot reach {self.url} ({tries} attempts): {_why(err)}; is the server running and the URL right?"
        if isinstance(err, httpx.TimeoutException):
            return (f"{self.url} did not answer in time ({tries} attempts, timeout {self.config.timeout_s:g} s read / "
                    f"{self.config.connect_timeout_s:g} s connect); raise timeout_s or check the server's load")
        return f"{self.url} failed ({tries} attempts): {_why(err)}"


# --- messages on the wire -----------------------------------------------------------------------


def native_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """`Message`s -> OpenAI messages with native `tool_calls` / `tool` turns; ids filled in where
    missing (a tool result without an id answers the oldest open call of the same name)."""
    from mmagent.protocol.toolcall import attachment_note

    out: list[dict[str, Any]] = []
    open_calls: list[tuple[str, str]] = []  # (call id, tool name), not yet answered
    for i, m in enumerate(messages):
        text = "\n".join(p for p in (attachment_note(m), m.content) if p)
        wire: dict[str, Any] = {"role": m.role, "content": text}
        if m.role == "assistant" and m.tool_calls:
            calls = []
            for j, call in enumerate(m.tool_calls):
                call_id = call.id or f"call_{i}_{j}"
                open_calls.append((call_id, call.name))
                calls.append({"id": call_id, "type": "function",
                              "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}})
            wire = {"role": "assistant", "content": text or None, "tool_calls": calls}
        elif m.role == "tool":
            call_id = m.tool_call_id or _answer(open_calls, m.name)
            # A note that answers no call (the agent's repair after an unparseable reply) would be
            # refused by the server as a tool turn: it goes as the user's correction instead.
            wire = {"role": "tool", "content": text, "tool_call_id": call_id} if call_id else {"role": "user", "content": text}
        out.append(wire)
    return out


def _private_channel(base_url: str) -> bool:
    """https anywhere, or plain http to this machine only (a key must not cross a network in clear)."""
    url = urlparse(base_url)
    host = (url.hostname or "").lower()
    if url.scheme == "https" or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost: it may resolve anywhere
        return False


def _strict(tool: dict[str, Any]) -> dict[str, Any]:
    """A function schema with `strict: true` when OpenAI's strict mode accepts it (every property
    required, no extra properties); others go as they are, validated by the agent after the call."""
    params = tool.get("function", {}).get("parameters", {})
    props = params.get("properties", {})
    qualifies = params.get("additionalProperties") is False and set(params.get("required", [])) == set(props)
    return {**tool, "function": {**tool["function"], "strict": True}} if qualifies else tool


def _answer(open_calls: list[tuple[str, str]], name: str | None) -> str | None:
    """The id of the oldest open call of that tool (taken off the list); None when none is open."""
    for k, (call_id, call_name) in enumerate(open_calls):
        if name is None or call_name == name:
            del open_calls[k]
            return call_id
    return None


def text_messages(messages: Sequence[Message], tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The local backends' rendering (tool prompt, `<tool_call>` text); tool results sent as user
    turns, since servers reject `tool` turns that answer no native call."""
    from mmagent.protocol.toolcall import template_messages

    rendered = template_messages(messages, tools)
    return [{"role": "user" if t["role"] == "tool" else t["role"], "content": t["content"]} for t in rendered]


def _check_prompt(messages: Sequence[Message], max_new_tokens: int) -> None:
    if not messages:
        raise ValueError("messages is empty: pass at least one user message")
    if not any(m.content.strip() or m.images or m.audio or m.tool_calls for m in messages):
        raise ValueError("the prompt is empty: every message has no text and no media; say something or attach an image")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")


# --- responses ------------------------------------------------------------------------------------


@dataclass
class _PartialCall:
    id: str | None = None
    name: str = ""
    arguments: str = ""  # JSON text, streamed in fragments


@dataclass
class _Reply:
    """What came back, accumulated from one JSON body or from stream chunks."""

    content: str = ""
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    delivered: bool = False  # some content already went to on_token

    def add_message(self, message: dict[str, Any]) -> None:
        """A non-streamed `choices[0].message` (or a stream `delta`, fragment by fragment)."""
        self.content += message.get("content") or ""
        for k, tc in enumerate(message.get("tool_calls") or []):
            part = self.calls.setdefault(tc.get("index", k), _PartialCall())
            part.id = tc.get("id") or part.id
            fn = tc.get("function") or {}
            part.name += fn.get("name") or ""
            args = fn.get("arguments")
            part.arguments += args if isinstance(args, str) else json.dumps(args) if args is not None else ""

    def add_usage(self, usage: dict[str, Any] | None) -> None:
        if usage:
            self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.completion_tokens = int(usage.get("completion_tokens") or 0)

    def to_result(self, model: str) -> ChatResult:
        from mmagent.protocol.toolcall import format_calls, loads_json, parse_tool_calls

        calls, errors = [], []
        for n, part in enumerate(self.calls[k] for k in sorted(self.calls)):
            try:
                args = loads_json(part.arguments) if part.arguments.strip() else {}  # depth-bounded
                if not isinstance(args, dict):
                    raise ValueError(f"arguments must be a JSON object, got {type(args).__name__}")
                calls.append(ToolCall(name=part.name, arguments=args, id=part.id))
            except ValueError as err:  # json.JSONDecodeError is a ValueError
                errors.append(f"native tool call {n + 1} ({part.name or 'no name'}): {err}: {part.arguments[:60]!r}")
        text_calls, text_errors, prose = parse_tool_calls(self.content)
        text = "\n".join(p for p in (self.content.strip(), format_calls(calls)) if p) if calls else self.content
        return ChatResult(text=text, tool_calls=calls + text_calls, parse_errors=errors + text_errors, prose=prose,
                          prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens, model=model)


def _read_json(resp: httpx.Response, reply: _Reply, url: str) -> None:
    raw = resp.read()
    try:
        data = json.loads(raw)
    except ValueError:
        raise RemoteModelError(f"{url} answered HTTP {resp.status_code} with a body that is not JSON: {_clip(raw)}") from None
    choice = _first_choice(data, url)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise RemoteModelError(f"{url} answered without choices[0].message: {_clip(raw)}")
    reply.add_message(message)
    reply.add_usage(data.get("usage"))


def _read_stream(resp: httpx.Response, reply: _Reply, on_token: OnToken | None, url: str) -> None:
    """Server-sent events: `data: {chunk}` lines until `data: [DONE]` (or the end of the body)."""
    for data in _sse_data(resp.iter_lines()):
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise RemoteModelError(f"{url} streamed a chunk that is not JSON: {_clip(data.encode())}") from None
        if not isinstance(chunk, dict):
            raise RemoteModelError(f"{url} streamed a chunk that is not a JSON object: {_clip(data.encode())}")
        if "error" in chunk:
            raise RemoteModelError(f"{url} reported an error mid-stream: {_error_text(chunk['error'])}")
        reply.add_usage(chunk.get("usage"))
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            piece = delta.get("content") or ""
            reply.add_message(delta)
            if piece and on_token is not None:
                reply.delivered = True
                on_token(piece)


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The payloads of `data:` fields; comments (`:`) and other fields (`event:`, `id:`) skipped."""
    for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


def _first_choice(data: Any, url: str) -> dict[str, Any]:
    if isinstance(data, dict) and "error" in data:
        raise RemoteModelError(f"{url} answered with an error: {_error_text(data['error'])}")
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise RemoteModelError(f"{url} answered JSON without choices: {_clip(json.dumps(data).encode())}")
    return choices[0]


def _server_error(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return _clip(resp.content)
    return _error_text(data.get("error", data)) if isinstance(data, dict) else _clip(resp.content)


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err)


def _clip(raw: bytes, n: int = 200) -> str:
    text = raw.decode("utf-8", errors="replace")
    return repr(text if len(text) <= n else text[:n] + "...")


def _why(err: Exception) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
