"""The native-VLM backend on a tiny LLaVA built here (CLIP tower + Llama, hidden 32, 2 layers).

The tokenizer is a byte-level BPE trained on the spot, so any text round-trips. To check the
tool-call path end to end, the tiny model is first overfit (a few hundred Adam steps, ~2 s) to
answer one prompt (image + question + tool schema) with one `<tool_call>`: greedy decoding through
the backend must then reproduce it, stream it, and parse it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from mmagent.backends.media import ImageTooLargeError, MediaError, UnsupportedMediaError, decode_image
from mmagent.backends.vlm import ContextLengthError, VLMChatModel
from mmagent.media.artifacts import ArtifactStore
from mmagent.protocol.chat import ChatModel, Message, ToolCall
from mmagent.protocol.toolcall import format_calls, format_tool_result

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
READ_TEXT = {
    "type": "function",
    "function": {
        "name": "read_text",
        "description": "Reads the text in an image.",
        "parameters": {"type": "object", "properties": {"image": {"type": "string"}}, "required": ["image"]},
    },
}
TARGET = format_calls([ToolCall(name="read_text", arguments={"image": "image_1"})])
QUESTION = "What does the sign say?"
IMAGE_TOKENS = 16  # (32 / 8)^2 patches; the CLS token is dropped ("default" feature strategy)


def _tokenizer(corpus: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "<image>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<|im_start|>", eos_token="<|im_end|>"
    )


def build_tiny_llava(path: Path) -> None:
    """A random tiny LLaVA + processor saved as a local `save_pretrained` folder."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    from mmagent.protocol.toolcall import render_tool_prompt

    tok = _tokenizer([render_tool_prompt([READ_TEXT]), TARGET, QUESTION, "[attached: image_1]", "user assistant system"])
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
        chat_template=CHATML, image_token="<image>", num_additional_image_tokens=1,  # CLIP's CLS token
    )
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=320,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    # image_token_index must be inside the vocabulary (transformers 5 defaults it to 32000).
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-1, vision_feature_select_strategy="default")
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(path)
    processor.save_pretrained(path)


def overfit_to_call(vlm: VLMChatModel, messages: list[Message], store: ArtifactStore, steps: int = 300) -> None:
    """Trains the tiny model until it answers `messages` with TARGET (loss on the answer only)."""
    conversation, images = vlm.conversation(messages, [READ_TEXT], store)
    inputs = vlm.encode(conversation, images)
    answer = torch.tensor([vlm.tokenizer.encode(TARGET, add_special_tokens=False) + [vlm.tokenizer.eos_token_id]])
    ids = torch.cat([inputs["input_ids"], answer], dim=1)  # [1, T + A]
    labels = torch.full_like(ids, -100)
    labels[:, inputs["input_ids"].shape[1]:] = answer
    model = vlm.model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=inputs["pixel_values"], labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    model.eval()


def _png(size=(48, 40), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ArtifactStore:
    s = ArtifactStore(tmp_path_factory.mktemp("artifacts"), session="vlm-test")
    s.add_image(_png())  # image_1
    s.add_image(_png((40, 40), (10, 200, 10)))  # image_2
    s.add_audio(_wav())  # audio_1
    return s


@pytest.fixture(scope="module")
def trained_path(tmp_path_factory, store) -> Path:
    """The tiny LLaVA, overfit to call read_text on image_1, saved and reloaded by path."""
    raw = tmp_path_factory.mktemp("tiny-llava-raw")
    build_tiny_llava(raw)
    vlm = VLMChatModel.from_pretrained(str(raw))
    overfit_to_call(vlm, _ask(), store)
    out = tmp_path_factory.mktemp("tiny-llava")
    vlm.model.save_pretrained(out)
    vlm.processor.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def vlm(trained_path) -> VLMChatModel:
    return VLMChatModel.from_pretrained(str(trained_path))


def _ask(images=("image_1",)) -> list[Message]:
    return [Message(role="user", content=QUESTION, images=list(images))]


def _wav() -> bytes:
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 1600)
    return buf.getvalue()


# --- loading and generation --------------------------------------------------------------------


def test_loads_by_local_path_and_speaks_the_chat_interface(vlm):
    assert isinstance(vlm, ChatModel)
    assert type(vlm.model).__name__ == "LlavaForConditionalGeneration"
    assert "Pil" in type(vlm.processor.image_processor).__name__  # the slow processor: no torchvision
    assert vlm.context_length == 320


def test_image_and_text_to_a_parsed_tool_call(vlm, store):
    result = vlm.chat(_ask(), tools=[READ_TEXT], artifacts=store, max_new_tokens=60)
    assert result.text == TARGET
    assert result.tool_calls == [ToolCall(name="read_text", arguments={"image": "image_1"})]
    assert result.parse_errors == []
    assert result.completion_tokens == len(vlm.tokenizer.encode(TARGET, add_special_tokens=False))
    assert result.model == vlm.name


def test_the_image_matters(vlm, store):
    """Same text, another image: the overfit answer depended on the pixels, so it changes."""
    other = vlm.chat(_ask(("image_2",)), tools=[READ_TEXT], artifacts=store, max_new_tokens=60)
    assert other.text != TARGET


def test_constrained_decoding_keeps_calls_valid(vlm, store):
    """On an image it was not trained on, the overfit model garbles the call; with the tool-call
    grammar (mmagent.protocol.constrained) every emitted call names a real tool with valid arguments."""
    free = vlm.chat(_ask(("image_2",)), tools=[READ_TEXT], artifacts=store, max_new_tokens=60)
    assert free.tool_calls != [ToolCall(name="read_text", arguments={"image": "image_1"})]
    guided = vlm.chat(_ask(("image_2",)), tools=[READ_TEXT], artifacts=store, max_new_tokens=60, constrained=True)
    assert guided.parse_errors == [] and guided.tool_calls
    assert all(c.name == "read_text" and isinstance(c.arguments.get("image"), str) for c in guided.tool_calls)


def test_streamed_pieces_add_up_to_the_text(vlm, store):
    pieces: list[str] = []
    result = vlm.chat(_ask(), tools=[READ_TEXT], artifacts=store, max_new_tokens=60, on_token=pieces.append)
    assert len(pieces) > 1
    assert "".join(pieces) == result.text == TARGET


def test_image_tokens_are_expanded_per_image(vlm, store):
    image_id = vlm.model.config.image_token_index
    for images in ([], ["image_1"], ["image_1", "image_2"]):
        conversation, pil = vlm.conversation(_ask(images), None, store)
        inputs = vlm.encode(conversation, pil)
        assert int((inputs["input_ids"] == image_id).sum()) == IMAGE_TOKENS * len(images)
        assert ("pixel_values" in inputs) == bool(images)


def test_history_with_calls_and_results_renders_and_generates(vlm, store):
    call = ToolCall(name="read_text", arguments={"image": "image_1"}, id="c1")
    history = [
        *_ask(),
        Message(role="assistant", tool_calls=[call]),
        Message(role="tool", name="read_text", tool_call_id="c1", content=format_tool_result("read_text", {"text": "STOP"})),
    ]
    conversation, images = vlm.conversation(history, [READ_TEXT], store)
    prompt = vlm.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    assert "read_text(image: str)" in prompt.split("<|im_end|>")[0]  # the tool prompt in the system turn
    assert TARGET in prompt and "<tool_response>" in prompt and "<|im_start|>tool" in prompt
    result = vlm.chat(history, tools=[READ_TEXT], artifacts=store, max_new_tokens=5)
    assert 1 <= result.completion_tokens <= 5


def test_generation_is_deterministic_and_text_only_works(vlm):
    msgs = [Message(role="user", content="hello")]
    a, b = vlm.chat(msgs, max_new_tokens=8), vlm.chat(msgs, max_new_tokens=8)
    assert a.text == b.text and a.completion_tokens == b.completion_tokens >= 1


# --- bad input ---------------------------------------------------------------------------------


def test_empty_prompt_is_refused(vlm):
    with pytest.raises(ValueError, match="messages is empty"):
        vlm.chat([])
    with pytest.raises(ValueError, match="prompt is empty"):
        vlm.chat([Message(role="user", content="  ")])


def test_prompt_over_the_context_is_refused(vlm):
    with pytest.raises(ContextLengthError, match="context of 320"):
        vlm.chat([Message(role="user", content="word " * 400)])


def test_max_new_tokens_is_cut_to_fit_the_context(vlm):
    n_prompt = vlm.encode(*vlm.conversation([Message(role="user", content="x " * 150)], None, None))["input_ids"].shape[1]
    result = vlm.chat([Message(role="user", content="x " * 150)], max_new_tokens=1000)
    assert result.prompt_tokens == n_prompt
    assert result.completion_tokens <= vlm.context_length - n_prompt


def test_audio_is_unsupported_media(vlm, store):
    with pytest.raises(UnsupportedMediaError, match="audio_1 is audio"):
        vlm.chat([Message(role="user", content="listen", audio=["audio_1"])], artifacts=store)


def test_unknown_artifact_and_missing_store(vlm, store):
    with pytest.raises(ValueError, match="image_9"):
        vlm.chat(_ask(("image_9",)), artifacts=store)
    with pytest.raises(MediaError, match="no artifact store"):
        vlm.chat(_ask())


def test_image_over_the_pixel_limit(trained_path, store):
    small_limit = VLMChatModel.from_pretrained(str(trained_path), max_pixels=1000)
    with pytest.raises(ImageTooLargeError, match="48x40 = 1,920 pixels"):
        small_limit.chat(_ask(), artifacts=store)


def test_corrupt_bomb_and_unsupported_images_fail_clearly(tmp_path):
    with pytest.raises(MediaError, match="truncated or corrupt"):
        decode_image(_png()[:60])
    bomb = io.BytesIO()
    Image.new("1", (9000, 9000)).save(bomb, format="PNG")  # ~10 kB file, 81 MP decoded
    with pytest.raises(MediaError, match="81,000,000 pixels"):
        decode_image(bomb.getvalue())
    with pytest.raises(MediaError, match="not a recognised image"):
        decode_image(_wav())
    ok = tmp_path / "ok.png"
    ok.write_bytes(_png())
    assert decode_image(ok).size == (48, 40)


def test_image_token_count_mismatch_is_a_clear_error(trained_path, store):
    vlm = VLMChatModel.from_pretrained(str(trained_path))
    vlm.processor.chat_template = CHATML.replace("<image>", "")  # a template that drops image parts
    with pytest.raises(MediaError, match="Found total 0 <image> tokens and 1 images.*chat template must render"):
        vlm.chat(_ask(), artifacts=store)


def test_tool_role_for_templates_without_a_tool_role(trained_path, store):
    vlm = VLMChatModel.from_pretrained(str(trained_path), tool_role="user")
    history = [*_ask(), Message(role="assistant", tool_calls=[ToolCall(name="read_text", arguments={"image": "image_1"})]),
               Message(role="tool", name="read_text", content=format_tool_result("read_text", {"text": "STOP"}))]
    conversation, _ = vlm.conversation(history, [READ_TEXT], store)
    assert [t["role"] for t in conversation] == ["system", "user", "assistant", "user"]


def test_load_chat_model_reaches_this_backend(trained_path):
    from mmagent.backends import load_chat_model

    model = load_chat_model(f"vlm:{trained_path}")
    assert isinstance(model, VLMChatModel) and model.name == str(trained_path)


def test_a_processor_without_chat_template_is_refused(trained_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    proc = AutoProcessor.from_pretrained(trained_path, backend="pil")
    proc.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        VLMChatModel(AutoModelForImageTextToText.from_pretrained(trained_path), proc)


# --- a second family: Idefics3 (SmolVLM's architecture) ------------------------------------------


def build_tiny_idefics3(path: Path) -> None:
    """SigLIP-style tower (32 px, 8 px patches) + pixel-shuffle connector (scale 2: 16 -> 4 tokens) + Llama."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3 import Idefics3ImageProcessorPil

    tok = _tokenizer([QUESTION, "[attached: image_1]"])
    tok.add_special_tokens({"additional_special_tokens": ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]})
    image_processor = Idefics3ImageProcessorPil(do_image_splitting=False, max_image_size={"longest_edge": 32}, size={"longest_edge": 32})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=4, chat_template=CHATML)
    config = Idefics3Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8),
        text_config=dict(model_type="llama", vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id),
        image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=2, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(path)
    processor.save_pretrained(path)


def test_idefics3_family_through_the_same_backend(tmp_path, store):
    build_tiny_idefics3(tmp_path / "tiny-idefics3")
    vlm = VLMChatModel.from_pretrained(str(tmp_path / "tiny-idefics3"))
    assert type(vlm.model).__name__ == "Idefics3ForConditionalGeneration"
    conversation, images = vlm.conversation(_ask(("image_1", "image_2")), None, store)
    inputs = vlm.encode(conversation, images)
    assert int((inputs["input_ids"] == vlm.model.config.image_token_id).sum()) == 2 * 4
    assert tuple(inputs["pixel_values"].shape) == (1, 2, 3, 32, 32)  # [B, images, C, H, W]
    pieces: list[str] = []
    result = vlm.chat(_ask(), tools=[READ_TEXT], artifacts=store, max_new_tokens=6, on_token=pieces.append)
    assert result.completion_tokens >= 1 and "".join(pieces) == result.text
    assert result.prompt_tokens == vlm.encode(*vlm.conversation(_ask(), [READ_TEXT], store))["input_ids"].shape[1]
