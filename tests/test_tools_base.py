"""Schema derivation: the signature and the docstring are one source of truth."""

from __future__ import annotations

from enum import Enum
from typing import Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from mmagent.tools.base import AudioId, ImageId, Tool, ToolContext, ToolDefinitionError, artifact_fields, parse_docstring, tool


class Unit(str, Enum):
    px = "px"
    pct = "pct"


class Region(BaseModel):
    x: int
    y: int


class Out(BaseModel):
    n: int


@tool
def kitchen_sink(
    image: ImageId,
    region: Region,
    ctx: ToolContext,
    mode: Literal["fast", "exact"] = "fast",
    unit: Unit = Unit.px,
    limit: int | None = None,
    scale: float = Field(1.0, gt=0, le=4),
    tags: list[str] = [],  # noqa: B006 - pydantic copies defaults
) -> Out:
    """Does everything once.

    Args:
        image: The image.
        region: Where to look.
        mode: How hard to try,
            continued on a second line.
        unit: Unit of the region.
        limit: At most this many.
        scale: Zoom factor.
        tags: Labels to attach.
    """
    return Out(n=len(tags))


def test_schema_is_openai_function_shape():
    s = kitchen_sink.schema()
    assert s["type"] == "function"
    fn = s["function"]
    assert fn["name"] == "kitchen_sink" and fn["description"] == "Does everything once."
    p = fn["parameters"]
    assert p["type"] == "object" and p["additionalProperties"] is False
    assert set(p["properties"]) == {"image", "region", "mode", "unit", "limit", "scale", "tags"}  # ctx is not an argument
    assert sorted(p["required"]) == ["image", "region"]
    assert "title" not in p and "title" not in p["properties"]["image"]


def test_schema_details_defaults_enums_optional_nested_image():
    p = kitchen_sink.schema()["function"]["parameters"]
    props = p["properties"]
    assert props["mode"]["enum"] == ["fast", "exact"] and props["mode"]["default"] == "fast"
    assert props["mode"]["description"] == "How hard to try, continued on a second line."
    assert props["unit"]["default"] == "px" and p["$defs"]["Unit"]["enum"] == ["px", "pct"]
    assert {"type": "null"} in props["limit"]["anyOf"] and props["limit"]["default"] is None
    assert props["scale"]["exclusiveMinimum"] == 0 and props["scale"]["maximum"] == 4 and props["scale"]["description"] == "Zoom factor."
    assert props["region"]["$ref"] == "#/$defs/Region" and p["$defs"]["Region"]["required"] == ["x", "y"]
    assert props["image"]["x-artifact"] == "image" and props["image"]["pattern"].startswith("^image_")
    assert artifact_fields(p) == {"image": "image"}


def test_input_model_validates_and_forbids_extra():
    m = kitchen_sink.input_model
    ok = m.model_validate({"image": "image_3", "region": {"x": 1, "y": 2}})
    assert ok.mode == "fast" and ok.limit is None and ok.region == Region(x=1, y=2)
    for bad in (
        {"image": "/etc/passwd", "region": {"x": 1, "y": 2}},  # a path is not an artifact id
        {"image": "image_1", "region": {"x": 1, "y": 2}, "extra": 1},
        {"image": "image_1", "region": {"x": 1, "y": 2}, "mode": "slow"},
        {"image": "image_1", "region": {"x": 1, "y": 2}, "scale": 0},
    ):
        with pytest.raises(ValidationError):
            m.model_validate(bad)


def test_function_tool_still_callable_directly():
    assert kitchen_sink("image_1", Region(x=0, y=0), None, tags=["a", "b"]).n == 2


def test_non_model_return_is_wrapped_as_result():
    @tool
    def add(a: int, b: int = 2) -> int:
        """Adds.

        Args:
            a: First.
            b: Second.
        """
        return a + b

    out = add.invoke(add.input_model(a=1), ctx=None)
    assert out.result == 3 and add.output_schema()["properties"]["result"]["type"] == "integer"


def test_undocumented_parameter_is_an_error_at_decoration():
    with pytest.raises(ToolDefinitionError, match="'b' is not described"):

        @tool
        def f(a: int, b: int) -> int:
            """Does f.

            Args:
                a: First.
            """
            return a


def test_documented_but_missing_parameter_is_an_error():
    with pytest.raises(ToolDefinitionError, match=r"describes \['c'\]"):

        @tool
        def f(a: int) -> int:
            """Does f.

            Args:
                a: First.
                c: Not a parameter.
            """
            return a


@pytest.mark.parametrize(
    "src",
    [
        "def f(a) -> int:\n    '''Does f.\n\n    Args:\n        a: x.\n    '''",  # no type hint
        "def f(a: int):\n    '''Does f.\n\n    Args:\n        a: x.\n    '''",  # no return type
        "def f(a: int) -> int:\n    pass",  # no docstring
        "def f(*a: int) -> int:\n    '''Does f.\n\n    Args:\n        a: x.\n    '''",  # varargs
    ],
)
def test_other_definition_errors(src):
    ns: dict = {}
    exec(src, ns)  # noqa: S102 - builds the bad function under test
    with pytest.raises(ToolDefinitionError):
        tool(ns["f"])


def test_parse_docstring_sections_and_types():
    summary, args = parse_docstring(
        """Summary line
        goes on.

        Args:
            x (int): The x.
            y: The y
                over two lines.

        Returns:
            z: not an arg.
        """
    )
    assert summary == "Summary line goes on."
    assert args == {"x": "The x.", "y": "The y over two lines."}


class _Echo(BaseModel):
    audio: AudioId


class _EchoOut(BaseModel):
    calls: int


class Counting(Tool):
    """Class form: heavy state is loaded once, lazily."""

    name = "counting"
    description = "Counts its loads and calls."
    input_model = _Echo
    output_model = _EchoOut

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.calls = 0

    def load(self) -> None:
        self.loads += 1

    def run(self, args, ctx):
        self.calls += 1
        return {"calls": self.calls}  # a dict is validated into the output model


def test_class_form_loads_lazily_once():
    t = Counting()
    assert t.loads == 0  # nothing at construction
    assert t.schema()["function"]["parameters"]["properties"]["audio"]["x-artifact"] == "audio"
    assert t.invoke(_Echo(audio="audio_1"), None).calls == 1
    assert t.invoke(_Echo(audio="audio_1"), None).calls == 2
    assert t.loads == 1


def test_tool_defined_inside_a_function_resolves_local_types():
    class LocalOut(BaseModel):
        doubled: int

    @tool(name="double_it")
    def double(x: int) -> LocalOut:
        """Doubles.

        Args:
            x: The number.
        """
        return LocalOut(doubled=2 * x)

    assert double.name == "double_it" and double.invoke(double.input_model(x=4), None).doubled == 8
