"""remember / search_memory through the tool registry (the path the agent uses)."""

from __future__ import annotations

import pytest
from memory_fakes import FakeEmbedder
from mmagent.memory.store import MemoryStore
from mmagent.tools.base import ToolContext
from mmagent.tools.memory_tools import remember, search_memory
from mmagent.tools.registry import ToolRegistry
from PIL import Image

from mmagent.media.artifacts import ArtifactStore


@pytest.fixture()
def ctx(tmp_path):
    c = ToolContext(artifacts=ArtifactStore(tmp_path / "art", session="s1"), memory=MemoryStore(tmp_path / "mem", FakeEmbedder()), session="s1")
    yield c
    c.memory.close()


@pytest.fixture()
def reg():
    return ToolRegistry([remember, search_memory])


def test_schemas_are_public_names_with_artifact_ids(reg):
    names = [s["function"]["name"] for s in reg.schemas()]
    assert names == ["remember", "search_memory"]
    params = reg.get("search_memory").schema()["function"]["parameters"]["properties"]
    assert params["k"]["maximum"] == 50 and "image" in params


def test_remember_then_search_text_and_image(ctx, reg):
    r = reg.call("remember", {"text": "the wifi password is tulip42", "tags": ["home"]}, ctx)
    assert r.ok and r.output["modality"] == "text"
    img = ctx.artifacts.add_image(Image.new("RGB", (16, 16), (0, 0, 255)))
    r2 = reg.call("remember", {"image": img.id, "text": "my blue car"}, ctx)
    assert r2.ok and r2.output["modality"] == "image"
    hits = reg.call("search_memory", {"query": "wifi password"}, ctx).output["hits"]
    assert hits[0]["text"] == "the wifi password is tulip42" and hits[0]["tags"] == ["home"] and hits[0]["session"] == "s1"
    by_image = reg.call("search_memory", {"image": img.id, "modality": "image", "k": 1}, ctx).output["hits"]
    assert [h["artifact_id"] for h in by_image] == [img.id]
    assert reg.call("search_memory", {"query": "wifi", "tags": ["work"]}, ctx).output["hits"] == []


def test_bad_calls_come_back_as_errors_the_model_can_fix(ctx, reg, tmp_path):
    r = reg.call("remember", {}, ctx)
    assert not r.ok and "nothing to remember" in r.error
    r = reg.call("search_memory", {"query": "x", "k": 0}, ctx)
    assert not r.ok and r.error_kind == "validation"
    r = reg.call("search_memory", {"query": "x", "image": "image_9"}, ctx)
    assert not r.ok and r.error_kind == "validation"  # unknown artifact, caught before the call
    r = reg.call("search_memory", {}, ctx)
    assert not r.ok and "exactly one of query" in r.error
    no_memory = ToolContext(artifacts=ArtifactStore(tmp_path / "a2"), memory=None)
    r = reg.call("remember", {"text": "x"}, no_memory)
    assert not r.ok and "no memory store is attached" in r.error
