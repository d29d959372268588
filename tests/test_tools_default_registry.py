"""The built-in set: public names, schemas for all, nothing loaded until a call."""

from __future__ import annotations

import json

from mmagent.tools.base import Tool
from mmagent.tools.builtins import BUILTIN_NAMES
from mmagent.tools.registry import default_registry


def test_public_names_present_and_unloaded():
    reg = default_registry()
    missing = set(BUILTIN_NAMES) - set(reg.names())
    assert missing <= {"remember", "search_memory"}, missing  # the memory tools come from the memory area
    assert "speak" not in reg.names()
    for name in reg.names():
        t = reg.get(name)
        assert isinstance(t, Tool) and not t._loaded


def test_every_schema_is_openai_style_and_json():
    for s in default_registry().schemas():
        fn = s["function"]
        assert s["type"] == "function" and fn["description"] and fn["parameters"]["type"] == "object"
        json.dumps(s)
        props = fn["parameters"]["properties"]
        assert all("description" in p or "$ref" in p for p in props.values()), fn["name"]


def test_include_subset():
    assert default_registry(include=["read_text", "crop_image"]).names() == ["crop_image", "read_text"]
