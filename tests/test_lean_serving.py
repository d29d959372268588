"""Serving from the decoder cache: the second process that loads a saved MM-LLM gets the same tokens
without building the HF model (mmagent.model.decoder_cache, lean_backbone, lean_tokenizer)."""

from __future__ import annotations

import threading

import pytest
import torch

from tests.tiny_mmllm import TinyEncoder, color_image, tiny_llm, tiny_tokenizer

TOOLS = [{"type": "function", "function": {"name": "read_text", "description": "Read the text in an image.",
                                           "parameters": {"type": "object", "properties": {"image": {"type": "string"}},
                                                          "required": ["image"]}}}]


def _join_cache_writers() -> None:
    for t in threading.enumerate():
        if t.name == "mmllm-decoder-cache":
            t.join()


@pytest.fixture
def saved(tmp_path, monkeypatch):
    """An MM-LLM folder over a tiny Llama saved as a local HF folder, with a trained-looking adapter."""
    from mmagent.config import get_settings
    from mmagent.model import encoders
    from mmagent.model.mmllm import MMLLM, MMLLMConfig

    monkeypatch.setenv("MMAGENT_HOME", str(tmp_path / "home"))  # a cache of its own
    monkeypatch.setenv("MMAGENT_DECODER_CACHE", "1")  # tests/conftest.py turns it off for the others
    get_settings.cache_clear()
    monkeypatch.setattr(encoders, "load_encoder", lambda spec, settings=None: TinyEncoder())
    tok = tiny_tokenizer()
    llm = tiny_llm(len(tok) + 1)
    base = tmp_path / "base"
    llm.save_pretrained(base)
    tok.save_pretrained(base)
    config = MMLLMConfig(llm=str(base), encoder="tiny", decode_dtype="int8", prefill_dtype="float32")
    m = MMLLM(config, llm, tok, TinyEncoder()).eval()
    m.add_adapter("tools")
    with torch.no_grad():
        for name, p in m.llm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # a non-zero delta, so a decoder without the merge would differ
    m.set_adapter("tools")
    return m.save_pretrained(tmp_path / "mm")


def _answer(model, artifacts, constrained: bool = True) -> tuple[list[int], str]:
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.protocol.chat import Message

    chat = ComposedChatModel(model, "tiny")
    msgs = [Message(role="user", content="What is in this picture?", images=["image_1"])]
    out = chat.chat(msgs, TOOLS, artifacts=artifacts, max_new_tokens=12, constrained=constrained)
    return out, model.decoder().reused


def test_second_load_serves_from_the_cache_with_the_same_tokens(saved):
    from mmagent.config import get_settings
    from mmagent.model import decoder_cache
    from mmagent.model.mmllm import MMLLM

    art = {"image_1": color_image((200, 30, 30))}
    first = MMLLM.from_pretrained(saved)
    assert not first.is_lean
    ref, _ = _answer(first, art)
    _join_cache_writers()
    files = [f for f in decoder_cache.cache_dir(get_settings()).glob("*.safetensors") if ".prefix." not in f.name]
    assert len(files) == 1

    lean = MMLLM.from_pretrained(saved)
    assert lean.is_lean and "llm" not in lean._modules
    assert lean.adapters == ["tools"] and lean.active_adapter == "tools"
    got, _ = _answer(lean, art)
    assert got.text == ref.text and got.tool_calls == ref.tool_calls
    assert lean.is_lean  # serving never needed the HF model

    # Anything that needs the real model builds it, from the same folder, with the same answer.
    assert lean.llm is not None and not lean.is_lean
    assert lean.active_adapter == "tools"
    again, _ = _answer(lean, art)
    assert again.text == ref.text


def test_a_changed_adapter_or_a_damaged_file_is_not_served(saved):
    from safetensors.torch import load_file, save_file

    from mmagent.config import get_settings
    from mmagent.model import decoder_cache
    from mmagent.model.mmllm import MMLLM

    MMLLM.from_pretrained(saved).decoder()
    _join_cache_writers()
    (entry,) = [f for f in decoder_cache.cache_dir(get_settings()).glob("*.safetensors") if ".prefix." not in f.name]

    entry.write_bytes(entry.read_bytes()[:1000])  # a torn file (as a full disk would leave)
    m = MMLLM.from_pretrained(saved)
    assert not m.is_lean and not entry.exists()  # dropped, and rebuilt by this load's decoder
    m.decoder()
    _join_cache_writers()
    assert MMLLM.from_pretrained(saved).is_lean

    weights = saved / "adapters" / "tools" / "adapter_model.safetensors"
    state = load_file(str(weights))
    save_file({k: v + 0.01 for k, v in state.items()}, str(weights))  # a promoted / retrained adapter
    assert not MMLLM.from_pretrained(saved).is_lean


def test_the_cache_can_be_turned_off(saved, monkeypatch):
    from mmagent.config import get_settings
    from mmagent.model.mmllm import MMLLM

    MMLLM.from_pretrained(saved).decoder()
    _join_cache_writers()
    monkeypatch.setenv("MMAGENT_DECODER_CACHE", "0")
    get_settings.cache_clear()
    assert not MMLLM.from_pretrained(saved).is_lean


def test_lean_tokenizer_matches_the_hf_tokenizer(saved):
    from transformers import AutoTokenizer

    from mmagent.model.lean_tokenizer import LeanTokenizer

    base = saved.parent / "base"
    hf, lean = AutoTokenizer.from_pretrained(base), LeanTokenizer.load(base)
    assert lean is not None
    msgs = [{"role": "system", "content": "Tools: read_text"}, {"role": "user", "content": "What is in this picture? <image>"},
            {"role": "assistant", "content": '<tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>'}]
    for gen in (True, False):
        assert lean.apply_chat_template(msgs, add_generation_prompt=gen) == hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    text = hf.apply_chat_template(msgs, tokenize=False)
    a, b = lean(text, return_offsets_mapping=True), hf(text, add_special_tokens=False, return_offsets_mapping=True)
    assert a["input_ids"] == list(b["input_ids"]) and [tuple(o) for o in a["offset_mapping"]] == [tuple(o) for o in b["offset_mapping"]]
    ids = a["input_ids"]
    assert lean.decode(ids, skip_special_tokens=True) == hf.decode(ids, skip_special_tokens=True)
    assert (lean.eos_token_id, lean.pad_token_id, len(lean)) == (hf.eos_token_id, hf.pad_token_id, len(hf))
    hf.add_special_tokens({"additional_special_tokens": ["<image>"]}, replace_extra_special_tokens=False)
    lean.add_special_tokens({"additional_special_tokens": ["<image>"]})
    assert lean.convert_tokens_to_ids("<image>") == hf.convert_tokens_to_ids("<image>")
    text = "<|im_start|>user\n<image><image>\nWhat is in this picture?<|im_end|>\n"
    assert lean(text)["input_ids"] == list(hf(text, add_special_tokens=False)["input_ids"])  # the placeholder is one token in both


def _join_prefix_writers() -> None:
    for t in threading.enumerate():
        if t.name == "mmllm-prefix-cache":
            t.join()


def test_the_tool_prompt_kv_is_reused_by_the_next_process(saved):
    """A lean load after one answered prompt starts with that prompt's KV: the next prefill reuses
    the shared system prompt and tool signatures, and the tokens are those of a cold prefill."""
    from mmagent.model.mmllm import MMLLM

    art = {"image_1": color_image((200, 30, 30))}
    MMLLM.from_pretrained(saved).decoder()
    _join_cache_writers()
    lean = MMLLM.from_pretrained(saved)
    assert lean.is_lean and lean.decoder().length == 0  # no prefix saved yet
    cold, reused = _answer(lean, art)
    assert reused == 0
    _join_prefix_writers()

    warm = MMLLM.from_pretrained(saved)
    assert warm.decoder().length > 0  # the saved prompt
    got, reused = _answer(warm, art)
    assert reused > 0 and got.text == cold.text and got.tool_calls == cold.tool_calls


def test_a_changed_decoder_setting_is_neither_served_nor_cached_under_the_old_key(saved):
    """bench/core.py switches `decode_dtype` on a loaded model: that decoder must not be saved under the
    key of the config as loaded, and a lean model must build the path asked for."""
    from mmagent.config import get_settings
    from mmagent.model import decoder_cache
    from mmagent.model.mmllm import MMLLM

    m = MMLLM.from_pretrained(saved)
    m.config.decode_dtype = "float32"  # another path than the folder's int8
    assert not m.decoder().quantize
    _join_cache_writers()
    assert not [f for f in decoder_cache.cache_dir(get_settings()).glob("*.safetensors") if ".prefix." not in f.name]

    MMLLM.from_pretrained(saved).decoder()  # as loaded: cached
    _join_cache_writers()
    lean = MMLLM.from_pretrained(saved)
    assert lean.is_lean and lean.decoder().quantize
    lean.config.decode_dtype = "float32"
    assert not lean.decoder().quantize and not lean.is_lean
