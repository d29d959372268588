"""The agent on the real embedded model (composed MM-LLM on SmolLM2-135M), constrained decoding on.

The model is not tool-tuned yet, so what is checked is the wiring and the guarantee, not skill:
the turn ends cleanly, everything is logged, and whatever call it emits parses and validates."""

from __future__ import annotations

import pytest
from PIL import Image
from pydantic import ValidationError

from mmagent.protocol.toolcall import parse_tool_calls

pytestmark = pytest.mark.integration


def test_one_turn_on_the_embedded_model(tmp_path):
    from mmagent.agent import Agent
    from mmagent.backends.composed import message_images
    from mmagent.model.generation import SamplingConfig
    from mmagent.protocol.constrained import tool_call_processor

    agent = Agent(model="mmagent-default", tools=["resize_image", "crop_image"], constrained=True, max_new_tokens=24,
                  max_steps=1, log=tmp_path / "log.sqlite", checkpoint=tmp_path / "ckpt.sqlite", artifacts_root=tmp_path / "art")
    r = agent.run("Make this picture 32 pixels wide.", images=[Image.new("RGB", (64, 48), "white")])
    assert r.status in ("ok", "step_limit", "error") and (r.answer or r.error)
    turn = agent.log.turn(r.turn_id)
    assert turn.model == "mmagent-default" and len(turn.steps_log) == 1
    assert turn.steps_log[0].raw_output == r.trace[0]["raw_output"]
    assert all(c.error_kind != "validation" for c in turn.calls)

    # The same model forced to call ("required"): the call is complete and valid within 96 tokens.
    m = agent.model.model
    tools = agent.registry.schemas()
    msgs = agent.history(r.session)[:1]
    images = message_images(msgs, agent.artifacts(r.session))
    inputs = m.build_inputs(msgs, tools, artifacts=images, add_generation_prompt=True, reserve_tokens=96)
    proc = tool_call_processor(m.tokenizer, tools, mode="required", eos_token_ids=m.eos_token_ids, max_new_tokens=96)
    out = m.generate(m.collate([inputs]), sampling=SamplingConfig(max_new_tokens=96), processors=[proc])
    calls, errors, _ = parse_tool_calls(m.tokenizer.decode(out.tokens[0], skip_special_tokens=True))
    assert errors == [] and calls
    for c in calls:  # types and required keys hold; cross-field rules (x1 > x0) are the tool's own check
        try:
            agent.registry.get(c.name).input_model.model_validate(c.arguments)
        except ValidationError as err:
            assert {e["type"] for e in err.errors()} == {"value_error"}, err
