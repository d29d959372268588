"""MCP both ways, over real sessions of the official SDK: its client against `mmagent mcp` (a
subprocess on stdio, and streamable HTTP), and an Agent importing a tiny MCP server's tools."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import sys
from pathlib import Path

import pytest
from PIL import Image
from serve_fixtures import png_data_uri, running

ROOT = Path(__file__).resolve().parents[1]
MMAGENT = str(Path(sys.executable).with_name("mmagent"))

TINY_SERVER = '''
"""A tiny MCP server (the SDK's MCPServer): text out, an image in, an image out."""
import base64, io
from typing import Annotated
from pydantic import Field
from PIL import Image as PILImage
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.utilities.types import Image

server = MCPServer("tiny")

@server.tool()
def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"Sunny, 22 C in {city}"

@server.tool()
def image_size(image: Annotated[str, Field(description="The picture.", json_schema_extra={"contentMediaType": "image/*"})]) -> str:
    """Width x height of an image."""
    w, h = PILImage.open(io.BytesIO(base64.b64decode(image.split(",", 1)[1]))).size
    return f"{w}x{h}"

@server.tool()
def red_square(size: int) -> Image:
    """Draws a red square."""
    buf = io.BytesIO()
    PILImage.new("RGB", (size, size), "red").save(buf, "PNG")
    return Image(data=buf.getvalue(), format="png")

if __name__ == "__main__":
    server.run("stdio")
'''


def _env() -> dict[str, str]:
    """What the stdio subprocess needs (the SDK passes only a safe default environment)."""
    return {k: os.environ[k] for k in ("MMAGENT_HOME", "MMAGENT_CACHE_DIR", "OMP_NUM_THREADS", "HF_HUB_OFFLINE") if k in os.environ}


@pytest.fixture
def tiny(tmp_path) -> str:
    script = tmp_path / "tiny_server.py"
    script.write_text(TINY_SERVER)
    return f"{sys.executable} {script}"


def test_the_sdk_client_lists_and_calls_mmagent_mcp_over_stdio(tmp_path):
    from mcp import Client, StdioServerParameters
    from mcp.shared.exceptions import MCPError

    canary = tmp_path / "canary.png"
    Image.new("RGB", (4, 4)).save(canary)

    async def session():
        params = StdioServerParameters(command=MMAGENT, args=["mcp", "--tool", "resize_image", "--tool", "crop_image"], env=_env())
        async with Client(params) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            resized = await client.call_tool("resize_image", {"image": png_data_uri((64, 32)), "width": 16})
            cropped = await client.call_tool("crop_image", {"image": json.loads(resized.content[0].text)["image"],
                                                            "box": {"x0": 0, "y0": 0, "x1": 8, "y1": 4}})
            bad = await client.call_tool("resize_image", {"image": str(canary), "width": 16})
            with pytest.raises(MCPError, match="unknown tool"):
                await client.call_tool("format_disk", {})
            return tools, resized, cropped, bad

    tools, resized, cropped, bad = asyncio.run(session())
    assert set(tools) == {"resize_image", "crop_image"}
    schema = tools["resize_image"].input_schema
    assert schema["properties"]["image"]["contentMediaType"] == "image/*" and schema["required"] == ["image"]
    assert schema["properties"]["width"]["anyOf"][0]["type"] == "integer"  # the tool's own schema otherwise
    assert not resized.is_error and [b.type for b in resized.content] == ["text", "image"]
    assert resized.structured_content["width"] == 16 and resized.content[1].mime_type == "image/png"
    assert Image.open(io.BytesIO(base64.b64decode(resized.content[1].data))).size == (16, 8)
    assert not cropped.is_error and Image.open(io.BytesIO(base64.b64decode(cropped.content[1].data))).size == (8, 4)
    assert bad.is_error and "are not read" in bad.content[0].text  # a path is never opened


def test_mmagent_mcp_over_streamable_http(tmp_path):
    from mcp import Client
    from mmagent.tools.registry import default_registry

    from mmagent.interop.mcp_server import RegistryServer
    from mmagent.media.artifacts import ArtifactStore

    rs = RegistryServer(default_registry(include=["resize_image"]), ArtifactStore(tmp_path / "art", "mcp-test"))

    async def session(url: str):
        async with Client(url + "/mcp") as client:
            names = [t.name for t in (await client.list_tools()).tools]
            return names, await client.call_tool("resize_image", {"image": png_data_uri((20, 10)), "height": 5})

    with running(rs.server().streamable_http_app(host="127.0.0.1"), lifespan="on") as url:
        names, result = asyncio.run(session(url))
    rs.close()
    assert names == ["resize_image"]
    assert Image.open(io.BytesIO(base64.b64decode(result.content[1].data))).size == (10, 5)


def test_an_agent_imports_a_tiny_mcp_server_and_calls_its_tools(tmp_path, tiny):
    from mmagent.agent import Agent, ScriptedChatModel

    model = ScriptedChatModel([
        '<tool_call>{"name": "weather", "arguments": {"city": "Paris"}}</tool_call>\n'
        '<tool_call>{"name": "image_size", "arguments": {"image": "image_1"}}</tool_call>\n'
        '<tool_call>{"name": "red_square", "arguments": {"size": 6}}</tool_call>',
        lambda messages: "Done: " + " | ".join(m.content for m in messages if m.role == "tool"),
    ])
    with Agent(model=model, tools=[], mcp_servers=[tiny], log=tmp_path / "log.sqlite", checkpoint=tmp_path / "ckpt.sqlite",
               artifacts_root=tmp_path / "art") as agent:
        assert agent.registry.names() == ["image_size", "red_square", "weather"]
        offered = {t["function"]["name"]: t["function"]["parameters"] for t in agent.registry.schemas()}
        assert offered["image_size"]["properties"]["image"]["x-artifact"] == "image"  # the model passes an id
        result = agent.run("Weather in Paris, the size of this picture, and a red square", images=[Image.new("RGB", (12, 7))])
        store = agent.artifacts(result.session)
        square = next(a for a in result.artifacts if a != "image_1")
        square_size = store.load_image(square).size
    assert result.status == "ok", result.error
    calls = {c.name: c for c in result.calls}
    assert all(c.ok for c in calls.values()), [c.error for c in calls.values()]
    assert calls["weather"].result["text"] == "Sunny, 22 C in Paris"
    assert calls["image_size"].result["text"] == "12x7"  # image_1 went to the server as a data URI
    assert calls["red_square"].result["images"] == [square] and square_size == (6, 6)
    assert "Sunny, 22 C in Paris" in result.answer and "12x7" in result.answer


def test_an_agent_imports_mmagent_mcp_itself_prefixing_clashing_names(tmp_path):
    from mcp import StdioServerParameters

    from mmagent.agent import Agent, ScriptedChatModel

    model = ScriptedChatModel(['<tool_call>{"name": "mmagent.resize_image", "arguments": {"image": "image_1", "width": 5}}</tool_call>',
                               "Resized."])
    server = StdioServerParameters(command=MMAGENT, args=["mcp", "--tool", "resize_image"], env=_env())
    with Agent(model=model, tools=["resize_image"], mcp_servers=[server], log=tmp_path / "log.sqlite",
               checkpoint=tmp_path / "ckpt.sqlite", artifacts_root=tmp_path / "art") as agent:
        assert agent.registry.names() == ["mmagent.resize_image", "resize_image"]
        result = agent.run("Make it 5 pixels wide", images=[Image.new("RGB", (10, 20))])
        made = result.calls[0].result["images"]
        size = agent.artifacts(result.session).load_image(made[0]).size
    assert result.status == "ok" and result.calls[0].ok, result.calls[0].error
    assert size == (5, 10)  # there and back: image_1 as a data URI, the result as MCP image content


def test_mmagent_run_takes_mcp_servers(tmp_path, tiny):
    import subprocess

    script = tmp_path / "outputs.json"
    script.write_text(json.dumps(['<tool_call>{"name": "weather", "arguments": {"city": "Oslo"}}</tool_call>', "It is sunny."]))
    proc = subprocess.run([MMAGENT, "run", "weather in Oslo?", "--model", f"scripted:{script}", "--tool", "crop_image",
                           "--mcp", tiny, "--json"], capture_output=True, text=True, timeout=120, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["calls"][0]["name"] == "weather" and out["calls"][0]["result"]["text"] == "Sunny, 22 C in Oslo"


def test_an_mcp_server_that_cannot_start_is_one_clear_error(tmp_path):
    from mmagent.agent import Agent
    from mmagent.interop.mcp_client import MCPConnectError

    with pytest.raises(MCPConnectError, match="cannot use MCP server"):
        Agent(model="unused", tools=[], mcp_servers=[str(tmp_path / "no-such-server")], checkpoint=":memory:", log=tmp_path / "l.sqlite")


def test_mcp_over_http_beyond_loopback_is_refused():
    from mmagent.cli.app import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["mcp", "--http", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "no authentication" in result.output
