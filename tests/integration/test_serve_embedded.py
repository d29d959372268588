"""`mmagent serve` on the real embedded default, driven by the official OpenAI client: what is
checked is the wiring (images, streaming, tools under the grammar, usage), not the model's skill."""

from __future__ import annotations

import json

import pytest

from serve_fixtures import png_data_uri, served_agent  # tests/ is on the path (its conftest.py)

pytestmark = pytest.mark.integration


def test_the_openai_client_against_the_embedded_default(tmp_path):
    import openai

    from mmagent.backends import load_chat_model
    from mmagent.tools.registry import default_registry

    resize = default_registry(include=["resize_image"]).schemas()
    with served_agent(tmp_path, load_chat_model("mmagent-default"), model_id="mmagent-default", tools=["resize_image"]) as (url, _):
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300)
        r = client.chat.completions.create(model="mmagent-default", max_tokens=12, messages=[
            {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                         {"type": "image_url", "image_url": {"url": png_data_uri((64, 48), "blue")}}]}])
        assert r.choices[0].message.content and 0 < r.usage.completion_tokens <= 12 and r.usage.prompt_tokens > 20

        chunks = list(client.chat.completions.create(model="mmagent-default", max_tokens=8, stream=True,
                                                     messages=[{"role": "user", "content": "Say hello."}]))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) and chunks[-1].choices[0].finish_reason in ("stop", "length")

        r = client.chat.completions.create(model="mmagent-default", max_tokens=64, tools=resize, tool_choice="required", messages=[
            {"role": "user", "content": [{"type": "text", "text": "Resize this image to 32 pixels wide."},
                                         {"type": "image_url", "image_url": {"url": png_data_uri((64, 48))}}]}])
        for call in r.choices[0].message.tool_calls or []:  # whatever it calls is well-formed under the grammar
            assert call.function.name == "resize_image" and isinstance(json.loads(call.function.arguments), dict)
