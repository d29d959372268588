"""Adapter routing (mmagent/model/adapter_routing.py): a reply offered a tool outside the tuned ones is
served by the folder's open-world adapter (or the version the learning loop promoted for that slot), every
other reply by the adapter the session serves; the decoder cache holds both adapters, so routed replies stay lean."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.test_lean_serving import TOOLS, _adapter_like, _join_cache_writers, saved  # noqa: F401  (saved: the fixture)
from tests.tiny_mmllm import color_image

WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "Weather forecast for a city.",
                                             "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                            "required": ["city"]}}}]
ROUTING = {"tuned_tools": ["read_text"], "open_world": "open-world"}


def test_the_rule_picks_open_world_for_any_untuned_tool():
    from mmagent.model.adapter_routing import AdapterRouting

    r = AdapterRouting(**ROUTING)
    assert r.adapter_for(TOOLS, "tools") == "tools"
    assert r.adapter_for([*TOOLS, *WEATHER], "tools") == "open-world"
    assert r.adapter_for(WEATHER, None) == "open-world"
    mcp = [{"name": "get_weather", "inputSchema": {"type": "object", "properties": {}}}]
    assert r.adapter_for(mcp, "tools") == "open-world"
    assert r.adapter_for(None, "tools") == "tools" and r.adapter_for([], "v1") == "v1"


def test_a_config_cannot_route_to_an_adapter_it_lacks():
    from mmagent.model.mmllm import MMLLMConfig

    with pytest.raises(ValueError, match="routing names adapter 'open-world'"):
        MMLLMConfig(adapters=["tools"], active_adapter="tools", routing=ROUTING)
    assert MMLLMConfig(adapters=["open-world", "tools"], routing=ROUTING).routing.open_world == "open-world"


@pytest.fixture
def routed(saved):  # noqa: F811
    """`saved` plus an `open-world` adapter (other LoRA-B weights) and the routing that serves it."""
    _adapter_like(saved, saved / "adapters" / "open-world", 0.08)
    cfg = json.loads((saved / "mmllm_config.json").read_text())
    cfg.update(adapters=["open-world", "tools"], routing=ROUTING)
    (saved / "mmllm_config.json").write_text(json.dumps(cfg))
    return saved


def _reply(chat, tools):
    from mmagent.protocol.chat import Message

    msgs = [Message(role="user", content="What is in this picture?", images=["image_1"])]
    return chat.chat(msgs, tools, artifacts={"image_1": color_image((200, 30, 30))}, max_new_tokens=10)


def _tokens(folder, adapter, tools) -> str:
    """The reply with `adapter` made active by hand and no routing: the reference."""
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.model.mmllm import MMLLM

    m = MMLLM.from_pretrained(folder)
    m.config.routing = None
    m.set_adapter(adapter)
    return _reply(ComposedChatModel(m, "tiny"), tools).text


def test_replies_are_served_by_the_adapter_their_tools_route_to(routed):
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.model.mmllm import MMLLM

    ref = {a: _tokens(routed, a, TOOLS) for a in ("tools", "open-world")}
    ref_ow = _tokens(routed, "open-world", WEATHER)
    assert ref["tools"] != ref["open-world"]  # the two adapters answer differently: the test can tell them apart
    chat = ComposedChatModel(MMLLM.from_pretrained(routed), "tiny")
    got = _reply(chat, TOOLS)
    assert (got.adapter, got.text) == ("tools", ref["tools"])
    got = _reply(chat, WEATHER)
    assert (got.adapter, got.text) == ("open-world", ref_ow)
    got = _reply(chat, TOOLS)  # back to the folder's own adapter
    assert (got.adapter, got.text) == ("tools", ref["tools"])


def test_a_version_promoted_for_the_own_slot_serves_only_the_replies_it_was_tuned_for(routed):
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.model.mmllm import MMLLM

    v1 = _adapter_like(routed, routed.parent / "versions" / "v1" / "adapter", 0.03)
    m = MMLLM.from_pretrained(routed)
    m.load_adapter(v1, "v1")
    chat = ComposedChatModel(m, "tiny", adapter_hook=lambda model: "v1")
    chat.serve_session("s1")
    assert _reply(chat, TOOLS).adapter == "v1" and _reply(chat, WEATHER).adapter == "open-world"
    m.set_adapter("tools")  # by hand: that adapter serves every reply
    assert _reply(chat, WEATHER).adapter == "tools"


def test_each_slot_serves_its_own_promoted_version_from_its_registry(routed, tmp_path):
    """The learning loop's hook: the open-world slot's promoted version (`<adapters>/routes/open-world`)
    serves the user's tools, the own slot's the built-ins; a session keeps what it started with."""
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.continual.adapter_slots import slot_root
    from mmagent.continual.registry import AdapterRegistry
    from mmagent.continual.serving import PromotedAdapter
    from mmagent.model.mmllm import MMLLM

    root = tmp_path / "adapters"
    ow = AdapterRegistry(slot_root(root, "open-world"))
    ow.promote(ow.add(_adapter_like(routed, tmp_path / "ow1", -0.4)).version)
    ref = _tokens(routed, "open-world", WEATHER)
    hand = MMLLM.from_pretrained(routed)
    hand.config.routing = None
    hand.load_adapter(tmp_path / "ow1", "by-hand")
    hand.set_adapter("by-hand")
    ref_v1 = _reply(ComposedChatModel(hand, "tiny"), WEATHER).text
    assert ref_v1 != ref  # the version answers otherwise than the folder's own open-world adapter
    m = MMLLM.from_pretrained(routed)
    chat = ComposedChatModel(m, "tiny", adapter_hook=PromotedAdapter(AdapterRegistry(root)))
    assert chat.serve_session("s1") == "tools"  # nothing promoted for the own slot
    got = _reply(chat, WEATHER)
    assert (got.adapter, got.text) == ("open-world-v0001", ref_v1)
    assert _reply(chat, TOOLS).adapter == "tools"
    ow.promote(ow.add(_adapter_like(routed, tmp_path / "ow2", 0.07)).version)
    assert _reply(chat, WEATHER).adapter == "open-world-v0001"  # the running session keeps its version
    chat.serve_session("s2")
    assert _reply(chat, WEATHER).adapter == "open-world-v0002"
    chat.serve_session("s1")
    assert _reply(chat, WEATHER).adapter == "open-world-v0001"


def test_an_export_without_the_routed_adapter_drops_the_routing(routed, tmp_path):
    from mmagent.model.mmllm import MMLLM

    m = MMLLM.from_pretrained(routed)
    m.llm.delete_adapter("open-world")  # what a training export holds: the one adapter it trained
    out = MMLLM.read_config(m.save_pretrained(tmp_path / "export"))
    assert out.adapters == ["tools"] and out.routing is None
    kept = MMLLM.read_config(MMLLM.from_pretrained(routed).save_pretrained(tmp_path / "whole"))
    assert kept.routing is not None and kept.routing.open_world == "open-world"


def test_pull_caches_both_adapters_so_routed_replies_stay_lean(routed):
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.model.mmllm import MMLLM

    ref_ow = _tokens(routed, "open-world", WEATHER)
    assert MMLLM.from_pretrained(routed).cache_decoders()
    _join_cache_writers()
    m = MMLLM.from_pretrained(routed)  # the next process
    assert m.is_lean and m.active_adapter == "tools"
    chat = ComposedChatModel(m, "tiny")
    got = _reply(chat, WEATHER)
    assert (got.adapter, got.text) == ("open-world", ref_ow)
    assert _reply(chat, TOOLS).adapter == "tools"
    assert m.is_lean and "llm" not in m._modules  # both served from the cache, the HF model never built


def test_a_folder_whose_routed_adapter_is_missing_says_so(routed):
    from mmagent.model.mmllm import MMLLM

    shutil.rmtree(routed / "adapters" / "open-world")
    cfg = json.loads((routed / "mmllm_config.json").read_text())
    cfg["adapters"] = ["tools"]
    (routed / "mmllm_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="routing names adapter 'open-world'"):
        MMLLM.from_pretrained(routed)


def test_chat_routed_to_the_base_serves_replies_offered_no_tool_without_an_adapter(routed):
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.model.adapter_routing import AdapterRouting
    from mmagent.model.mmllm import MMLLM

    rule = AdapterRouting(**ROUTING, chat="base")
    assert rule.serves_base(None) and not rule.serves_base([]) and not rule.serves_base(TOOLS)  # []: none fits, the adapter declines
    assert not AdapterRouting(**ROUTING).serves_base(None)  # the default: the serving adapter answers chat too
    ref_base = _tokens(routed, None, None)
    cfg = json.loads((routed / "mmllm_config.json").read_text())
    cfg["routing"] = {**ROUTING, "chat": "base"}
    (routed / "mmllm_config.json").write_text(json.dumps(cfg))
    assert MMLLM.from_pretrained(routed).cache_decoders()
    _join_cache_writers()
    m = MMLLM.from_pretrained(routed)
    chat = ComposedChatModel(m, "tiny")
    got = _reply(chat, None)
    assert (got.adapter, got.text) == (None, ref_base)
    assert _reply(chat, TOOLS).adapter == "tools" and _reply(chat, WEATHER).adapter == "open-world"
    assert _reply(chat, []).adapter == "tools"
