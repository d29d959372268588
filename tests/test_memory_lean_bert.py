"""memory/lean_bert.py gives transformers' BertModel embeddings without importing transformers' modeling stack."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmagent.memory import lean_bert
from mmagent.memory.embedders import MiniLMEmbedder

WORDS = "the a cat dog sat on mat red blue car sky photo of an image text street sign stop café naïve".split()
TEXTS = ["the cat sat", "a blue car on the street under the sky photo", "Café NAÏVE stop!", "the " * 80 + "sign"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "cafe", "naive", "!"]) + "\n")
    tok = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=128)
    BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _both(path, max_length):
    return MiniLMEmbedder(path, max_length=max_length, space="x"), MiniLMEmbedder(path, max_length=max_length, space="x", lean=False)


def test_lean_hidden_states_and_tokens_match_transformers(tiny_bert):
    from transformers import AutoModel, AutoTokenizer

    tok, model = lean_bert.load(tiny_bert, max_length=40)
    ids, mask = lean_bert.encode(tok, TEXTS)
    ref = AutoTokenizer.from_pretrained(tiny_bert)(TEXTS, padding=True, truncation=True, max_length=40, return_tensors="pt")
    assert torch.equal(ids, ref["input_ids"]) and torch.equal(mask, ref["attention_mask"])  # padding, truncation, accents
    with torch.no_grad():
        want = AutoModel.from_pretrained(tiny_bert).eval()(**ref).last_hidden_state
        got = model(ids, mask)
    real = mask.bool()
    assert torch.allclose(got[real], want[real], atol=1e-5)  # every real token's state (padded rows are pooled out)


def test_the_embedder_runs_lean_and_gives_the_same_vectors(tiny_bert):
    lean, hf = _both(tiny_bert, 40)
    assert lean._lean is not None and hf._lean is None and lean.dim == hf.dim == 32
    assert np.allclose(lean.embed_texts(TEXTS), hf.embed_texts(TEXTS), atol=1e-5)


def test_other_encoders_fall_back_to_transformers(tiny_bert, tmp_path):
    import shutil

    other = tmp_path / "gelu-new"
    shutil.copytree(tiny_bert, other)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "hidden_act": "gelu_new"}))
    assert lean_bert.load(other, 40) is None and MiniLMEmbedder(other, space="x")._lean is None
    (tiny_bert / "tokenizer.json").rename(tmp_path / "t.json")
    try:
        assert lean_bert.load(tiny_bert, 40) is None
    finally:
        (tmp_path / "t.json").rename(tiny_bert / "tokenizer.json")


@pytest.mark.integration
def test_embedded_minilm_lean_equals_transformers_and_imports_no_modeling():
    from mmagent.hub.provision import ensure

    path = ensure("minilm-l6")
    lean, hf = _both(path, 256)
    texts = ["What does this sign say?", "Hi! How are you today?", "convert 2,826 dollars to euros, s'il vous plaît", "x " * 300]
    a, b = lean.embed_texts(texts), hf.embed_texts(texts)
    assert (a * b).sum(1).min() > 0.99999
    code = ("import sys; from mmagent.memory.embedders import load_text_embedder; load_text_embedder().embed_texts(['hi']);"
            "print(any(m.startswith('transformers') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
