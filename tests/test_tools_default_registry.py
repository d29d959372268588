"""The built-in set: public names, schemas for all, nothing loaded until a call."""

from __future__ import annotations

import json
import subprocess
import sys

from mmagent.tools.base import FunctionTool, Tool
from mmagent.tools.builtins import BUILTIN_NAMES
from mmagent.tools.registry import default_registry


def test_public_names_present_and_unloaded():
    reg = default_registry()
    missing = set(BUILTIN_NAMES) - set(reg.names())
    assert missing <= {"remember", "search_memory"}, missing  # the memory tools come from the memory area
    assert "speak" not in reg.names()
    for name in reg.names():
        t = reg.get(name)
        assert isinstance(t, Tool)
        if not isinstance(t, FunctionTool):  # the class-form tools hold models: none loaded yet
            assert not t._loaded, name


def test_building_the_registry_imports_no_model_library():
    code = (
        "import sys; from mmagent.tools import default_registry; default_registry();"
        "print([m for m in ('torch', 'transformers', 'diffusers', 'cv2', 'onnxruntime', 'pocketsphinx') if m in sys.modules])"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_every_schema_is_openai_style_and_json():
    for s in default_registry().schemas():
        fn = s["function"]
        assert s["type"] == "function" and fn["description"] and fn["parameters"]["type"] == "object"
        json.dumps(s)
        props = fn["parameters"]["properties"]
        assert all("description" in p or "$ref" in p for p in props.values()), fn["name"]


def test_include_subset():
    assert default_registry(include=["read_text", "crop_image"]).names() == ["crop_image", "read_text"]
