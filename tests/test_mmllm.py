"""The composed MM-LLM on tiny random parts (2-layer Llama, hidden 64; a 16-token conv encoder):
the splice, labels, mixed batches, generation with and without KV cache, save/load, adapters,
bad input, and the composed chat backend."""

from __future__ import annotations

import pytest
import torch
from tiny_mmllm import color_image, tiny_mmllm

from mmagent.model.mmllm import (
    IGNORE,
    MMLLM,
    EmptyPromptError,
    ImageTokenMismatchError,
    MMLLMConfig,
    PromptTooLongError,
    UnsupportedMediaError,
)
from mmagent.model.projectors import ProjectorConfig
from mmagent.model.token_reduction import ReductionConfig
from mmagent.protocol.chat import Message

RED, BLUE, GREEN = color_image((255, 0, 0)), color_image((0, 0, 255)), color_image((0, 255, 0))
ART = {"image_1": RED, "image_2": BLUE, "image_3": GREEN}


@pytest.fixture(scope="module")
def model() -> MMLLM:
    return tiny_mmllm()


def _user(text: str, *images: str) -> Message:
    return Message(role="user", content=text, images=list(images))


def test_splice_puts_features_exactly_at_placeholders(model):
    x = model.build_inputs([_user("What is in this picture?", "image_1", "image_2")], artifacts=ART)
    ids = x.input_ids[None]
    slots = ids[0] == model.image_token_id
    assert int(slots.sum()) == 2 * model.tokens_per_image == 32
    with torch.no_grad():
        embeds = model.embed(ids, x.pixel_values)
        feats = model.encode_images(x.pixel_values)  # [2, 16, 64]
        plain = model.llm.get_input_embeddings()(ids)
    torch.testing.assert_close(embeds[0, slots], feats.flatten(0, 1))
    torch.testing.assert_close(embeds[0, ~slots], plain[0, ~slots])
    first = slots.nonzero().flatten()
    torch.testing.assert_close(embeds[0, first[:16]], feats[0])  # image_1's tokens come first


def test_labels_cover_only_assistant_turns(model):
    msgs = [_user("What is in this picture?", "image_1"), Message(role="assistant", content="A red square."),
            _user("And now?"), Message(role="assistant", content="The lazy dog.")]
    x = model.build_inputs(msgs, artifacts=ART)
    kept = [t for t, lab in zip(x.input_ids.tolist(), x.labels.tolist()) if lab != IGNORE]
    text = model.tokenizer.decode(kept)
    assert text == "A red square.<|im_end|>\nThe lazy dog.<|im_end|>\n"
    assert (x.labels[x.input_ids == model.image_token_id] == IGNORE).all()
    assert (x.labels[x.labels != IGNORE] == x.input_ids[x.labels != IGNORE]).all()


def test_tool_calls_and_tools_render_into_the_prompt(model):
    from mmagent.protocol.chat import ToolCall

    tools = [{"type": "function", "function": {"name": "read_text", "description": "Reads text.",
                                               "parameters": {"type": "object", "properties": {"image": {"type": "string"}}}}}]
    msgs = [_user("read it", "image_1"), Message(role="assistant", tool_calls=[ToolCall(name="read_text", arguments={"image": "image_1"})])]
    x = model.build_inputs(msgs, tools, artifacts=ART)
    assert "read_text(" in x.text and "[attached: image_1]" in x.text
    labeled = model.tokenizer.decode([t for t, lab in zip(x.input_ids.tolist(), x.labels.tolist()) if lab != IGNORE])
    assert labeled.startswith('<tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>')


def test_batch_mixing_zero_one_and_two_images_matches_single_runs(model):
    items = [model.build_inputs([_user("What is in this picture?"), Message(role="assistant", content="A fox.")], artifacts=ART),
             model.build_inputs([_user("What is in this picture?", "image_1")], artifacts=ART),
             model.build_inputs([_user("The quick brown fox", "image_2", "image_3")], artifacts=ART)]
    batch = model.collate(items)
    assert batch["pixel_values"].shape[0] == 3
    with torch.no_grad():
        out = model(**batch)
        logits = out.logits
        for row, x in enumerate(items):
            alone = model(x.input_ids[None], pixel_values=x.pixel_values).logits[0]
            torch.testing.assert_close(logits[row, : len(x.input_ids)], alone, atol=1e-4, rtol=1e-4)
    assert torch.isfinite(out.loss)


def test_training_loss_reaches_projector_only(model):
    x = model.build_inputs([_user("What is in this picture?", "image_1"), Message(role="assistant", content="A red square.")], artifacts=ART)
    batch = model.collate([x])
    model.projector.zero_grad()
    out = model(**batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None for p in model.projector.parameters())
    assert all(p.grad is None for p in model.llm.parameters())
    model.projector.zero_grad()


def test_generation_with_kv_cache_equals_without(model):
    from mmagent.model.generation import SamplingConfig

    x = model.build_inputs([_user("What is in this picture?", "image_1")], artifacts=ART, add_generation_prompt=True)
    batch = model.collate([x])
    s = SamplingConfig(max_new_tokens=12)
    cached = model.generate(batch, sampling=s)
    recomputed = model.generate(batch, sampling=s, use_cache=False)
    assert cached.tokens == recomputed.tokens and len(cached.tokens[0]) > 0


def test_left_padded_batch_generates_as_single_rows(model):
    from mmagent.model.generation import SamplingConfig

    items = [model.build_inputs([_user("What is in this picture?", "image_1")], artifacts=ART, add_generation_prompt=True),
             model.build_inputs([_user("fox")], add_generation_prompt=True)]
    s = SamplingConfig(max_new_tokens=6)
    both = model.generate(model.collate(items, padding_side="left"), sampling=s)
    for row, x in enumerate(items):
        assert both.tokens[row] == model.generate(model.collate([x]), sampling=s).tokens[0]
    with pytest.raises(ValueError, match="left padding"):
        model.generate(model.collate(items, padding_side="right"), sampling=s)


def test_sampling_is_reproducible_with_a_seed(model):
    from mmagent.model.generation import SamplingConfig

    batch = model.collate([model.build_inputs([_user("fox")], add_generation_prompt=True)])
    s = SamplingConfig(max_new_tokens=8, temperature=1.0, top_k=50, top_p=0.9, seed=3)
    assert model.generate(batch, sampling=s).tokens == model.generate(batch, sampling=s).tokens


def test_processor_hook_sees_every_step_and_can_force_tokens(model):
    from mmagent.model.generation import SamplingConfig

    target = model.tokenizer.encode("the lazy dog", add_special_tokens=False)
    seen = []

    def force(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = len(seen)
        seen.append(ids.shape[1])
        out = torch.full_like(scores, float("-inf"))
        out[:, target[step] if step < len(target) else model.eos_token_ids[0]] = 0
        return out

    batch = model.collate([model.build_inputs([_user("fox")], add_generation_prompt=True)])
    out = model.generate(batch, sampling=SamplingConfig(max_new_tokens=20), processors=[force])
    assert out.tokens[0] == target and out.finished == [True]
    assert seen == list(range(batch["input_ids"].shape[1], batch["input_ids"].shape[1] + len(target) + 1))


def test_adapters_switch_at_run_time_and_save_load_gives_identical_logits(model, tmp_path):
    from mmagent.model.lora import LoraSettings

    m = tiny_mmllm(MMLLMConfig(llm="tiny", encoder="tiny", projector=ProjectorConfig(kind="resampler", num_queries=4, heads=4)))
    x = m.collate([m.build_inputs([_user("What is in this picture?", "image_1")], artifacts=ART)])
    with torch.no_grad():
        base = m(**x).logits
    for name in ("tools", "chat"):
        m.add_adapter(name, LoraSettings(r=4, alpha=8, dropout=0.0))
        for n, p in m.llm.named_parameters():  # LoRA B starts at zero; make the adapters differ
            if "lora_B" in n and f".{name}." in n:
                torch.nn.init.normal_(p, std=0.5)
    with torch.no_grad():
        m.set_adapter("tools")
        tools_logits = m(**x).logits
        m.set_adapter("chat")
        chat_logits = m(**x).logits
        m.set_adapter(None)
        torch.testing.assert_close(m(**x).logits, base)
    assert not torch.allclose(tools_logits, chat_logits)
    m.set_adapter("tools")
    folder = m.save_pretrained(tmp_path / "saved")
    assert {p.name for p in folder.iterdir()} == {"mmllm_config.json", "projector.safetensors", "adapters"}
    fresh = tiny_mmllm(seed=0)
    loaded = MMLLM.from_pretrained(folder, llm=fresh.llm, tokenizer=fresh.tokenizer, encoder=fresh.encoder)
    assert loaded.adapters == ["chat", "tools"] and loaded.active_adapter == "tools"
    with torch.no_grad():
        torch.testing.assert_close(loaded(**x).logits, tools_logits)
        loaded.set_adapter("chat")
        torch.testing.assert_close(loaded(**x).logits, chat_logits)


def test_token_reduction_sets_tokens_per_image():
    m = tiny_mmllm(MMLLMConfig(llm="tiny", encoder="tiny", reduction=ReductionConfig(method="merge", budget=5)))
    x = m.build_inputs([_user("What is in this picture?", "image_1")], artifacts=ART)
    assert m.tokens_per_image == 5 and int((x.input_ids == m.image_token_id).sum()) == 5
    with torch.no_grad():
        assert torch.isfinite(m(x.input_ids[None], pixel_values=x.pixel_values).logits).all()


# --- bad input --------------------------------------------------------------------------------


def test_placeholder_count_mismatch_is_named(model):
    with pytest.raises(ImageTokenMismatchError, match="writes <image> 2 time"):
        model.build_inputs([_user("<image> and <image>", "image_1")], artifacts=ART)
    x = model.build_inputs([_user("What is in this picture?", "image_1")], artifacts=ART)
    with pytest.raises(ImageTokenMismatchError, match="16 image placeholder tokens but 2 image"):
        model.embed(x.input_ids[None], torch.cat([x.pixel_values, x.pixel_values]))
    with pytest.raises(ImageTokenMismatchError, match="no images were given"):
        model.embed(x.input_ids[None])


def test_empty_prompt(model):
    with pytest.raises(EmptyPromptError, match="empty"):
        model.build_inputs([])
    with pytest.raises(EmptyPromptError, match="empty"):
        model.build_inputs([Message(role="user", content="  ")])


def test_prompt_over_context_length(model):
    with pytest.raises(PromptTooLongError, match=r"reads at most 512"):
        model.build_inputs([_user("fox " * 400)])
    with pytest.raises(PromptTooLongError, match=r"\+250 to generate"):
        model.build_inputs([_user("fox " * 150)], reserve_tokens=250)


def test_unsupported_corrupt_and_oversized_media(model):
    with pytest.raises(UnsupportedMediaError, match="not an image"):
        model.build_inputs([_user("hi", "image_1")], artifacts={"image_1": [1, 2, 3]})
    with pytest.raises(UnsupportedMediaError, match="image_1 is a bytes, not an image; pass a PIL image"):  # the model decodes nothing
        model.build_inputs([_user("hi", "image_1")], artifacts={"image_1": b"\x89PNG\r\n\x1a\n" + b"\0" * 40})
    with pytest.raises(KeyError, match="unknown image 'image_9'"):
        model.build_inputs([_user("hi", "image_9")], artifacts=ART)
    with pytest.raises(ValueError, match="no artifacts were passed"):
        model.build_inputs([_user("hi", "image_1")])
    small = tiny_mmllm(MMLLMConfig(llm="tiny", encoder="tiny", max_image_pixels=1000))
    with pytest.raises(ValueError, match="40x40 = 1,600 pixels, over the limit of 1,000"):
        small.build_inputs([_user("hi", "image_1")], artifacts=ART)


# --- the composed chat backend ----------------------------------------------------------------


def test_composed_chat_streams_and_uses_the_artifact_store(model, tmp_path):
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.media.artifacts import ArtifactError, ArtifactStore
    from mmagent.protocol.chat import ChatModel, ChatResult

    store = ArtifactStore(tmp_path / "art", "s")
    art = store.add_image(RED)
    chat = ComposedChatModel(model, name="tiny")
    assert isinstance(chat, ChatModel)
    pieces: list[str] = []
    res = chat.chat([_user("What is in this picture?", art.id)], artifacts=store, max_new_tokens=10, on_token=pieces.append)
    assert isinstance(res, ChatResult) and res.model == "tiny" and res.completion_tokens > 0
    assert "".join(pieces) == res.text
    audio = store.add_audio(_wav())
    with pytest.raises(UnsupportedMediaError, match=r"audio_1 is audio \(audio/wav\); this model takes images only"):
        chat.chat([_user("hi", audio.id)], artifacts=store, max_new_tokens=2)
    with pytest.raises(ArtifactError, match="unknown artifact id 'image_9' in session 's'; known ids: audio_1, image_1"):
        chat.chat([_user("hi", "image_9")], artifacts=store, max_new_tokens=2)
    blob = store.root / "blobs" / art.sha256[:2] / art.sha256
    blob.write_bytes(blob.read_bytes()[:60])  # corrupted on disk
    with pytest.raises(ValueError, match="could not be decoded"):  # the store's decoded-image cache checks the blob
        chat.chat([_user("hi", art.id)], artifacts=store, max_new_tokens=2)



def test_the_model_takes_decoded_images_and_the_backend_resolves_ids(model, tmp_path, monkeypatch):
    """MMLLM.build_inputs takes id -> PIL image; the composed backend decodes each id once per call from its store."""
    from mmagent.backends.composed import ComposedChatModel, message_images
    from mmagent.media.artifacts import ArtifactStore

    store = ArtifactStore(tmp_path / "art", "s")
    art = store.add_image(RED)
    with pytest.raises(TypeError, match="the model takes a mapping id -> PIL image"):
        model.build_inputs([_user("hi", art.id)], artifacts=store)
    loads: list[str] = []
    real = ArtifactStore.load_image
    monkeypatch.setattr(ArtifactStore, "load_image", lambda self, i: loads.append(i) or real(self, i))
    msgs = [_user("What is in this picture?", art.id), Message(role="assistant", content="A red square."), _user("And now?", art.id)]
    images = message_images(msgs, store)
    assert loads == [art.id] and list(images) == [art.id] and images[art.id].size == RED.size
    assert message_images(msgs, ART) is ART and message_images(msgs, None) is None
    expected = model.build_inputs(msgs, artifacts={art.id: RED}, add_generation_prompt=True)
    got = model.build_inputs(msgs, artifacts=images, add_generation_prompt=True)
    assert torch.equal(got.input_ids, expected.input_ids) and torch.equal(got.pixel_values, expected.pixel_values)
    loads.clear()
    ComposedChatModel(model, name="tiny").chat(msgs, artifacts=store, max_new_tokens=2)
    assert loads == [art.id]

def test_composed_chat_parses_tool_calls(model):
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.model.generation import SamplingConfig

    call = '<tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>'
    target = model.tokenizer.encode(call, add_special_tokens=False) + [model.eos_token_ids[0]]

    class Scripted(ComposedChatModel):  # forces the reply through the processor hook
        def chat(self, *args, **kwargs):
            step = iter(target)
            orig = self.model.generate

            def gen(batch, sampling=None, processors=(), on_step=None):
                def force(ids, scores):
                    out = torch.full_like(scores, float("-inf"))
                    out[:, next(step)] = 0
                    return out
                return orig(batch, sampling=sampling, processors=[force], on_step=on_step)

            self.model.generate = gen
            try:
                return super().chat(*args, **kwargs)
            finally:
                del self.model.generate

    res = Scripted(model, sampling=SamplingConfig()).chat([_user("read it", "image_1")], artifacts=ART, max_new_tokens=60)
    assert [c.name for c in res.tool_calls] == ["read_text"] and res.tool_calls[0].arguments == {"image": "image_1"}
    assert res.parse_errors == []


def test_load_chat_model_rejects_what_is_not_a_chat_model():
    from mmagent.backends import load_chat_model

    with pytest.raises(ValueError, match="text-embedder model, not a chat model"):
        load_chat_model("minilm-l6")
    with pytest.raises(ValueError, match="cannot load chat model 'nonsense'"):
        load_chat_model("nonsense")


def _wav() -> bytes:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)
    return buf.getvalue()


def test_fast_llama_decoder_matches_transformers_forward(model):
    from mmagent.model import llama_decoder
    from mmagent.model.generation import HFDecoder, SamplingConfig, generate

    assert llama_decoder.supports(model.llm)
    items = [model.build_inputs([_user("What is in this picture?", "image_1")], artifacts=ART, add_generation_prompt=True),
             model.build_inputs([_user("fox")], add_generation_prompt=True)]
    batch = model.collate(items, padding_side="left")
    with torch.no_grad():
        embeds = model.embed(batch["input_ids"], batch["pixel_values"])
    fast, ref = llama_decoder.LlamaDecoder(model.llm), HFDecoder(model.llm)
    torch.testing.assert_close(fast.prefill(embeds, batch["attention_mask"], 4), ref.prefill(embeds, batch["attention_mask"]),
                               atol=1e-4, rtol=1e-4)
    tok = torch.tensor([5, 7])
    torch.testing.assert_close(fast.step(tok), ref.step(tok), atol=1e-4, rtol=1e-4)
    s = SamplingConfig(max_new_tokens=10)
    args = (embeds, batch["attention_mask"], batch["input_ids"])
    assert generate(fast, *args, sampling=s).tokens == generate(HFDecoder(model.llm), *args, sampling=s).tokens


def test_fast_decoder_merges_the_active_adapter_and_rebuilds_on_change():
    from mmagent.model.generation import HFDecoder, SamplingConfig, generate
    from mmagent.model.lora import LoraSettings

    m = tiny_mmllm()
    m.add_adapter("a", LoraSettings(r=4, alpha=8, dropout=0.0))
    with torch.no_grad():
        for n, p in m.llm.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.5)  # in place: bumps the tensor version the decoder cache watches
    batch = m.collate([m.build_inputs([_user("fox")], add_generation_prompt=True)])
    s = SamplingConfig(max_new_tokens=8)
    first = m.decoder()
    assert type(first).__name__ == "LlamaDecoder" and m.decoder() is first
    with torch.no_grad():
        embeds = m.embed(batch["input_ids"])
    ref = generate(HFDecoder(m.llm), embeds, batch["attention_mask"], batch["input_ids"], sampling=s).tokens
    assert m.generate(batch, sampling=s).tokens == ref
    m.set_adapter(None)
    assert m.decoder() is not first
    base = generate(HFDecoder(m.llm), embeds, batch["attention_mask"], batch["input_ids"], sampling=s).tokens
    assert m.generate(batch, sampling=s).tokens == base


def test_active_adapter_reports_none_when_disabled():
    from mmagent.model.lora import LoraSettings

    m = tiny_mmllm()
    assert m.active_adapter is None
    m.add_adapter("a", LoraSettings(r=2))
    assert m.active_adapter == "a"
    m.set_adapter(None)
    assert m.active_adapter is None
    with pytest.raises(KeyError, match="no adapter named 'b'; loaded adapters: a"):
        m.set_adapter("b")


def test_int8_decode_stays_close_to_float(model):
    from mmagent.model import llama_decoder
    if not llama_decoder.int8_kernel_available():
        pytest.skip("no fbgemm int8 kernel in this torch build")
    batch = model.collate([model.build_inputs([_user("What is in this picture?", "image_1")], artifacts=ART,
                                              add_generation_prompt=True)])
    with torch.no_grad():
        embeds = model.embed(batch["input_ids"], batch["pixel_values"])
    exact, q8 = llama_decoder.LlamaDecoder(model.llm), llama_decoder.LlamaDecoder(model.llm, quantize=True)
    ref, got = exact.prefill(embeds, batch["attention_mask"], 4), q8.prefill(embeds, batch["attention_mask"], 4)
    assert torch.nn.functional.cosine_similarity(ref, got).item() > 0.99  # bf16 prefill
    tok = ref.argmax(-1)
    ref, got = exact.step(tok), q8.step(tok)
    assert torch.nn.functional.cosine_similarity(ref, got).item() > 0.99  # int8 step
    assert q8.k.dtype == torch.float32 and q8.layers[0].qkv.packed is not None


def test_constrained_decoding_plugs_into_the_decode_loop(model):
    from mmagent.model.generation import SamplingConfig
    from mmagent.protocol.constrained import tool_call_processor
    from mmagent.protocol.toolcall import parse_tool_calls

    tools = [{"type": "function", "function": {"name": "read_text", "description": "Reads text.", "parameters": {
        "type": "object", "properties": {"image": {"type": "string"}}, "required": ["image"]}}}]
    batch = model.collate([model.build_inputs([_user("read it", "image_1")], tools, artifacts=ART, add_generation_prompt=True)])
    proc = tool_call_processor(model.tokenizer, tools, mode="required", eos_token_ids=model.eos_token_ids, max_new_tokens=120)
    out = model.generate(batch, sampling=SamplingConfig(max_new_tokens=120), processors=[proc])
    calls, errors, _ = parse_tool_calls(model.tokenizer.decode(out.tokens[0], skip_special_tokens=True))
    assert errors == [] and [c.name for c in calls] == ["read_text"] and isinstance(calls[0].arguments["image"], str)


def test_adapter_saves_when_image_token_grew_a_tied_vocab(tmp_path):
    """Adding <image> resizes tied embeddings; saving an adapter must not drag them along."""
    from tiny_mmllm import TinyEncoder, tiny_llm, tiny_tokenizer

    from mmagent.model import lora
    from mmagent.model.mmllm import MMLLM, MMLLMConfig

    tok = tiny_tokenizer()
    m = MMLLM(MMLLMConfig(llm="tiny", encoder="tiny"), tiny_llm(len(tok)), tok, TinyEncoder()).eval()  # no room: resized
    assert m.llm.get_input_embeddings().weight.shape[0] > len(tok) - 1
    lora.add_adapter(m.llm, "a", lora.LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in m.llm.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.5)
    folder = lora.save_adapter(m.llm, "a", tmp_path / "a")
    lora.load_adapter(m.llm, folder, "b")
    state = m.llm.state_dict()
    loras = [k for k in state if ".lora_" in k and k.endswith(".a.weight")]
    assert len(loras) == 8  # A and B of q and v in 2 layers
    for k in loras:
        torch.testing.assert_close(state[k[: -len(".a.weight")] + ".b.weight"], state[k])

    # An adapter file with weights for modules this model lacks (saved for another base) is refused
    # by name, not half-loaded with a transformers report nobody reads.
    from safetensors.torch import load_file, save_file

    extra = load_file(str(folder / "adapter_model.safetensors"))
    extra |= {k.replace("layers.1.", "layers.7."): v.clone() for k, v in extra.items() if "layers.1." in k}
    save_file(extra, str(folder / "adapter_model.safetensors"))
    with pytest.raises(ValueError, match="12 LoRA tensors in the file but 8 loaded"):
        lora.load_adapter(m.llm, folder, "c")


def test_prefix_reuse_gives_the_same_greedy_tokens(model):
    """A conversation continued step by step (as the agent does): the reusing decoder prefills
    only what is new after the longest common prefix, and decodes exactly what a fresh one does."""
    from mmagent.model import llama_decoder
    from mmagent.model.generation import SamplingConfig, generate

    s = SamplingConfig(max_new_tokens=6)
    reusing = llama_decoder.LlamaDecoder(model.llm)
    history = [_user("What is in this picture?", "image_1")]
    for turn in range(3):
        batch = model.collate([model.build_inputs(history, artifacts=ART, add_generation_prompt=True)])
        with torch.no_grad():
            embeds = model.embed(batch["input_ids"], batch["pixel_values"])
        args = (embeds, batch["attention_mask"], batch["input_ids"])
        fresh = generate(llama_decoder.LlamaDecoder(model.llm, reuse_prefix=False), *args, sampling=s).tokens
        assert generate(reusing, *args, sampling=s).tokens == fresh
        assert (reusing.reused > 0) == (turn > 0)  # the image and the earlier turns are not recomputed
        history += [Message(role="assistant", content=model.tokenizer.decode(fresh[0])), _user(f"and then {turn}?")]
    different = model.collate([model.build_inputs([_user("fox")], add_generation_prompt=True)])
    with torch.no_grad():
        e = model.embed(different["input_ids"])
    generate(reusing, e, different["attention_mask"], different["input_ids"], sampling=s)
    assert reusing.reused < e.shape[1] - 1  # only the template's opening can be shared


def test_prefill_dtype_follows_the_cpu(monkeypatch):
    from mmagent.model import cpu, llama_decoder
    if not llama_decoder.int8_kernel_available():
        pytest.skip("no fbgemm int8 kernel in this torch build")
    m = tiny_mmllm()
    for native, amx, dtype in ((True, True, torch.bfloat16), (True, False, torch.float32), (False, False, torch.float32)):
        feats = cpu.CpuFeatures(capability="AVX512" if native else "AVX2", native_bf16=native, amx=amx, vnni=True)
        monkeypatch.setattr(cpu, "cpu_features", lambda feats=feats: feats)
        assert llama_decoder.LlamaDecoder(m.llm, quantize=True).dtype == dtype


def test_image_features_are_computed_once_per_image_at_inference(model, monkeypatch):
    calls = []
    model._features.clear()  # the fixture is shared: start from an empty cache
    encode = model.encode_images
    monkeypatch.setattr(model, "encode_images", lambda px: calls.append(len(px)) or encode(px))
    batch = model.collate([model.build_inputs([_user("What is in this picture?", "image_1")], artifacts=ART)])
    with torch.no_grad():
        first = model.embed(batch["input_ids"], batch["pixel_values"])
        again = model.embed(batch["input_ids"], batch["pixel_values"].clone())
    assert calls == [1] and torch.equal(first, again)
    with torch.enable_grad():  # training: always recomputed (the projector learns)
        model.embed(batch["input_ids"], batch["pixel_values"])
    assert calls == [1, 1]
