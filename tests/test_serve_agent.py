"""The agent over HTTP: streamed turns, approvals through resume, artifacts, and feedback that is
stored exactly as `mmagent feedback` stores it."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from PIL import Image

from mmagent.agent import ScriptedChatModel
from mmagent.serve import ServeConfig, create_app, shared_agent
from serve_fixtures import png_data_uri, running, served_agent

RESIZE = '<tool_call>{"name": "resize_image", "arguments": {"image": "image_1", "width": 8}}</tool_call>'
CROP = '<tool_call>{"name": "crop_image", "arguments": {"image": "image_1", "box": {"x0": 0, "y0": 0, "x1": 4, "y1": 4}}}</tool_call>'


def events(response: httpx.Response) -> list[tuple[str, dict]]:
    """(event, data) of a server-sent event stream."""
    out, kind = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            out.append((kind, json.loads(line[6:])))
    return out


def post_stream(url: str, path: str, body: dict) -> list[tuple[str, dict]]:
    with httpx.stream("POST", url + path, json=body, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.read()
        return events(r)


def test_a_turn_streams_its_events_and_the_images_tools_made(tmp_path):
    model = ScriptedChatModel([RESIZE, "Resized it to 8 pixels."])
    with served_agent(tmp_path, model, tools=["resize_image"]) as (url, agent):
        evs = post_stream(url, "/v1/agent/turns", {"session": "web-1", "prompt": "make it small", "images": [png_data_uri((32, 24))]})
        kinds = [k for k, _ in evs]
        assert kinds[0] == "artifact" and "token" in kinds and kinds[-2:] == ["answer", "result"]
        assert kinds.index("tool_call_start") < kinds.index("tool_call_end") < kinds.index("answer")
        made = [d["artifact"] for k, d in evs if k == "artifact" and d.get("step")]
        assert [a["id"] for a in made] == ["image_2"]
        result = evs[-1][1]
        assert result["status"] == "ok" and result["answer"] == "Resized it to 8 pixels." and result["session"] == "web-1"
        png = httpx.get(f"{url}/v1/agent/sessions/web-1/artifacts/image_2")
        assert png.headers["content-type"] == "image/png" and Image.open(io.BytesIO(png.content)).size == (8, 6)
        assert httpx.get(f"{url}/v1/agent/sessions/web-1/artifacts/image_9").status_code == 404
        assert httpx.get(f"{url}/v1/agent/sessions/nobody/artifacts/image_1").status_code == 404
        assert agent.log.turn(result["turn_id"]).prompt == "make it small"


def test_a_turn_without_streaming_returns_the_run_result(tmp_path):
    with served_agent(tmp_path, ScriptedChatModel(["Hello."]), tools=[]) as (url, _):
        r = httpx.post(url + "/v1/agent/turns", json={"prompt": "hi", "stream": False})
        assert r.status_code == 200 and r.json()["answer"] == "Hello." and r.json()["session"].startswith("s-")
        bad = httpx.post(url + "/v1/agent/turns", json={"prompt": "  ", "stream": False})
        assert bad.status_code == 400 and "prompt is empty" in bad.json()["error"]["message"]
        assert httpx.post(url + "/v1/agent/turns", json={"prompt": "hi", "session": "../x"}).status_code == 400


def test_approvals_go_through_resume(tmp_path):
    model = ScriptedChatModel([CROP, "Cropped.", CROP, "Not cropped, as you asked."])
    with served_agent(tmp_path, model, tools=["crop_image"], approval=["crop_image"]) as (url, _):
        evs = post_stream(url, "/v1/agent/turns", {"session": "s-approve", "prompt": "crop it", "images": [png_data_uri()]})
        (interrupt,) = [d for k, d in evs if k == "interrupt"]
        assert interrupt["calls"][0]["name"] == "crop_image" and evs[-1][1]["status"] == "interrupted"
        busy = httpx.post(url + "/v1/agent/turns", json={"session": "s-approve", "prompt": "again"})
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "session_busy"
        bad = httpx.post(url + "/v1/agent/sessions/s-approve/resume", json={"decision": "maybe"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "decision"

        evs = post_stream(url, "/v1/agent/sessions/s-approve/resume", {"decision": "approve"})
        assert [d["result"]["ok"] for k, d in evs if k == "tool_call_end"] == [True]
        assert evs[-1][1]["status"] == "ok" and evs[-1][1]["answer"] == "Cropped."

        post_stream(url, "/v1/agent/turns", {"session": "s-approve", "prompt": "crop again"})
        r = httpx.post(url + "/v1/agent/sessions/s-approve/resume", json={"decision": "deny", "stream": False})
        assert r.json()["calls"][0]["approval"] == "denied" and r.json()["answer"] == "Not cropped, as you asked."
        nothing = httpx.post(url + "/v1/agent/sessions/s-approve/resume", json={"decision": "approve"})
        assert nothing.status_code == 400 and "no unfinished turn" in nothing.json()["error"]["message"]


def test_feedback_is_stored_as_mmagent_feedback_stores_it(tmp_path):
    from typer.testing import CliRunner

    from mmagent.cli.app import app
    from mmagent.feedback import FeedbackStore

    model = ScriptedChatModel(["First answer.", "Second answer."])
    # The default interaction log (<home>/interactions.sqlite): the one `mmagent feedback` writes to.
    agent = shared_agent(ServeConfig(model="scripted", tools=["crop_image"]), model, checkpoint=tmp_path / "ckpt.sqlite",
                         artifacts_root=tmp_path / "art")
    try:
        with running(create_app(ServeConfig(model="scripted"), agent)) as url:
            first = httpx.post(url + "/v1/agent/turns", json={"prompt": "one", "stream": False}).json()["turn_id"]
            second = httpx.post(url + "/v1/agent/turns", json={"prompt": "two", "stream": False}).json()["turn_id"]
            call = {"name": "crop_image", "arguments": {"image": "image_1", "box": {"x0": 0, "y0": 0, "x1": 2, "y1": 2}}}
            r = httpx.post(url + "/v1/feedback", json={"turn_id": second, "rating": "down", "correct_call": call})
            assert r.status_code == 200 and r.json()["rating"] == "down" and r.json()["source"] == "http"
            assert httpx.post(url + "/v1/feedback", json={"turn_id": first, "rating": "up"}).status_code == 200
            wrong = httpx.post(url + "/v1/feedback", json={"turn_id": first, "rating": "down",
                                                           "correct_call": {"name": "crop_image", "arguments": {"image": 3}}})
            assert wrong.status_code == 400 and "correction refused" in wrong.json()["error"]["message"]
            unknown = httpx.post(url + "/v1/feedback", json={"turn_id": "t-nope", "rating": "up"})
            assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "turn_id"
        cli = CliRunner().invoke(app, ["feedback", first, "--rating", "down", "--correct-call", json.dumps(call)])
        assert cli.exit_code == 0, cli.output
        store = FeedbackStore(agent.log.path)
        http_row, cli_row = store.for_turn(second)[-1], store.for_turn(first)[-1]
        assert len(store.for_turn(first)) == 2  # the 'up' over HTTP, then the CLI's correction (the bad one stored nothing)
    finally:
        agent.close()
    keep = {"rating", "correct_calls", "correct_answer"}
    assert http_row.model_dump(include=keep) == cli_row.model_dump(include=keep)
    assert (http_row.source, cli_row.source) == ("http", "cli") and http_row.session and http_row.session != cli_row.session


def test_images_must_be_data_uris(tmp_path):
    with served_agent(tmp_path, ScriptedChatModel(["x"]), tools=[]) as (url, _):
        for src in ["/etc/hostname", "file:///etc/hostname", "https://example.com/a.png", "data:text/plain;base64,aGk="]:
            r = httpx.post(url + "/v1/agent/turns", json={"prompt": "look", "images": [src]})
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_image", src


@pytest.mark.parametrize("path", ["/", "/app.js", "/style.css"])
def test_the_page_is_served_from_the_package(tmp_path, path):
    with served_agent(tmp_path, ScriptedChatModel([]), tools=[]) as (url, _):
        r = httpx.get(url + path)
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    assert b"http:" not in r.content and b"https:" not in r.content  # nothing from a CDN: every asset is local
