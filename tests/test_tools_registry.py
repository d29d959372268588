"""Calling tools: validation, unknown names, timeouts and raising tools all become observations."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from mmagent.tools.base import ImageId, ToolContext, tool
from mmagent.tools.boxes import Box
from mmagent.tools.edit import crop_image, draw_boxes, resize_image
from mmagent.tools.registry import ToolRegistry, UnknownToolError
from PIL import Image
from pydantic import BaseModel

from mmagent.media.artifacts import ArtifactStore

release = threading.Event()


@tool
def add(a: int, b: int = 1) -> int:
    """Adds two integers.

    Args:
        a: First number.
        b: Second number.
    """
    return a + b


@tool
def hang(seconds: float) -> str:
    """Sleeps (until the test releases it).

    Args:
        seconds: How long at most.
    """
    release.wait(seconds)
    return "woke"


@tool
def explode(message: str) -> str:
    """Always raises.

    Args:
        message: The error text.
    """
    raise RuntimeError(message)


class Size(BaseModel):
    width: int
    height: int


@tool
def image_size(image: ImageId, ctx: ToolContext) -> Size:
    """Reports an image's size.

    Args:
        image: The image.
    """
    im = ctx.artifacts.load_image(image)
    return Size(width=im.width, height=im.height)


@pytest.fixture()
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(artifacts=ArtifactStore(tmp_path / "a", "t"), session="t")


@pytest.fixture()
def reg() -> ToolRegistry:
    return ToolRegistry([add, hang, explode, image_size, crop_image, resize_image, draw_boxes])


def test_ok_call(reg, ctx):
    r = reg.call("add", {"a": 2, "b": 3}, ctx)
    assert r.ok and r.output == {"result": 5} and r.error is None and r.latency_s >= 0
    # what the model reads: the one tool-result format (`format_tool_result`)
    assert r.observation().startswith("<tool_response>") and r.observation().endswith("</tool_response>")
    assert json.loads(r.observation()[15:-16]) == {"name": "add", "result": {"result": 5}}


def test_registry_listing_subset_and_unique_names(reg):
    assert reg.names() == sorted(["add", "hang", "explode", "image_size", "crop_image", "resize_image", "draw_boxes"])
    sub = reg.subset(["add", "crop_image"])
    assert sub.names() == ["add", "crop_image"] and sub.get("add") is reg.get("add")
    assert [s["function"]["name"] for s in sub.schemas()] == ["add", "crop_image"]
    with pytest.raises(ValueError, match="already registered"):
        reg.register(add)
    with pytest.raises(UnknownToolError, match="known tools: add"):
        reg.subset(["nope"])


def test_plain_function_registers_as_tool():
    def mul(x: int, y: int) -> int:
        """Multiplies.

        Args:
            x: A.
            y: B.
        """
        return x * y

    reg = ToolRegistry()
    reg.register(mul)
    assert reg.get("mul").schema()["function"]["parameters"]["required"] == ["x", "y"]


@pytest.mark.parametrize(
    ("args", "field", "fragment"),
    [
        ({"a": "two"}, "a", "valid integer"),
        ({}, "a", "required argument is missing"),
        ({"a": 1, "c": 2}, "c", "unknown argument; allowed: a, b"),
        ("a=1", "", "must be a JSON object"),
    ],
)
def test_validation_failures_are_structured(reg, ctx, args, field, fragment):
    r = reg.call("add", args, ctx)
    assert not r.ok and r.error_kind == "validation"
    err = r.details["errors"][0]
    assert err["field"] == field and fragment in err["message"]
    assert r.details["schema"]["properties"]["a"]["type"] == "integer"  # the schema to repair against
    assert "Call it again" in r.error and fragment in r.observation()
    body = json.loads(r.observation()[15:-16])
    assert body["name"] == "add" and body["error"] == r.error
    # the short part of the schema the model needs to repair the call: the failing field's type
    assert body.get("expected") == ({"a": "integer"} if field == "a" else None) == r.expected


def test_expected_types_name_nested_fields_bounds_and_objects(ctx):
    from pydantic import Field

    class Spot(BaseModel):
        x: int = Field(ge=0)
        label: str

    @tool
    def mark(spots: list[Spot], scale: float = Field(default=1.0, gt=0, le=4)) -> str:
        """Marks spots.

        Args:
            spots: Where.
            scale: How big.
        """
        return "ok"

    r = ToolRegistry([mark]).call("mark", {"spots": [{"x": -1}, 3], "scale": 9}, ctx)
    assert r.error_kind == "validation"
    assert r.expected == {"spots.0.x": "integer >= 0", "spots.0.label": "string", "spots.1": "object {x, label}",
                          "scale": "number > 0 <= 4"}, r.expected


def test_unknown_tool(reg, ctx):
    r = reg.call("nope", {}, ctx)
    assert not r.ok and r.error_kind == "unknown_tool" and "add" in r.details["known_tools"]
    assert "unknown tool 'nope'" in r.error
    assert reg.call(["not", "a", "name"], {}, ctx).error_kind == "unknown_tool"  # a malformed call from a model


def test_artifact_ids_checked_before_the_call(reg, ctx):
    ctx.artifacts.add_text("x")
    r = reg.call("image_size", {"image": "image_4"}, ctx)
    assert r.error_kind == "validation" and "unknown artifact id 'image_4'" in r.details["errors"][0]["message"]
    r = reg.call("image_size", {"image": "/etc/passwd"}, ctx)
    assert r.error_kind == "validation" and r.details["errors"][0]["field"] == "image"
    r = reg.call("image_size", {"image": "text_1"}, ctx)  # pattern rejects other kinds too
    assert r.error_kind == "validation"


def test_timeout_abandons_a_hung_tool(reg, ctx):
    release.clear()
    t0 = time.perf_counter()
    r = reg.call("hang", {"seconds": 30}, ctx, timeout_s=0.2)
    assert not r.ok and r.error_kind == "timeout" and "0.2 s" in r.error
    assert time.perf_counter() - t0 < 5
    release.set()  # let the abandoned worker finish
    assert reg.call("hang", {"seconds": 0.01}, ctx, timeout_s=5).ok  # the registry still works


def test_raising_tool_is_reported(reg, ctx):
    r = reg.call("explode", {"message": "boom"}, ctx)
    assert not r.ok and r.error_kind == "exception" and "RuntimeError: boom" in r.error


def test_chain_crop_resize_draw_returns_new_artifacts(reg, ctx):
    im = Image.new("RGB", (100, 60), "white")
    im.paste((255, 0, 0), (10, 10, 30, 40))
    src = ctx.artifacts.add_image(im).id
    r = reg.call("crop_image", {"image": src, "box": {"x0": 10, "y0": 10, "x1": 30, "y1": 40}}, ctx)
    assert r.ok and r.artifacts == [r.output["image"]] and r.output["image"] != src
    crop = ctx.artifacts.load_image(r.output["image"])
    assert crop.size == (20, 30) and crop.getpixel((5, 5)) == (255, 0, 0)
    r2 = reg.call("resize_image", {"image": r.output["image"], "width": 10}, ctx)
    assert (r2.output["width"], r2.output["height"]) == (10, 15)
    r3 = reg.call("resize_image", {"image": src, "width": 10, "height": 10, "keep_aspect": False}, ctx)
    assert (r3.output["width"], r3.output["height"]) == (10, 10)
    r4 = reg.call("draw_boxes", {"image": src, "boxes": [{"x0": 50, "y0": 5, "x1": 90, "y1": 50, "label": "box", "score": 0.9}], "color": "blue"}, ctx)
    drawn = ctx.artifacts.load_image(r4.output["image"])
    assert drawn.getpixel((50, 30)) == (0, 0, 255) and ctx.artifacts.load_image(src).getpixel((50, 30)) == (255, 255, 255)


def test_edit_tool_bad_inputs(reg, ctx):
    src = ctx.artifacts.add_image(Image.new("RGB", (10, 10))).id
    r = reg.call("crop_image", {"image": src, "box": {"x0": 5, "y0": 5, "x1": 2, "y1": 9}}, ctx)
    assert r.error_kind == "validation" and "x1 > x0" in r.error
    r = reg.call("crop_image", {"image": src, "box": Box(x0=20, y0=20, x1=30, y1=30).model_dump()}, ctx)
    assert r.error_kind == "validation" and "outside image_1" in r.error and "10x10 pixels" in r.error
    r = reg.call("resize_image", {"image": src}, ctx)
    assert r.error_kind == "validation" and "give width, height or both" in r.error
    r = reg.call("resize_image", {"image": src, "width": 99999}, ctx)
    assert r.error_kind == "validation" and r.details["errors"][0]["field"] == "width"


def test_abandoned_tool_does_not_block_process_exit(tmp_path):
    import subprocess
    import sys

    code = (
        "import time\n"
        "from mmagent.tools import ArtifactStore, ToolContext, ToolRegistry, tool\n"
        "@tool\n"
        "def stuck(x: int) -> int:\n"
        "    '''Never returns.\n\n    Args:\n        x: Ignored.\n    '''\n"
        "    while True:\n"
        "        time.sleep(0.05)\n"
        f"ctx = ToolContext(ArtifactStore({str(tmp_path)!r}, 's'))\n"
        "print(ToolRegistry([stuck]).call('stuck', {'x': 1}, ctx, timeout_s=0.2).error_kind)\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "timeout", out.stderr
    assert time.perf_counter() - t0 < 30
