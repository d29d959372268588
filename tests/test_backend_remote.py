"""The OpenAI-compatible remote backend against a scripted fake server on 127.0.0.1 (stdlib
http.server in a thread): plain answers, images as data URIs, native and text tool calls, SSE
streaming, retries with backoff, a hanging server, garbage replies, an unreachable port."""

from __future__ import annotations

import http.server
import io
import json
import socket
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from mmagent.backends.media import MediaError, UnsupportedMediaError, decode_image, parse_data_uri, to_data_uri
from mmagent.backends.remote import RemoteChatModel, RemoteModelError
from mmagent.media.artifacts import ArtifactStore
from mmagent.protocol.chat import ChatModel, Message, ToolCall
from mmagent.protocol.toolcall import format_calls, format_tool_result

READ_TEXT = {
    "type": "function",
    "function": {"name": "read_text", "description": "Reads the text in an image.",
                 "parameters": {"type": "object", "properties": {"image": {"type": "string"}}, "required": ["image"]}},
}

Behaviour = Callable[[http.server.BaseHTTPRequestHandler], None]


def completion(content: str | None = "Hello there.", tool_calls: list | None = None, usage=(12, 3)) -> Behaviour:
    message = {"role": "assistant", "content": content, **({"tool_calls": tool_calls} if tool_calls else {})}
    return send_json(200, {"id": "x", "object": "chat.completion", "model": "fake",
                           "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}})


def send_json(status: int, obj, headers: dict[str, str] | None = None) -> Behaviour:
    return send_raw(status, json.dumps(obj).encode(), "application/json", headers)


def send_raw(status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None) -> Behaviour:
    def run(h):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
    return run


def send_sse(chunks: list, done: bool = True) -> Behaviour:
    def run(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()  # HTTP/1.0: the body ends when the connection closes
        h.wfile.write(b": keep-alive comment\n\n")
        for c in chunks:
            data = c if isinstance(c, str) else json.dumps(c)
            h.wfile.write(f"data: {data}\n\n".encode())
            h.wfile.flush()
        if done:
            h.wfile.write(b"data: [DONE]\n\n")
    return run


def delta(content=None, tool_calls=None, usage=None) -> dict:
    d = {k: v for k, v in (("content", content), ("tool_calls", tool_calls)) if v is not None}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d}] if d else [], "usage": usage}


class FakeServer:
    """Each POST takes the next scripted behaviour (the last one repeats) and records the request."""

    def __init__(self) -> None:
        self.script: list[Behaviour] = [completion()]
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.release = threading.Event()  # ends hanging handlers at teardown
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests.append(json.loads(body))
                server.headers.append(dict(self.headers))
                behaviour = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                behaviour(self)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def hang(self) -> Behaviour:
        return lambda h: self.release.wait(10)

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = FakeServer()
    yield s
    s.stop()


@pytest.fixture()
def model(server) -> RemoteChatModel:
    m = RemoteChatModel.from_spec(f"{server.base_url}#fake-vlm", backoff_s=0.01, max_retries=2, timeout_s=5)
    yield m
    m.close()


@pytest.fixture()
def store(tmp_path) -> ArtifactStore:
    s = ArtifactStore(tmp_path / "artifacts", session="remote-test")
    buf = io.BytesIO()
    Image.new("RGB", (64, 32), (250, 200, 0)).save(buf, format="PNG")
    s.add_image(buf.getvalue())  # image_1
    s.add_audio(_wav())  # audio_1
    return s


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 800)
    return buf.getvalue()


def _ask(**kw) -> list[Message]:
    return [Message(role="system", content="Be brief."), Message(role="user", content="What is this?", **kw)]


# --- answers ---------------------------------------------------------------------------------


def test_plain_completion(model, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert isinstance(model, ChatModel)
    result = model.chat(_ask(), max_new_tokens=20)
    assert result.text == "Hello there." and result.tool_calls == [] and result.parse_errors == []
    assert (result.prompt_tokens, result.completion_tokens) == (12, 3)
    assert result.model == f"openai:{server.base_url}#fake-vlm"
    req = server.requests[0]
    assert req["model"] == "fake-vlm" and req["max_tokens"] == 20 and req["temperature"] == 0.0
    assert req["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is this?"}]
    assert "tools" not in req and "stream" not in req
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_no_api_key_no_auth_header(model, server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model.chat(_ask())
    assert "Authorization" not in server.headers[0]


def test_images_travel_as_data_uris_of_the_stored_bytes(server, store):
    m = RemoteChatModel.from_spec(f"{server.base_url}#m")
    m.chat(_ask(images=["image_1"]), artifacts=store)
    parts = server.requests[0]["messages"][1]["content"]
    assert parts[0] == {"type": "text", "text": "[attached: image_1]\nWhat is this?"}
    mime, data = parse_data_uri(parts[1]["image_url"]["url"])
    assert mime == "image/png" and data == store.read_bytes("image_1")

    small = RemoteChatModel.from_spec(f"{server.base_url}#m", max_image_side=16)
    small.chat(_ask(images=["image_1"]), artifacts=store)
    assert decode_image(server.requests[1]["messages"][1]["content"][1]["image_url"]["url"]).size == (16, 8)


def test_audio_travels_as_input_audio(model, server, store):
    model.chat(_ask(audio=["audio_1"]), artifacts=store)
    part = server.requests[0]["messages"][1]["content"][1]
    assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"


def test_native_tool_calls_become_tool_calls(model, server):
    server.script = [completion(None, [{"id": "call_9", "type": "function",
                                        "function": {"name": "read_text", "arguments": '{"image": "image_1"}'}}])]
    result = model.chat(_ask(), tools=[READ_TEXT])
    assert result.tool_calls == [ToolCall(name="read_text", arguments={"image": "image_1"}, id="call_9")]
    assert result.text == format_calls(result.tool_calls)  # logged in the one tool-call format
    assert server.requests[0]["tools"] == [READ_TEXT]


def test_tool_calls_in_the_text_are_parsed_too(model, server):
    server.script = [completion('Sure. <tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>')]
    result = model.chat(_ask(), tools=[READ_TEXT])
    assert result.tool_calls == [ToolCall(name="read_text", arguments={"image": "image_1"})]


def test_bad_native_arguments_are_reported_not_raised(model, server):
    server.script = [completion(None, [{"id": "c", "type": "function", "function": {"name": "read_text", "arguments": "{image: 1"}}])]
    result = model.chat(_ask(), tools=[READ_TEXT])
    assert result.tool_calls == [] and len(result.parse_errors) == 1 and "read_text" in result.parse_errors[0]


def test_history_with_calls_pairs_ids(model, server):
    history = [
        *_ask(),
        Message(role="assistant", tool_calls=[ToolCall(name="read_text", arguments={"image": "image_1"})]),
        Message(role="tool", name="read_text", content=format_tool_result("read_text", {"text": "STOP"})),
    ]
    model.chat(history, tools=[READ_TEXT])
    wire = server.requests[0]["messages"]
    call = wire[2]["tool_calls"][0]
    assert call["function"] == {"name": "read_text", "arguments": '{"image": "image_1"}'} and wire[2]["content"] is None
    assert wire[3] == {"role": "tool", "content": history[3].content, "tool_call_id": call["id"]}


def test_text_mode_renders_tools_like_the_local_backends(server):
    m = RemoteChatModel.from_spec(f"{server.base_url}#m", native_tools=False)
    history = [*_ask(), Message(role="assistant", tool_calls=[ToolCall(name="read_text", arguments={"image": "image_1"})]),
               Message(role="tool", name="read_text", content="<tool_response>{}</tool_response>")]
    m.chat(history, tools=[READ_TEXT])
    req = server.requests[0]
    assert "tools" not in req
    assert "read_text(image: str)" in req["messages"][0]["content"]
    assert req["messages"][2]["content"].startswith("<tool_call>")
    assert req["messages"][3]["role"] == "user"
    with pytest.raises(ValueError, match="cannot constrain"):
        m.chat(_ask(), tools=[READ_TEXT], constrained=True)


# --- streaming -------------------------------------------------------------------------------


def test_streaming_content_and_tool_call_deltas(model, server):
    server.script = [send_sse([
        delta("Let me "), delta("read it."),
        delta(tool_calls=[{"index": 0, "id": "c1", "type": "function", "function": {"name": "read_text", "arguments": '{"ima'}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": 'ge": "image_1"}'}}]),
        delta(usage={"prompt_tokens": 30, "completion_tokens": 9}),
    ])]
    pieces: list[str] = []
    result = model.chat(_ask(), tools=[READ_TEXT], on_token=pieces.append)
    assert pieces == ["Let me ", "read it."]
    assert result.tool_calls == [ToolCall(name="read_text", arguments={"image": "image_1"}, id="c1")]
    assert result.text.startswith("Let me read it.\n<tool_call>")
    assert (result.prompt_tokens, result.completion_tokens) == (30, 9)
    assert server.requests[0]["stream"] is True and server.requests[0]["stream_options"] == {"include_usage": True}


def test_stream_error_chunk_and_garbage_chunk(model, server):
    server.script = [send_sse([delta("a"), {"error": {"message": "model overloaded"}}])]
    with pytest.raises(RemoteModelError, match="mid-stream: model overloaded"):
        model.chat(_ask(), on_token=lambda t: None)
    server.script = [send_sse([delta("a"), "{not json"])]
    with pytest.raises(RemoteModelError, match="streamed a chunk that is not JSON"):
        model.chat(_ask(), on_token=lambda t: None)


# --- failures --------------------------------------------------------------------------------


def test_retries_5xx_and_429_then_succeeds(model, server):
    server.script = [send_json(503, {"error": {"message": "loading"}}),
                     send_json(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}), completion("ok")]
    assert model.chat(_ask()).text == "ok"
    assert len(server.requests) == 3


def test_retries_are_bounded_then_a_clear_error(model, server):
    server.script = [send_json(500, {"error": {"message": "CUDA out of memory"}})]
    with pytest.raises(RemoteModelError) as err:
        model.chat(_ask())
    assert f"{server.base_url}/chat/completions answered HTTP 500 after 3 attempts: CUDA out of memory" in str(err.value)
    assert len(server.requests) == 3


def test_client_errors_are_not_retried_and_carry_a_hint(model, server):
    server.script = [send_json(401, {"error": {"message": "invalid key"}})]
    with pytest.raises(RemoteModelError, match=r"HTTP 401: invalid key; set \$OPENAI_API_KEY"):
        model.chat(_ask())
    assert len(server.requests) == 1


def test_a_hanging_server_times_out(server):
    server.script = [server.hang()]
    m = RemoteChatModel.from_spec(f"{server.base_url}#m", timeout_s=0.3, max_retries=1, backoff_s=0.01)
    t0 = time.perf_counter()
    with pytest.raises(RemoteModelError, match=r"did not answer in time \(2 attempts, timeout 0.3 s read"):
        m.chat(_ask())
    assert time.perf_counter() - t0 < 3
    assert len(server.requests) == 2


def test_garbage_json(model, server):
    server.script = [send_raw(200, b"<html>502 Bad Gateway</html>", "text/html")]
    with pytest.raises(RemoteModelError, match="not JSON: '<html>502 Bad Gateway</html>'"):
        model.chat(_ask())
    server.script = [send_json(200, {"object": "chat.completion"})]
    with pytest.raises(RemoteModelError, match="without choices"):
        model.chat(_ask())


def test_unreachable_endpoint(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = RemoteChatModel.from_spec(f"http://127.0.0.1:{port}/v1#m", max_retries=2, backoff_s=0.01)
    with pytest.raises(RemoteModelError, match=rf"cannot reach http://127.0.0.1:{port}/v1/chat/completions \(3 attempts\)"):
        m.chat(_ask())


# --- bad input -------------------------------------------------------------------------------


def test_bad_specs():
    with pytest.raises(ValueError, match="names no model"):
        RemoteChatModel.from_spec("http://127.0.0.1:8000/v1")
    with pytest.raises(ValueError, match="not an http"):
        RemoteChatModel.from_spec("ftp://host/v1#m")
    assert RemoteChatModel.from_spec("openai:http://h:1/v1/#m").url == "http://h:1/v1/chat/completions"


def test_load_chat_model_reaches_this_backend(server):
    from mmagent.backends import load_chat_model

    for spec in (f"openai:{server.base_url}#m", f"{server.base_url}#m"):
        model = load_chat_model(spec)
        assert isinstance(model, RemoteChatModel) and model.chat(_ask()).text == "Hello there."


def test_request_options(server):
    m = RemoteChatModel.from_spec(f"{server.base_url}#m", temperature=None, extra_body={"seed": 7, "top_p": 0.9})
    m.chat(_ask())
    req = server.requests[0]
    assert "temperature" not in req and req["seed"] == 7 and req["top_p"] == 0.9


def test_bad_messages(model, store, tmp_path):
    with pytest.raises(ValueError, match="messages is empty"):
        model.chat([])
    with pytest.raises(ValueError, match="prompt is empty"):
        model.chat([Message(role="user")])
    with pytest.raises(MediaError, match="no artifact store"):
        model.chat(_ask(images=["image_1"]))
    with pytest.raises(ValueError, match="image_7"):
        model.chat(_ask(images=["image_7"]), artifacts=store)
    flac = ArtifactStore(tmp_path / "a2", session="s")
    flac.add_audio(b"fLaC" + b"\x00" * 64)
    with pytest.raises(UnsupportedMediaError, match="WAV or MP3"):
        model.chat(_ask(audio=["audio_1"]), artifacts=flac)


def test_data_uris_round_trip_and_reject_garbage():
    assert parse_data_uri(to_data_uri(b"\x89PNG", "image/png")) == ("image/png", b"\x89PNG")
    assert parse_data_uri("data:,hello%20world") == ("text/plain", b"hello world")
    with pytest.raises(MediaError, match="invalid base64"):
        parse_data_uri("data:image/png;base64,@@@")
    with pytest.raises(MediaError, match="not a data URI"):
        parse_data_uri("http://x/y.png")
    with pytest.raises(MediaError, match="not an image"):
        decode_image(to_data_uri(b"RIFF", "audio/wav"))


# --- the agent over a remote endpoint --------------------------------------------------------


def test_a_repair_note_goes_to_the_server_as_a_user_turn():
    """The graph's repair after an unparseable reply answers no call: a `tool` turn without a
    matching call is refused by OpenAI-compatible servers, so it is sent as the user's correction."""
    from mmagent.backends.remote import native_messages

    note = format_tool_result("invalid_call", error="Reply with valid <tool_call> blocks")
    wire = native_messages([*_ask(), Message(role="assistant", content='<tool_call>{"name": '),
                            Message(role="tool", name="invalid_call", content=note)])
    assert wire[-1] == {"role": "user", "content": note}


def test_an_agent_turn_survives_an_unparseable_reply(server, tmp_path):
    from mmagent.agent import Agent

    # The agent streams (its events carry the tokens): the fake answers in SSE chunks.
    server.script = [send_sse([delta('<tool_call>{"name": "read_text", '), delta('"arguments": ')]),
                     send_sse([delta("It says "), delta("STOP.")])]
    model = RemoteChatModel.from_spec(f"{server.base_url}#fake", backoff_s=0.01, max_retries=0)
    with Agent(model=model, tools=["read_text"], log=tmp_path / "log.sqlite", checkpoint=tmp_path / "c.sqlite",
               artifacts_root=tmp_path / "art") as agent:
        r = agent.run("What does the sign say?")
    assert r.status == "ok" and r.answer == "It says STOP.", r.error
    second = server.requests[1]["messages"]
    assert second[-1]["role"] == "user" and "invalid_call" in second[-1]["content"]


def test_constrained_passes_the_schemas_on_as_strict_where_they_qualify(model, server):
    strict_ok = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"], "additionalProperties": False}}}
    model.chat(_ask(), tools=[READ_TEXT, strict_ok], constrained=True)
    model.chat(_ask(), tools=[READ_TEXT, strict_ok])
    on, off = (r["tools"] for r in server.requests)
    assert [t["function"].get("strict") for t in on] == [None, True]
    assert all("strict" not in t["function"] for t in off)
    assert server.requests[0]["tool_choice"] == "auto"
    assert model.constrains_decoding and not RemoteChatModel.from_spec(f"{server.base_url}#m", native_tools=False).constrains_decoding


def test_the_api_key_travels_only_over_tls_or_loopback(monkeypatch, server):
    from mmagent.backends.remote import InsecureKeyError, _private_channel

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    far = RemoteChatModel.from_spec("http://10.1.2.3:8000/v1#m", max_retries=0, connect_timeout_s=0.2)
    with pytest.raises(InsecureKeyError, match="refusing to send \\$OPENAI_API_KEY in clear text"):
        far.chat(_ask())
    assert [_private_channel(u) for u in ("https://api.example.com/v1", "http://127.0.0.1:9/v1", "http://localhost/v1",
                                          "http://[::1]:8000/v1", "http://example.com/v1", "http://127.example.com/v1")] == \
        [True, True, True, True, False, False]
    near = RemoteChatModel.from_spec(f"{server.base_url}#m")  # loopback: sent
    near.chat(_ask())
    assert server.headers[-1]["Authorization"] == "Bearer sk-secret"
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(RemoteModelError):  # without a key nothing secret travels: sent (and unreachable here)
        far.chat(_ask())


def test_native_arguments_nested_too_deep_are_a_parse_error(model, server):
    deep = "[" * 100_000 + "]" * 100_000
    server.script = [completion(None, tool_calls=[{"id": "c1", "type": "function",
                                                   "function": {"name": "read_text", "arguments": deep}}])]
    result = model.chat(_ask(), tools=[READ_TEXT])
    assert result.tool_calls == [] and "nested more than" in result.parse_errors[0]


def test_a_correction_nested_too_deep_is_a_feedback_error():
    from mmagent.feedback import FeedbackError, parse_correct_call

    with pytest.raises(FeedbackError, match="nested more than"):
        parse_correct_call('{"name": "x", "arguments": ' + "[" * 50_000 + "]" * 50_000 + "}")
