"""Tools from JSON schemas (OpenAI function schemas, MCP tools): the registry validates their calls
by the schema (types, enums, required, nested objects and arrays, defaults) with the same errors
as for `@tool` functions, runs a handler when there is one, and refuses broken schemas clearly."""

from __future__ import annotations

import json

import pytest
from mmagent.tools import SchemaTool, ToolContext, ToolRegistry, ToolSchemaError, load_tool_schemas

from mmagent.errors import UserError
from mmagent.media.artifacts import ArtifactStore

WEATHER = {"type": "function", "function": {
    "name": "weather.get-current", "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 20, "description": "City name.", "examples": ["Paris"]},
            "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "at": {"type": "object", "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}, "required": ["lat", "lon"]},
            "fields": {"type": "array", "items": {"type": "string", "enum": ["temp", "wind"]}, "maxItems": 2, "default": ["temp"]},
            "max-age": {"type": ["integer", "null"], "x-vendor": {"anything": True}},  # a dashed name, an unknown keyword
            "schema": {"type": "boolean"},  # a name BaseModel uses itself
        },
        "required": ["city"],
        "$schema": "http://json-schema.org/draft-07/schema#",
    }}}
MCP_READ = {"name": "fs.read_file", "description": "Reads a file.", "inputSchema": {
    "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}


@pytest.fixture()
def ctx(tmp_path):
    return ToolContext(artifacts=ArtifactStore(tmp_path, "s"))


def test_openai_and_mcp_schemas_register_with_dotted_and_dashed_names(ctx):
    reg = ToolRegistry([WEATHER, MCP_READ])
    assert reg.names() == ["fs.read_file", "weather.get-current"]
    assert reg.get("weather.get-current").external and reg.get("fs.read_file").external
    # The model sees the schema as given, in the OpenAI form (not pydantic's regeneration of it).
    fn = reg.get("weather.get-current").schema()["function"]
    assert fn["parameters"] == WEATHER["function"]["parameters"] and fn["description"] == "Current weather in a city."
    assert reg.get("fs.read_file").schema()["function"]["parameters"] == MCP_READ["inputSchema"]
    flat = SchemaTool({"type": "function", "name": "ping", "parameters": {}})  # Responses-API style, no arguments
    assert flat.schema()["function"]["parameters"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize("arguments, expected", [
    ({"city": "Paris"}, {"city": "Paris", "unit": "c", "fields": ["temp"]}),  # defaults filled, optional left out
    ({"city": "Oslo", "unit": "f", "days": 3, "at": {"lat": 59.9, "lon": 10}, "fields": ["wind"], "max-age": None, "schema": True},
     {"city": "Oslo", "unit": "f", "days": 3, "at": {"lat": 59.9, "lon": 10.0}, "fields": ["wind"], "max-age": None, "schema": True}),
])
def test_valid_arguments_come_out_validated_with_defaults(ctx, arguments, expected):
    assert ToolRegistry([WEATHER]).validate("weather.get-current", arguments, ctx) == expected


@pytest.mark.parametrize("arguments, field, message", [
    ({}, "city", "required argument is missing"),
    ({"city": 7}, "city", "valid string"),
    ({"city": "Paris", "unit": "kelvin"}, "unit", "'c' or 'f'"),
    ({"city": "Paris", "days": "3"}, "days", "valid integer"),  # JSON types: no coercion of strings
    ({"city": "Paris", "days": True}, "days", "valid integer"),
    ({"city": "Paris", "days": 9}, "days", "less than or equal to 7"),
    ({"city": "Paris", "at": {"lat": 1}}, "at.lon", "required argument is missing"),
    ({"city": "Paris", "at": {"lat": 1, "lon": 2, "alt": 3}}, "at.alt", "unknown argument; allowed: lat, lon"),
    ({"city": "Paris", "fields": ["temp", "rain"]}, "fields.1", "'temp' or 'wind'"),
    ({"city": "Paris", "fields": ["temp", "wind", "temp"]}, "fields", "at most 2 items"),
    ({"city": "Paris", "country": "FR"}, "country", "unknown argument; allowed: city, unit, days, at, fields, max-age, schema"),
])
def test_invalid_arguments_get_the_usual_validation_errors(ctx, arguments, field, message):
    r = ToolRegistry([WEATHER]).call("weather.get-current", arguments, ctx)
    assert not r.ok and r.error_kind == "validation"
    assert r.error.startswith("invalid arguments for weather.get-current:") and "Call it again" in r.error
    errors = {e["field"]: e["message"] for e in r.details["errors"]}
    assert message in errors[field], errors
    assert r.details["schema"] == WEATHER["function"]["parameters"]


def test_refs_unions_consts_and_patterns_validate(ctx):
    tool = SchemaTool({"name": "book-room", "parameters": {
        "type": "object",
        "$defs": {"Slot": {"type": "object", "properties": {"day": {"type": "string", "pattern": "^(?:mon|tue)$"}}, "required": ["day"]}},
        "properties": {"slot": {"$ref": "#/$defs/Slot"}, "size": {"anyOf": [{"type": "integer"}, {"const": "any"}]},
                       "tags": {"type": "object", "additionalProperties": {"type": "string"}}},
        "required": ["slot"]}})
    reg = ToolRegistry([tool])
    assert reg.validate("book-room", {"slot": {"day": "mon"}, "size": "any", "tags": {"a": "b"}}, ctx) == {
        "slot": {"day": "mon"}, "size": "any", "tags": {"a": "b"}}
    for bad in ({"slot": {"day": "sun"}}, {"slot": {"day": "mon"}, "size": "some"}, {"slot": {"day": "mon"}, "tags": {"a": 1}}):
        assert reg.call("book-room", bad, ctx).error_kind == "validation", bad


def test_a_handler_runs_on_validated_arguments(ctx):
    seen = []

    def weather(arguments: dict) -> dict:
        seen.append(arguments)
        return {"temp_c": 21, "city": arguments["city"]}

    reg = ToolRegistry([SchemaTool(WEATHER, handler=weather), SchemaTool(MCP_READ, handler=lambda a: "file text")])
    assert not reg.get("weather.get-current").external
    r = reg.call("weather.get-current", {"city": "Paris"}, ctx)
    assert r.ok and r.output == {"temp_c": 21, "city": "Paris"}
    assert seen == [{"city": "Paris", "unit": "c", "fields": ["temp"]}]
    assert reg.call("fs.read_file", {"path": "a.txt"}, ctx).output == {"result": "file text"}  # a non-dict is wrapped, as @tool does
    assert reg.call("weather.get-current", {"city": 1}, ctx).error_kind == "validation" and len(seen) == 1  # never called


def test_calling_an_external_tool_directly_says_who_runs_it(ctx):
    r = ToolRegistry([WEATHER]).call("weather.get-current", {"city": "Paris"}, ctx)
    assert not r.ok and r.error_kind == "exception" and "has no handler: its caller runs it" in r.error


@pytest.mark.parametrize("schema, message", [
    ("not a dict", "must be a JSON object"),
    ({"description": "no name"}, "not a tool schema"),
    ({"name": "has space"}, "must be 1-64 letters"),
    ({"name": "x" * 65}, "must be 1-64 letters"),
    ({"name": "-x"}, "must be 1-64 letters"),
    ({"name": "arr", "parameters": {"type": "array"}}, "must be an object schema"),
    ({"name": "pat", "parameters": {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}}, "cannot be used for validation"),
])
def test_broken_schemas_are_user_errors(schema, message):
    with pytest.raises(ToolSchemaError, match=message) as err:
        SchemaTool(schema)
    assert isinstance(err.value, UserError) and isinstance(err.value, TypeError)  # next to the usual base


def test_duplicate_names_are_user_errors():
    reg = ToolRegistry([WEATHER])
    with pytest.raises(ValueError, match="already registered") as err:
        reg.register(dict(WEATHER))
    assert isinstance(err.value, UserError)


def test_schema_files_hold_a_list_or_an_mcp_tools_list(tmp_path):
    listed = tmp_path / "tools.json"
    listed.write_text(json.dumps([WEATHER, MCP_READ]))
    assert [t.name for t in load_tool_schemas(listed)] == ["weather.get-current", "fs.read_file"]
    mcp = tmp_path / "mcp.json"
    mcp.write_text(json.dumps({"tools": [MCP_READ]}))
    assert [t.name for t in load_tool_schemas(mcp)] == ["fs.read_file"]
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(ToolSchemaError, match="is not JSON"):
        load_tool_schemas(bad)
    bad.write_text(json.dumps([WEATHER, {"name": "a b"}]))
    with pytest.raises(ToolSchemaError, match=r"bad.json: tool 1: tool name 'a b'"):
        load_tool_schemas(bad)
    with pytest.raises(FileNotFoundError, match="no tool schemas file"):
        load_tool_schemas(tmp_path / "missing.json")


def test_a_schema_tool_with_an_image_argument_checks_the_artifact(tmp_path):
    from mmagent.tools.base import ToolContext
    from mmagent.tools.registry import ToolRegistry
    from mmagent.tools.schema_tool import SchemaTool
    from PIL import Image

    from mmagent.media.artifacts import ArtifactStore

    schema = {"type": "function", "function": {"name": "img.size", "parameters": {"type": "object", "properties": {
        "picture": {"type": "string", "pattern": "^image_[1-9][0-9]*$", "x-artifact": "image"}}, "required": ["picture"]}}}
    reg = ToolRegistry()
    reg.register(SchemaTool(schema, handler=lambda args: {"got": args["picture"]}))
    ctx = ToolContext(artifacts=ArtifactStore(tmp_path / "a", session="s"))
    ctx.artifacts.add_image(Image.new("RGB", (4, 4)))
    ok = reg.call("img.size", {"picture": "image_1"}, ctx)
    assert ok.ok and ok.output == {"got": "image_1"}, ok.error
    missing = reg.call("img.size", {"picture": "image_9"}, ctx)
    assert not missing.ok and missing.error_kind == "validation"
