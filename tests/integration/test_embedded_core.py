"""The embedded core for real: EfficientNet-Lite0 with its ImageNet weights, and the composed
default `mmagent-default` (EfficientNet-Lite0 -> MLP projector -> SmolLM2-135M) generating text."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    from skimage import data

    return {"chelsea": Image.fromarray(data.chelsea()), "coffee": Image.fromarray(data.coffee())}


@pytest.fixture(scope="module")
def default_model():
    from mmagent.backends import load_chat_model

    return load_chat_model("mmagent-default")


def test_efficientnet_top1_on_photos(photos):
    from mmagent.model.encoders.efficientnet import load_efficientnet_lite0

    enc = load_efficientnet_lite0()
    cat, coffee = enc.classify([photos["chelsea"], photos["coffee"]], k=3)
    assert cat[0].label in {"tabby", "tiger cat", "Egyptian cat"}  # ImageNet's house-cat classes
    assert sum(p.score for p in cat if p.label in {"tabby", "tiger cat", "Egyptian cat"}) > 0.7
    assert coffee[0].label == "espresso" and coffee[0].score > 0.8
    with torch.no_grad():
        assert enc(enc.preprocess([photos["coffee"]])).shape == (1, 49, 1280)


def test_default_generates_text_from_an_image(photos, tmp_path, default_model):
    from mmagent.media.artifacts import ArtifactStore
    from mmagent.protocol.chat import Message

    model = default_model
    store = ArtifactStore(tmp_path / "art", "t")
    art = store.add_image(photos["chelsea"])
    pieces: list[str] = []
    res = model.chat([Message(role="user", content="Describe this image.", images=[art.id])], artifacts=store,
                     max_new_tokens=16, on_token=pieces.append)
    assert res.completion_tokens > 0 and res.text.strip() and "".join(pieces) == res.text
    assert res.prompt_tokens > 49  # the 49 visual tokens are in the prompt
    mm = model.model
    assert mm.tokens_per_image == 49 and mm.encoder.hidden_size == 1280


def test_default_build_inputs_with_tools(photos, default_model):
    from mmagent.protocol.chat import Message, ToolCall

    mm = default_model.model
    tools = [{"type": "function", "function": {"name": "classify_image", "description": "Names what an image shows.",
                                               "parameters": {"type": "object", "properties": {"image": {"type": "string"}}}}}]
    msgs = [Message(role="user", content="What animal is this?", images=["image_1"]),
            Message(role="assistant", tool_calls=[ToolCall(name="classify_image", arguments={"image": "image_1"})])]
    x = mm.build_inputs(msgs, tools, artifacts={"image_1": photos["chelsea"]})
    assert int((x.input_ids == mm.image_token_id).sum()) == 49
    labeled = mm.tokenizer.decode(x.input_ids[x.labels != -100])
    assert labeled.startswith("<tool_call>") and labeled.rstrip().endswith("<|im_end|>")
    with torch.no_grad():
        out = mm(**mm.collate([x]))
    assert torch.isfinite(out.loss)
