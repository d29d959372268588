"""Who may reach `mmagent serve` and what a request may touch: loopback by default, keys over
TLS or loopback only, Bearer auth, no image URLs unless enabled, no path into the filesystem."""

from __future__ import annotations

import http.server
import os
import sys
import threading

import httpx
import openai
import pytest
from typer.testing import CliRunner

from mmagent.agent import ScriptedChatModel
from serve_fixtures import png_data_uri, served_agent

ECHO = [lambda m: f"saw {len(m[-1].images)} images"] * 50


@pytest.mark.parametrize("args, env, refused", [
    (["--host", "0.0.0.0"], {}, "without an API key"),
    (["--host", "192.168.1.20", "--api-key", "k"], {}, "without TLS"),
    (["--host", "192.168.1.20"], {"MMAGENT_API_KEY": "k"}, "without TLS"),  # the key from the environment
    (["--host", "::"], {}, "without an API key"),
])
def test_binding_beyond_loopback_is_refused_without_a_key_and_tls(args, env, refused):
    from mmagent.cli.app import app

    result = CliRunner().invoke(app, ["serve", *args, "--model", "scripted:none.json"], env=env)
    assert result.exit_code == 2 and refused in result.output


def test_the_bind_rule():
    from mmagent.serve.security import BindRefused, check_bind

    for host in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"):
        check_bind(host, api_key=None, tls=False, insecure=False)
    check_bind("0.0.0.0", api_key="k", tls=True, insecure=False)
    check_bind("0.0.0.0", api_key=None, tls=False, insecure=True)  # the operator said the network is theirs
    with pytest.raises(BindRefused):
        check_bind("example.com", api_key=None, tls=True, insecure=False)


def test_a_wrong_key_is_401_and_the_right_one_works(tmp_path):
    with served_agent(tmp_path, ScriptedChatModel(ECHO), tools=[], api_key="s3cret") as (url, _):
        wrong = openai.OpenAI(base_url=url + "/v1", api_key="guess", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as e:
            wrong.models.list()
        assert e.value.status_code == 401 and e.value.code == "invalid_api_key"
        assert e.value.response.headers["www-authenticate"] == "Bearer"
        assert httpx.post(url + "/v1/agent/turns", json={"prompt": "hi"}).status_code == 401
        assert httpx.post(url + "/v1/feedback", json={}, headers={"Authorization": "Basic czNjcmV0"}).status_code == 401
        right = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        assert [m.id for m in right.models.list()] == ["scripted"]
        assert httpx.get(url + "/").status_code == 200  # the page holds no secret; it asks for the key


def test_image_urls_are_refused_unless_enabled(tmp_path):
    msg = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]}]
    with _png_site() as site:
        msg[0]["content"][0]["image_url"]["url"] = site
        with served_agent(tmp_path / "a", ScriptedChatModel(ECHO), tools=[]) as (url, _):
            client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
            with pytest.raises(openai.BadRequestError) as e:
                client.chat.completions.create(model="scripted", messages=msg)
            assert "--allow-image-urls" in e.value.message and _png_site.hits == 0
        with served_agent(tmp_path / "b", ScriptedChatModel(ECHO), tools=[], allow_image_urls=True) as (url, _):
            client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
            assert client.chat.completions.create(model="scripted", messages=msg).choices[0].message.content == "saw 1 images"
            assert _png_site.hits == 1


class _PngHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        import base64

        _png_site.hits += 1
        body = base64.b64decode(png_data_uri().split(",", 1)[1])
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _png_site:
    """A one-image web site on loopback, counting its hits."""

    hits = 0

    def __enter__(self) -> str:
        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), _PngHandler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_port}/cat.png"

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()


def test_a_path_in_a_request_never_reaches_the_filesystem(tmp_path, monkeypatch):
    """A real image at a known path is named every way a request can name it; the server must
    refuse each without opening or even stat-ing it (audit hook on open, os.stat wrapped)."""
    canary = tmp_path / "canary-7f3a.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(canary)
    touched: list[str] = []
    watching = threading.Event()

    def hook(event: str, args: tuple) -> None:
        if watching.is_set() and event in ("open", "os.listdir", "os.scandir") and "canary-7f3a" in str(args):
            touched.append(f"{event} {args[0]}")

    sys.addaudithook(hook)  # hooks cannot be removed: this one acts only while `watching` is set
    real_stat = os.stat

    def stat(path, *a, **k):
        if watching.is_set() and "canary-7f3a" in str(path):
            touched.append(f"stat {path}")
        return real_stat(path, *a, **k)

    monkeypatch.setattr(os, "stat", stat)
    names = [str(canary), f"file://{canary}", f"{canary}#x", "canary-7f3a.png", f"../../{canary.name}"]
    with served_agent(tmp_path / "srv", ScriptedChatModel(ECHO), tools=["resize_image"]) as (url, _):
        watching.set()
        statuses = []
        for name in names:
            part = {"type": "image_url", "image_url": {"url": name}}
            statuses.append(httpx.post(url + "/v1/chat/completions", json={"model": "scripted", "messages": [
                {"role": "user", "content": [part]}]}).status_code)
            statuses.append(httpx.post(url + "/v1/agent/turns", json={"prompt": "look", "images": [name]}).status_code)
            statuses.append(httpx.post(url + "/v1/feedback", json={"turn_id": name[:64], "rating": "up"}).status_code)
        statuses.append(httpx.get(f"{url}/v1/agent/sessions/x/artifacts/..%2F..%2F{canary.name}").status_code)
        statuses.append(httpx.get(f"{url}/v1/agent/sessions/..%2F{canary.name}/artifacts/image_1").status_code)
        statuses.append(httpx.get(f"{url}/{canary}").status_code)
        watching.clear()
    assert all(400 <= s < 500 for s in statuses), statuses
    assert touched == []
    watching.set()  # the watch itself works: reading the canary is seen
    canary.exists() and canary.read_bytes()
    watching.clear()
    assert [t.split()[0] for t in touched] == ["stat", "open"]


def test_a_loopback_server_answers_only_loopback_host_names(tmp_path):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1."""
    with served_agent(tmp_path, ScriptedChatModel(ECHO), tools=[]) as (url, _):
        assert httpx.get(url + "/v1/models", headers={"Host": "evil.example:8000"}).status_code == 403
        assert httpx.get(url + "/v1/models", headers={"Host": "localhost:8000"}).status_code == 200


def test_a_cross_site_form_post_cannot_start_a_turn(tmp_path):
    """A `text/plain` POST needs no CORS preflight; only JSON bodies are read."""
    with served_agent(tmp_path, ScriptedChatModel(ECHO), tools=[]) as (url, _):
        r = httpx.post(url + "/v1/agent/turns", content=b'{"prompt": "hi"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
