"""The onnxruntime decode steps (mmagent/model/ort_decode.py) against the torch decoder, on a tiny Llama."""

from __future__ import annotations

import pytest
import torch
from tiny_mmllm import tiny_mmllm

from mmagent.model import llama_decoder, ort_decode
from mmagent.protocol.chat import Message

pytestmark = pytest.mark.skipif(not ort_decode.available(), reason="onnxruntime >= 1.22 with onnx is not installed")


@pytest.fixture(scope="module")
def model():
    return tiny_mmllm()


def _prompt(model, text: str = "What does the fox say, and why?"):
    batch = model.collate([model.build_inputs([Message(role="user", content=text)], add_generation_prompt=True)])
    with torch.no_grad():
        return model.embed(batch["input_ids"]), batch["attention_mask"]


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a.float(), b.float()).min().item()  # the worst row


@pytest.mark.parametrize("k, block", [(96, 32), (128, 64)])  # 64 where it divides K, else 32
def test_blocks_dequantize_within_half_a_step(k, block):
    w = torch.randn(48, k) * 0.1
    w[3, :block] = 0  # an all-zero block stays exactly zero
    q, scale, zero = ort_decode.quantize_blocks(w)
    n = k // block
    assert q.shape == (48, n, block) and q.dtype == torch.uint8 and scale.shape == zero.shape == (48 * n,)
    back = ((q.float() - zero.view(48, n, 1).float()) * scale.view(48, n, 1)).view(48, k)
    assert (back - w).abs().le(scale.view(48, n, 1).expand(48, n, block).reshape(48, k) / 2 + 1e-7).all()
    assert back[3, :block].eq(0).all()


@pytest.mark.parametrize("wide", [64, 32])  # the tiny model's widths all divide by 64: 32 forced too
def test_steps_follow_the_float_decoder_and_write_its_kv(model, wide, monkeypatch):
    monkeypatch.setattr(ort_decode, "WIDE_BLOCK", wide)
    embeds, mask = _prompt(model)
    exact = llama_decoder.LlamaDecoder(model.llm)
    ort = llama_decoder.LlamaDecoder(model.llm, quantize=True, dtype=torch.float32, engine="onnxruntime")
    assert ort.engine == "onnxruntime" and ort.path() == "int8 decode on onnxruntime + float32 prefill"
    with torch.inference_mode():
        ref, got = exact.prefill(embeds, mask, 8), ort.prefill(embeds, mask, 8)  # prefill: torch, float weights
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
        tok = ref.argmax(-1)
        for _ in range(6):  # teacher-forced by the exact decoder's greedy choice
            ref, got = exact.step(tok), ort.step(tok)
            assert _cos(ref, got) > 0.999
            n = exact.length
            # the graph wrote this step's key and value (RoPE applied) into the decoder's own buffers
            assert _cos(exact.k[:, 0, :, n - 1].flatten(1), ort.k[:, 0, :, n - 1].flatten(1)) > 0.999
            assert _cos(exact.v[:, 0, :, n - 1].flatten(1), ort.v[:, 0, :, n - 1].flatten(1)) > 0.999
            tok = ref.argmax(-1)
    assert ort._graph is not None  # the steps really ran on onnxruntime
    assert {lin.blocks[0].shape[2] for lin in (ort.lm_head, ort.layers[0].qkv, ort.layers[0].down)} == {wide}


def test_prefix_reuse_and_saved_prompts_see_what_the_graph_wrote(model):
    """A second turn prefills only what is new on top of the KV the graph steps wrote (and a saved
    prefix restores it), giving what a fresh decoder computes from scratch."""
    from mmagent.model.generation import SamplingConfig, generate

    s = SamplingConfig(max_new_tokens=5)
    ort = llama_decoder.LlamaDecoder(model.llm, quantize=True, dtype=torch.float32, engine="onnxruntime")
    history = [Message(role="user", content="Tell me about foxes.")]
    for turn in range(2):
        batch = model.collate([model.build_inputs(history, add_generation_prompt=True)])
        with torch.no_grad():
            embeds = model.embed(batch["input_ids"])
        with torch.inference_mode():
            fresh = llama_decoder.LlamaDecoder(model.llm, quantize=True, dtype=torch.float32, engine="onnxruntime", reuse_prefix=False)
            want = fresh.prefill(embeds, batch["attention_mask"], 8)
            got = ort.prefill(embeds, batch["attention_mask"], 8)
        assert (ort.reused > 0) == (turn > 0)
        torch.testing.assert_close(got, want, atol=1e-3, rtol=1e-3)
        reply = generate(ort, embeds, batch["attention_mask"], batch["input_ids"], sampling=s).tokens[0]
        history += [Message(role="assistant", content=model.tokenizer.decode(reply)), Message(role="user", content="and owls?")]
    state = ort.prefix_state()
    restored = llama_decoder.LlamaDecoder(model.llm, quantize=True, dtype=torch.float32, engine="onnxruntime")
    with torch.inference_mode():
        assert restored.load_prefix(state) == state["seen"].shape[0]
        tok = torch.tensor([5])
        restored.prefill(embeds, batch["attention_mask"], 4)
        ort.prefill(embeds, batch["attention_mask"], 4)
        torch.testing.assert_close(restored.step(tok), ort.step(tok), atol=1e-4, rtol=1e-4)


def test_batches_and_padding_stay_on_the_torch_path(model):
    items = [model.build_inputs([Message(role="user", content=t)], add_generation_prompt=True) for t in ("fox", "a much longer question")]
    batch = model.collate(items, padding_side="left")
    with torch.no_grad():
        embeds = model.embed(batch["input_ids"])
    ort = llama_decoder.LlamaDecoder(model.llm, quantize=True, dtype=torch.float32, engine="onnxruntime")
    exact = llama_decoder.LlamaDecoder(model.llm)
    with torch.inference_mode():
        ort.prefill(embeds, batch["attention_mask"], 4)
        exact.prefill(embeds, batch["attention_mask"], 4)
        tok = torch.tensor([5, 7])
        got, ref = ort.step(tok), exact.step(tok)
    assert ort._graph is None and got.shape == ref.shape == (2, ref.shape[1])
    assert min(_cos(got[i : i + 1], ref[i : i + 1]) for i in range(2)) > 0.999  # the float weights: exact up to rounding


def test_the_cached_form_keeps_the_engine_and_its_blocks(model):
    embeds, mask = _prompt(model)
    ort = llama_decoder.LlamaDecoder(model.llm, quantize=True, dtype=torch.float32, engine="onnxruntime")
    tensors, meta = ort.tensors()
    assert meta["engine"] == "onnxruntime" and "layers.0.qkv.blocks.q" in tensors and "layers.0.qkv.q" not in tensors
    again = llama_decoder.LlamaDecoder.from_tensors(tensors, meta)
    assert again.path() == ort.path()
    with torch.inference_mode():
        ort.prefill(embeds, mask, 4)
        again.prefill(embeds, mask, 4)
        tok = torch.tensor([3])
        torch.testing.assert_close(again.step(tok), ort.step(tok))


def test_auto_decodes_on_onnxruntime_where_it_is_installed(monkeypatch):
    dtype, quantize, engine = llama_decoder.choose_path("int8", "float32", torch.float32)
    assert (dtype, quantize, engine) == (torch.float32, True, "onnxruntime")
    assert llama_decoder.choose_path("int8", "float32", torch.float32, "torch")[2] == "torch"
    assert llama_decoder.choose_path("float32", "auto", torch.float32)[1:] == (False, "torch")  # exact path: no int8 at all
    monkeypatch.setattr(ort_decode, "available", lambda: False)
    assert llama_decoder.choose_path("int8", "float32", torch.float32)[2] == "torch"


def test_the_step_graph_is_saved_beside_the_cache_entry_and_opened_from_there(model, tmp_path, monkeypatch):
    """The first process writes the graph; a later one opens it without building (no onnx import);
    a torn graph file is rebuilt, not served."""
    from mmagent.model import decoder_cache

    embeds, mask = _prompt(model)
    built = llama_decoder.LlamaDecoder(model.llm, quantize=True, dtype=torch.float32, engine="onnxruntime")
    assert decoder_cache.save(tmp_path, "k1", built) is not None
    first = decoder_cache.load(tmp_path, "k1")
    first.pack()
    graph = decoder_cache.graph_file(tmp_path, "k1")
    assert graph.is_file() and graph.stat().st_size > 0

    def no_build(decoder):
        raise AssertionError("built again")

    monkeypatch.setattr(ort_decode, "build_graph", no_build)
    second = decoder_cache.load(tmp_path, "k1")
    with torch.inference_mode():
        for d in (first, second):
            d.prefill(embeds, mask, 4)
        tok = torch.tensor([3])
        torch.testing.assert_close(second.step(tok), first.step(tok))
    monkeypatch.undo()
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])  # a writer killed mid-file (not atomic here)
    third = decoder_cache.load(tmp_path, "k1")
    with torch.inference_mode():
        for d in (second, third):
            d.forget()
            d.prefill(embeds, mask, 4)
        torch.testing.assert_close(third.step(tok), second.step(tok))
    assert ort_decode.StepGraph._open(graph, _opts()) is not None  # rewritten whole
    decoder_cache.prune(tmp_path, keep=0)
    assert not graph.exists()


def _opts():
    import onnxruntime as ort

    return ort.SessionOptions()
