"""Tiny random parts for MM-LLM tests: a byte-level BPE tokenizer with a ChatML template, a 2-layer
Llama (hidden 64), and a 2-conv image encoder that follows the encoder protocol (16 tokens)."""

from __future__ import annotations

import torch
from PIL import Image

from mmagent.continual.scenario import PatchEncoder

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = ["user assistant system tool What is in this picture? A red square on a blue ground.",
          '<tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call> [attached: image_1]',
          "The quick brown fox jumps over the lazy dog 0123456789"]


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(
        vocab_size=360, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  bos_token="<|im_start|>")
    tok.chat_template = CHATML
    return tok


def tiny_llm(vocab: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, pad_token_id=0)
    return LlamaForCausalLM(cfg).eval()


# 32x32 image -> 4x4 grid of 24-d features = 16 tokens [B, 16, 24]; seeded without touching the global RNG.
TinyEncoder = PatchEncoder


def tiny_mmllm(config=None, seed: int = 0):
    from mmagent.model.mmllm import MMLLM, MMLLMConfig

    tok = tiny_tokenizer()
    llm = tiny_llm(len(tok) + 1, seed)  # +1: room for <image> without resizing
    return MMLLM(config or MMLLMConfig(llm="tiny", encoder="tiny"), llm, tok, TinyEncoder()).eval()


def color_image(rgb: tuple[int, int, int], size: int = 40) -> Image.Image:
    return Image.new("RGB", (size, size), rgb)
