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


# --- a promoted adapter (another adapter folder than the MM-LLM's own) served lean ----------------------


def _adapter_like(saved, dest, delta: float):
    """A copy of the folder's adapter with other LoRA-B weights: what `mmagent learn` promotes."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(saved / "adapters" / "tools", dest)
    weights = dest / "adapter_model.safetensors"
    state = load_file(str(weights))
    save_file({k: v + delta if "lora_B" in k else v for k, v in state.items()}, str(weights))
    return dest


def _greedy(model, artifacts) -> list[int]:
    from mmagent.model.generation import SamplingConfig
    from mmagent.protocol.chat import Message

    x = model.build_inputs([Message(role="user", content="What is in this picture?", images=["image_1"])], TOOLS,
                           artifacts=artifacts, add_generation_prompt=True)
    return model.generate(model.collate([x]), sampling=SamplingConfig(max_new_tokens=12)).tokens[0]


def _tensors(model) -> dict:
    return model.decoder().tensors()[0]


def _entries() -> list:
    from mmagent.config import get_settings
    from mmagent.model import decoder_cache

    return [f for f in decoder_cache.cache_dir(get_settings()).glob("*.safetensors") if ".prefix." not in f.name]


def test_a_promoted_adapter_is_cached_then_served_lean_with_the_same_tokens(saved):
    from mmagent.model.mmllm import MMLLM

    art = {"image_1": color_image((200, 30, 30))}
    promoted = _adapter_like(saved, saved.parent / "versions" / "v1" / "adapter", 0.05)
    MMLLM.from_pretrained(saved).decoder()  # the folder's own adapter: cached
    _join_cache_writers()
    own = MMLLM.from_pretrained(saved)
    assert own.is_lean
    own_tokens, own_weights = _greedy(own, art), _tensors(own)

    first = MMLLM.from_pretrained(saved)
    first.load_adapter(promoted, "v1")
    assert first.is_lean and first.adapters == ["tools", "v1"] and first.active_adapter == "tools"  # recorded only
    first.set_adapter("v1")  # not cached yet: the real model, with v1 loaded and active
    assert not first.is_lean and first.active_adapter == "v1" and first.adapters == ["tools", "v1"]
    ref, ref_weights = _greedy(first, art), _tensors(first)
    _join_cache_writers()
    assert len(_entries()) == 2  # the default's entry is kept beside the promoted one (decoder_cache.KEEP)

    second = MMLLM.from_pretrained(saved)  # the next process
    second.load_adapter(promoted, "v1")
    second.set_adapter("v1")
    assert second.is_lean and "llm" not in second._modules
    assert second.active_adapter == "v1" and second.adapters == ["tools", "v1"]
    got = _greedy(second, art)
    assert got == ref and len(got) > 0
    weights = _tensors(second)
    assert weights.keys() == ref_weights.keys() and all(torch.equal(weights[k], ref_weights[k]) for k in weights)
    assert any(not torch.equal(weights[k], own_weights[k]) for k in weights)  # v1's merge, not the default's
    assert second.is_lean

    second.set_adapter("tools")  # back to the folder's own adapter, still lean
    assert second.is_lean and second.active_adapter == "tools"
    assert _greedy(second, art) == own_tokens
    second.set_adapter("v1")
    assert second.is_lean and _greedy(second, art) == ref

    # Anything that needs the real model builds it with the adapter being served active.
    assert second.llm is not None and not second.is_lean
    assert second.active_adapter == "v1" and second.adapters == ["tools", "v1"]
    assert _greedy(second, art) == ref
    second.set_adapter("tools")
    assert _greedy(second, art) == own_tokens


def test_another_adapter_misses_the_promoted_entry_and_a_damaged_one_is_rebuilt(saved):
    from mmagent.model.mmllm import MMLLM

    art = {"image_1": color_image((30, 200, 30))}
    v1 = _adapter_like(saved, saved.parent / "versions" / "v1" / "adapter", 0.05)
    v2 = _adapter_like(saved, saved.parent / "versions" / "v2" / "adapter", -0.05)
    MMLLM.from_pretrained(saved).decoder()
    _join_cache_writers()
    before = set(_entries())
    m = MMLLM.from_pretrained(saved)
    m.load_adapter(v1, "v1")
    m.set_adapter("v1")
    ref = _greedy(m, art)
    _join_cache_writers()
    (v1_entry,) = set(_entries()) - before

    other = MMLLM.from_pretrained(saved)
    other.load_adapter(v2, "v1")  # the same name, other bytes: not v1's decoder
    other.set_adapter("v1")
    assert not other.is_lean

    renamed = MMLLM.from_pretrained(saved)
    renamed.load_adapter(v1, "v1-again")  # the same bytes under another name: v1's decoder
    renamed.set_adapter("v1-again")
    assert renamed.is_lean and renamed.active_adapter == "v1-again" and _greedy(renamed, art) == ref

    v1_entry.write_bytes(v1_entry.read_bytes()[:1000])  # torn
    torn = MMLLM.from_pretrained(saved)
    torn.load_adapter(v1, "v1")
    torn.set_adapter("v1")
    assert not torn.is_lean and not v1_entry.exists()  # dropped; this model's decoder rebuilds it
    assert _greedy(torn, art) == ref
    _join_cache_writers()
    again = MMLLM.from_pretrained(saved)
    again.load_adapter(v1, "v1")
    again.set_adapter("v1")
    assert again.is_lean and _greedy(again, art) == ref


def test_a_broken_promoted_adapter_fails_at_load_and_the_session_keeps_the_default(saved):
    from mmagent.model.mmllm import MMLLM

    MMLLM.from_pretrained(saved).decoder()
    _join_cache_writers()
    bad = _adapter_like(saved, saved.parent / "versions" / "v1" / "adapter", 0.05)
    weights = bad / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    m = MMLLM.from_pretrained(saved)
    with pytest.raises(Exception):  # noqa: B017, PT011 - safetensors' own error type
        m.load_adapter(bad, "v1")
    with pytest.raises(FileNotFoundError):
        m.load_adapter(saved.parent / "nowhere", "v2")
    assert m.is_lean and m.adapters == ["tools"] and m.active_adapter == "tools"


def test_a_promoted_version_serves_lean_through_the_session_hook(saved, tmp_path):
    """`mmagent run` after `mmagent learn` promoted a version: the first process builds the model and
    caches the version's decoder; the next one activates the version at the session's first turn
    without building the HF model, and answers the same."""
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.continual.registry import AdapterRegistry
    from mmagent.continual.serving import PromotedAdapter
    from mmagent.model.mmllm import MMLLM
    from mmagent.protocol.chat import Message

    reg = AdapterRegistry(tmp_path / "registry")
    version = reg.add(_adapter_like(saved, tmp_path / "candidate", 0.05)).version
    reg.promote(version)
    MMLLM.from_pretrained(saved).decoder()  # `mmagent models pull`: the default's decoder is cached
    _join_cache_writers()
    art = {"image_1": color_image((200, 30, 30))}
    msgs = [Message(role="user", content="What is in this picture?", images=["image_1"])]

    def one_shot():
        chat = ComposedChatModel.from_pretrained(saved, "tiny")
        chat.adapter_hook = PromotedAdapter(reg)
        assert chat.serve_session("s1") == version and chat.model.active_adapter == version
        out = chat.chat(msgs, TOOLS, artifacts=art, max_new_tokens=12)
        _join_cache_writers()
        return chat.model, out

    first, ref = one_shot()
    assert not first.is_lean
    second, got = one_shot()
    assert second.is_lean and "llm" not in second._modules
    assert got.text == ref.text and got.tool_calls == ref.tool_calls


def test_an_adapter_changed_after_loading_is_not_cached_under_its_folder(saved):
    """A training step on a loaded adapter (then `set_adapter` of it again): that decoder is not the
    folder's bytes, so it is not written under their key."""
    from mmagent.model.mmllm import MMLLM

    m = MMLLM.from_pretrained(saved)
    assert not m.is_lean
    with torch.no_grad():
        next(p for n, p in m.llm.named_parameters() if "lora_B" in n).add_(0.1)  # an optimizer step
    m.set_adapter(None)
    m.set_adapter("tools")
    m.decoder()
    _join_cache_writers()
    assert not _entries()


def test_an_adapter_switch_during_the_warm_up_build_caches_each_adapter_with_its_own_weights(saved, monkeypatch):
    """`mmagent models pull --all` loads the default (which starts building the active adapter's decoder in
    a warm-up thread) and switches adapters right away to cache each. The switch used to land mid-build:
    the `tools` entry was fused from the open-world adapter's weights and served so ever after."""
    import time

    from mmagent.config import get_settings
    from mmagent.model import decoder_cache, llama_decoder
    from mmagent.model.mmllm import MMLLM

    ref = _tensors(MMLLM.from_pretrained(saved))  # the folder's own adapter, built with nothing else going on
    _join_cache_writers()
    for f in decoder_cache.cache_dir(get_settings()).iterdir():
        f.unlink()
    other = _adapter_like(saved, saved.parent / "other", 0.2)

    real = llama_decoder.LlamaDecoder

    class SlowFuse(real):  # a fuse long enough for the switch to land inside it, as on a real model
        def __init__(self, *args, **kwargs):
            time.sleep(0.5)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(llama_decoder, "LlamaDecoder", SlowFuse)
    m = MMLLM.from_pretrained(saved)
    assert not m.is_lean
    m.load_adapter(other, "other")
    m.set_adapter("tools")  # both loaded, as the default folder's two adapters are
    warm = m.warm_decoder()
    time.sleep(0.1)  # the warm-up thread is fusing `tools` now
    m.set_adapter("other")
    warm.join()
    m.decoder()  # `other`'s own build
    _join_cache_writers()
    monkeypatch.setattr(llama_decoder, "LlamaDecoder", real)

    served = MMLLM.from_pretrained(saved)  # the next process: lean, from the `tools` entry
    assert served.is_lean, sorted(f.name for f in decoder_cache.cache_dir(get_settings()).iterdir())
    got = _tensors(served)
    assert got.keys() == ref.keys() and all(torch.equal(got[k], ref[k]) for k in ref)
