"""A tiny continual-learning world: a random 2-layer Llama (hidden 64), tools, base data, suites.

Round 0 ("the shipped default") teaches read_text / detect_faces; later rounds learn a new custom
tool (flip_coin) from corrections, and a poisoned batch tries to remap read_text prompts.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from continual_fakes import FakeLog, convert_currency, detect_faces, read_text
from mmagent.chat import Message, ToolCall
from mmagent.tools.base import tool
from mmagent.tools.registry import ToolRegistry


@tool
def flip_coin() -> str:
    """Flips a fair coin and says heads or tails.
    """
    return "heads"


READ = ["read the text in this image", "what does this sign say", "read this image for me", "tell me the words in the picture",
        "what is written on this", "read the writing please", "transcribe the text in the photo", "read out the label"]
FACES = ["how many faces are in this photo", "find the faces in this picture", "detect faces please", "are there people's faces here",
         "count the faces in the image", "spot any faces in this photo", "locate the faces", "show me where the faces are"]
COIN = ["flip a coin", "flip a coin for me", "please flip a coin", "can you flip a coin", "coin flip please", "toss a coin",
        "toss a coin for me", "flip the coin now", "do a coin flip", "could you toss a coin", "flip a coin please now", "quick coin toss"]
RT = ToolCall(name="read_text", arguments={"image": "image_1"})
DF = ToolCall(name="detect_faces", arguments={"image": "image_1"})
FC = ToolCall(name="flip_coin", arguments={})
RECIPE = {"tiny": {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 128},
          "lora": {"r": 16, "alpha": 32, "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
          "steps": 60, "batch_size": 8, "grad_accum": 1, "lr": 5e-3, "warmup": 2, "save_every": 10, "max_len": 256,
          "adapter_dtype": "float32", "threads": 1}


def registry() -> ToolRegistry:
    return ToolRegistry([read_text, detect_faces, convert_currency, flip_coin])


def conversation(prompt: str, call: ToolCall, images: int = 1) -> list[Message]:
    return [Message(role="user", content=prompt, images=[f"image_{i + 1}" for i in range(images)]),
            Message(role="assistant", tool_calls=[call])]


def write_base_data(path: Path) -> Path:
    """The base instruction data (replay source): read_text and detect_faces conversations."""
    Image.new("RGB", (40, 40), (200, 30, 30)).save(path.parent / "red.png")
    lines = [json.dumps({"images": ["red.png"], "messages": [m.model_dump(exclude_defaults=True) for m in conversation(p, c)]})
             for _ in range(3) for p, c in [(p, RT) for p in READ[:6]] + [(p, DF) for p in FACES[:6]]]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_suite(folder: Path, items: list[tuple[str, ToolCall, int]], name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 40), (200, 30, 30)).save(folder / "red.png")
    rows = [{"id": f"{name}{i}", "prompt": p, "images": ["red.png"] * n,
             "expected": [{"name": c.name, "arguments": {k: [v] for k, v in c.arguments.items()}}]} for i, (p, c, n) in enumerate(items)]
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def regression_suite(folder: Path) -> Path:
    """Frozen: what the base already handles (its trained phrasings of read_text / detect_faces)."""
    return write_suite(folder, [(p, RT, 1) for p in READ[:6]] + [(p, DF, 1) for p in FACES[:6]], "regression")




def tiny_tokenizer():
    """Byte-level BPE (ChatML template) trained on this world's text, so a call is ~15 tokens."""
    from tiny_mmllm import CHATML
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from mmagent.toolcall import format_calls, render_tool_prompt

    corpus = [render_tool_prompt(registry().schemas()), "[attached: image_1] user assistant system tool"]
    corpus += READ + FACES + COIN + [format_calls([c]) for c in (RT, DF, FC)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe.train_from_iterator(corpus * 4, trainers.BpeTrainer(vocab_size=700, special_tokens=specials,
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>")
    tok.chat_template = CHATML
    # Whole tool names and call scaffolding as single tokens: a call is a handful of decisions,
    # which a 2-layer model learns in seconds (real tokenizers split them; the logic is the same).
    tok.add_tokens(["read_text", "detect_faces", "flip_coin", "convert_currency", '<tool_call>{"name": "',
                    '", "arguments": {', '"image": "image_1"', "}}</tool_call>"])
    return tok


def load_tiny_base(_rc=None):
    """(llm, tokenizer): the same random weights every call (seeded), small vocab (fast loss)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok) + 1, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True, pad_token_id=0)
    return LlamaForCausalLM(cfg).train(), tok  # +1: room for <image> without resizing


def load_tiny_mmllm():
    from tiny_mmllm import TinyEncoder

    from mmagent.mmllm import MMLLM, MMLLMConfig

    llm, tok = load_tiny_base()
    return MMLLM(MMLLMConfig(llm="tiny", encoder="tiny"), llm.eval(), tok, TinyEncoder()).eval()
