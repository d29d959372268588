"""`POST /v1/chat/completions` driven by the official OpenAI client, unchanged, against a real
uvicorn server, on a scripted ChatModel (no real model)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import openai
import pytest
from serve_fixtures import png_data_uri, served_agent

from mmagent.agent import ScriptedChatModel
from mmagent.protocol.chat import ContextOverflowError

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def reply(messages) -> str:
    """The scripted model's one behaviour: `call:CITY` asks for the weather tool, a tool result is
    read back, anything else is echoed."""
    last = messages[-1]
    if last.content == "too long":
        raise ContextOverflowError("the messages need 3000 tokens; the context holds 2048")
    if last.content == "crash":
        raise RuntimeError("a bug")
    if last.role == "tool":
        return f"It says: {last.content}"
    if last.content.startswith("call:"):
        return ('Checking. <tool_call>{"name": "get_weather", "arguments": {"city": "' + last.content[5:] + '"}}</tool_call>')
    return f"echo {last.content} ({len(last.images)} images)"


class Recording(ScriptedChatModel):
    """ScriptedChatModel that also records max_new_tokens and the temperature it ran with."""

    temperature = 0.0

    def __init__(self) -> None:
        super().__init__([reply] * 500)
        self.budgets: list[int] = []
        self.temperatures: list[float] = []

    def chat(self, messages, tools=None, **kw: Any):
        self.budgets.append(kw["max_new_tokens"])
        self.temperatures.append(self.temperature)
        return super().chat(messages, tools, **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = Recording()
    with served_agent(tmp_path_factory.mktemp("serve"), model, tools=[]) as (url, _agent):
        yield url, model


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server[0] + "/v1", api_key="unused", max_retries=0)


def test_models_and_a_plain_completion_with_usage(client, server):
    model = server[1]
    assert [m.id for m in client.models.list()] == ["scripted"]
    r = client.chat.completions.create(model="scripted", messages=[{"role": "system", "content": "Be brief."},
                                                                   {"role": "user", "content": "hello"}])
    assert r.choices[0].message.content == "echo hello (0 images)" and r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion" and r.model == "scripted"
    assert r.usage.completion_tokens == 4 and r.usage.total_tokens == r.usage.prompt_tokens + 4
    assert [m.role for m in model.seen[-1]] == ["system", "user"] and model.seen_tools[-1] is None


def test_images_arrive_as_artifacts_of_the_request(client, server):
    r = client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is it"}, {"type": "image_url", "image_url": {"url": png_data_uri()}},
        {"type": "image_url", "image_url": {"url": png_data_uri(color="blue"), "detail": "low"}}]}])
    assert r.choices[0].message.content == "echo what is it (2 images)"
    assert server[1].seen[-1][-1].images == ["image_1", "image_2"]


def test_tool_calls_out_and_tool_results_in(client, server):
    model = server[1]
    first = client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "call:Paris"}], tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Checking."
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert model.seen_tools[-1][0]["function"]["name"] == "get_weather" and model.seen_constrained[-1] is True  # auto: guided

    second = client.chat.completions.create(model="scripted", tools=[WEATHER], messages=[
        {"role": "user", "content": "call:Paris"}, choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})}])
    seen = model.seen[-1]
    assert seen[1].tool_calls[0].name == "get_weather" and seen[1].tool_calls[0].id == call.id
    assert seen[2].role == "tool" and seen[2].name == "get_weather" and seen[2].tool_call_id == call.id
    assert '"temp_c": 21' in seen[2].content
    assert second.choices[0].finish_reason == "stop" and "temp_c" in second.choices[0].message.content


@pytest.mark.parametrize("choice, tools, constrained", [
    ("none", None, False),
    ("auto", ["get_weather", "get_time"], True),
    ("required", ["get_weather", "get_time"], "required"),  # the grammar's required mode: calls only
    ({"type": "function", "function": {"name": "get_time"}}, ["get_time"], "required"),
])
def test_tool_choice_maps_onto_the_chat_model(client, server, choice, tools, constrained):
    model = server[1]
    client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER, CLOCK], tool_choice=choice)
    offered = model.seen_tools[-1]
    assert (None if offered is None else [t["function"]["name"] for t in offered]) == tools
    assert model.seen_constrained[-1] == constrained and type(model.seen_constrained[-1]) is type(constrained)


def test_streaming_sends_tokens_then_the_calls_then_usage(client):
    stream = client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi there"}], stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo hi there (0 images)" and len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 2
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5

    chunks = list(client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "call:Rome"}],
                                                 tools=[WEATHER], stream=True))
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert content.strip() == "Checking." and "<tool_call>" not in content  # the call's text goes out as tool_calls
    assert [(tc.function.name, json.loads(tc.function.arguments)) for tc in calls] == [("get_weather", {"city": "Rome"})]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_max_tokens_and_temperature_reach_the_model(client, server):
    model = server[1]
    r = client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "a b"}], max_tokens=3, temperature=0.7)
    assert model.budgets[-1] == 3 and model.temperatures[-1] == 0.7
    assert model.temperature == 0.0  # for that call only
    assert r.choices[0].finish_reason == "length"  # 5 pieces >= 3


def test_errors_are_openai_shaped(client, server):
    url = server[0]
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "model_not_found" and "scripted" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}], n=2)
    assert e.value.param == "n"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="scripted", messages=[{"role": "tool", "tool_call_id": "nope", "content": "x"}])
    assert "tool_call_id" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}], tool_choice="required")
    assert e.value.param == "tool_choice"
    for body, status in [(b"{", 400), (b'{"model": "scripted", "messages": []}', 400), (b'{"model": 3}', 400)]:
        r = httpx.post(url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status and set(r.json()["error"]) == {"message", "type", "param", "code"}
        assert r.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(url + "/v1/nothing").json()["error"]["code"] == "not_found"
    assert httpx.get(url + "/v1/chat/completions").status_code == 405


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_that_refuses_before_any_token_is_a_4xx_and_a_bug_a_500(client, stream):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "too long"}], stream=stream)
    assert e.value.code == "context_length_exceeded" and "2048" in e.value.message
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "crash"}], stream=stream)
    assert e.value.status_code == 500 and "RuntimeError" in e.value.message
    assert client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "ok"}]).choices[0].message.content


def test_oversized_bodies_and_images_are_refused(tmp_path):
    from PIL import Image

    from mmagent.interop.media import data_uri

    with served_agent(tmp_path, Recording(), tools=[], max_body_bytes=64 * 1024) as (url, _):
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIStatusError) as e:
            client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "x" * 100_000}])
        assert e.value.status_code == 413 and e.value.code == "request_too_large"
        chunked = httpx.post(url + "/v1/chat/completions", content=iter([b"{" + b" " * 70_000, b"}"]),
                             headers={"content-type": "application/json"})  # no Content-Length: counted as it arrives
        assert chunked.status_code == 413
        import io

        buf = io.BytesIO()
        Image.new("1", (9000, 5000)).save(buf, "PNG")  # 45 MP in a few KB: refused from its header
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": data_uri(buf.getvalue(), "image/png")}}]}])
        assert "pixels" in e.value.message and e.value.param == "messages.0.content.0"


def test_an_image_over_the_byte_limit_is_refused_before_it_is_decoded(monkeypatch):
    import base64

    from mmagent.interop import media
    from mmagent.media.images import ImageLimits

    def never(*a, **k):
        raise AssertionError("decoded")

    monkeypatch.setattr(media.base64, "b64decode", never)
    with pytest.raises(media.MediaInputError, match="over the limit of 1,000 bytes"):
        media.image_bytes("data:image/png;base64," + base64.b64encode(b"x" * 2000).decode(), limits=ImageLimits(max_bytes=1000))


def test_required_tool_choice_on_a_model_that_cannot_constrain_is_a_400(tmp_path):
    model = ScriptedChatModel([reply] * 5)
    model.constrains_decoding = False  # as a remote endpoint in text mode
    with served_agent(tmp_path, model, tools=[]) as (url, _):
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER],
                                           tool_choice={"type": "function", "function": {"name": "get_weather"}})
        assert e.value.code == "unsupported_tool_choice" and "cannot constrain" in e.value.message
        r = client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER])
        assert r.choices[0].message.content.startswith("echo") and model.seen_constrained[-1] is False  # auto: free decoding


def test_one_model_instance_serves_concurrent_requests_one_at_a_time(tmp_path):
    class Slow(ScriptedChatModel):
        def __init__(self) -> None:
            super().__init__([reply] * 20)
            self.active = self.most = 0
            self.guard = threading.Lock()

        def chat(self, *a: Any, **k: Any):
            with self.guard:
                self.active += 1
                self.most = max(self.most, self.active)
            time.sleep(0.15)
            with self.guard:
                self.active -= 1
            return super().chat(*a, **k)

    model = Slow()
    with served_agent(tmp_path, model, tools=[]) as (url, _):
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        answers: list[str] = []
        threads = [threading.Thread(target=lambda i=i: answers.append(client.chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": f"q{i}"}]).choices[0].message.content)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sorted(answers) == [f"echo q{i} (0 images)" for i in range(4)]
    assert model.most == 1  # the lock: never two generations at once
