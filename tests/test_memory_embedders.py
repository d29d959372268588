"""memory/embedders.py + image_bridge.py on tiny random models built here (no hub, no real weights)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from memory_fakes import FakeEmbedder
from PIL import Image

from mmagent.memory.embedders import ClipEmbedder, MiniLMEmbedder, UnsupportedContentError
from mmagent.memory.image_bridge import BridgeWeights, ImageBridge
from mmagent.memory.store import MemoryStore

WORDS = "the a cat dog sat on mat red blue car sky photo of an image text street sign stop".split()


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tok = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-clip")
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<s>", "</s>", *WORDS])}
    bpe = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "max_position_embeddings": 32, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=24,
    )
    CLIPModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def test_minilm_mean_pools_real_tokens_and_normalizes(tiny_bert):
    emb = MiniLMEmbedder(tiny_bert, space="tiny-bert")
    assert emb.dim == 32
    alone = emb.embed_texts(["the cat sat"])
    batch = emb.embed_texts(["the cat sat", "a blue car on the street under the sky photo"])  # padding must not change row 0
    assert batch.shape == (2, 32) and np.allclose(np.linalg.norm(batch, axis=1), 1, atol=1e-5)
    assert np.allclose(alone[0], batch[0], atol=1e-5)
    from transformers import AutoModel, AutoTokenizer  # the reference: transformers' own BERT (the embedder runs lean_bert)

    enc = AutoTokenizer.from_pretrained(tiny_bert)(["the cat sat"], return_tensors="pt")
    with torch.no_grad():
        manual = AutoModel.from_pretrained(tiny_bert)(**enc).last_hidden_state[0].mean(0)
    assert np.allclose(alone[0], (manual / manual.norm()).numpy(), atol=1e-5)
    with pytest.raises(UnsupportedContentError, match="empty"):
        emb.embed_texts(["ok", " "])
    with pytest.raises(UnsupportedContentError, match="no image side"):
        emb.embed_images([Image.new("RGB", (4, 4))])


def test_clip_embedder_puts_images_and_texts_in_one_space(tiny_clip, tmp_path):
    clip = ClipEmbedder(tiny_clip)
    assert clip.dim == 24 and clip.space == f"clip:{tiny_clip.name}"
    t = clip.embed_texts(["a red car", "the blue sky"])
    red, blue = Image.new("RGB", (40, 30), (230, 10, 10)), Image.new("RGB", (40, 30), (10, 10, 230))
    e = clip.embed_images([red, blue], ["a red car", None])
    assert t.shape == (2, 24) and e.vectors.shape == (2, 24)
    assert np.allclose(np.linalg.norm(e.vectors, axis=1), 1, atol=1e-5)
    pure = clip.embed_images([red]).vectors[0]
    mixed = (pure + t[0]) / np.linalg.norm(pure + t[0])
    assert np.allclose(e.vectors[0], mixed, atol=1e-5)  # the caption is averaged in
    store = MemoryStore(tmp_path, clip)
    a = store.add_image(red)
    store.add_image(blue)
    assert store.search(red, k=1)[0].id == a.id
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        ClipEmbedder(tmp_path / "nothing")


def test_bridge_is_the_weighted_sum_of_label_ocr_and_caption_vectors(caplog):
    text = FakeEmbedder(dim=32)
    labels = [("tabby cat", 0.6), ("tiger cat", 0.2)]
    bridge = ImageBridge(text, lambda ims: [labels for _ in ims], lambda im: "OPEN 24 HOURS", BridgeWeights(labels=1.0, ocr=0.5, caption=2.0))
    out = bridge.embed_images([Image.new("RGB", (8, 8))], ["my cat"])
    lv = text.embed_texts(["tabby cat", "tiger cat"])
    lab = (0.75 * lv[0] + 0.25 * lv[1])  # probabilities renormalized over the top-k
    lab /= np.linalg.norm(lab)
    ocr, cap = text.embed_texts(["OPEN 24 HOURS", "my cat"])
    want = lab + 0.5 * ocr + 2.0 * cap
    assert np.allclose(out.vectors[0], want / np.linalg.norm(want), atol=1e-5)
    assert out.texts[0] == "my cat | text: OPEN 24 HOURS | looks like: tabby cat (0.60), tiger cat (0.20)"
    assert bridge.space == text.space and np.allclose(bridge.embed_texts(["cat"]), text.embed_texts(["cat"]))

    def broken(im):
        raise RuntimeError("onnx exploded")

    b2 = ImageBridge(text, lambda ims: [labels for _ in ims], broken)
    with caplog.at_level(logging.WARNING):
        out2 = b2.embed_images([Image.new("RGB", (8, 8))])
    assert "OCR failed" in caplog.text and "text:" not in out2.texts[0]
    with pytest.raises(ValueError, match="1 images but 2 captions"):
        bridge.embed_images([Image.new("RGB", (8, 8))], ["a", "b"])
    with pytest.raises(UnsupportedContentError, match="not a PIL image"):
        bridge.embed_images(["image_1"])
