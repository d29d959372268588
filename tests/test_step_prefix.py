"""One prefix KV per step (`mmagent/training/step_prefix.py`): the passes of a step that share it get
the gradient of separate passes, each computing the prefix itself, on a tiny random-init LoRA model."""

from __future__ import annotations

import pytest
import torch

from mmagent.training.config import ToolTuningConfig


@pytest.fixture(scope="module")
def bb(tmp_path_factory):
    from mmagent.training.backbone import build_backbone

    torch.manual_seed(0)
    cfg = ToolTuningConfig.model_validate({"tiny": {}, "out": tmp_path_factory.mktemp("tiny"), "lora": {"r": 2, "alpha": 4}})
    bb = build_backbone(cfg)
    for p in bb.trainable():  # B starts at 0: give the adapter a value so its gradient reaches the prefix's KV
        p.data.normal_(0, 0.05)
    bb.llm.eval()  # no dropout: the shared prefix is exact
    return bb


def _batch(g: torch.Generator, P: int, B: int, T: int):
    prefix, ids = torch.randint(0, 100, (1, P), generator=g), torch.randint(0, 100, (B, T), generator=g)
    pos = torch.arange(P, P + T).expand(B, T)
    mask = torch.ones(T, P + T, dtype=torch.bool).tril(P)[None, None].expand(B, 1, T, P + T)
    return prefix, ids, pos, mask


def _grads(bb, step_prefix) -> tuple[list[float], list[torch.Tensor]]:
    """Three passes of one step: a no-grad pass first (KTO's KL estimate), then two trained passes behind
    the same prefix, and one behind another prefix (a micro-batch of conversations with their own tools)."""
    from mmagent.training.loss import AssistantLoss

    g = torch.Generator().manual_seed(1)
    same, other = _batch(g, 6, 2, 5), _batch(g, 4, 3, 6)
    second = (same[0], *_batch(g, 6, 3, 5)[1:])
    loss = AssistantLoss(bb.llm, step_prefix=step_prefix)
    values = []
    with torch.no_grad():
        values.append(loss(same[0], same[1], same[1], same[2], same[3])[0].item())
    for prefix, ids, pos, mask in (same, second, other):
        total, _ = loss(prefix, ids, ids, pos, mask)
        total.backward()
        values.append(total.item())
    if step_prefix is not None:
        step_prefix.backward()
    grads = [p.grad.clone() for p in bb.trainable()]
    bb.llm.zero_grad(set_to_none=True)
    return values, grads


def test_a_step_shared_prefix_gives_the_gradient_of_separate_passes(bb):
    from mmagent.training.step_prefix import StepPrefix

    want_values, want = _grads(bb, None)
    shared = StepPrefix(bb.llm.model)
    got_values, got = _grads(bb, shared)
    assert got_values == pytest.approx(want_values, rel=1e-5)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(got, want, strict=True))
    assert any(a.abs().sum() > 0 for a in got)
    assert shared._entries == {}  # the step's KV is dropped once its backward ran
    # Without the final backward the prefix's share of the gradient is missing: the test can fail.
    partial = StepPrefix(bb.llm.model)
    partial.backward = lambda: partial._entries.clear()
    _, short = _grads(bb, partial)
    assert not all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(short, want, strict=True))


def test_a_step_shared_prefix_is_refused_on_several_processes(tmp_path, bb):
    from mmagent.training.loop import OneProcess, train_steps
    from mmagent.training.step_prefix import StepPrefix

    class Two(OneProcess):
        num_processes = 2

    with pytest.raises(ValueError, match="step-shared prefix: single-process"):
        train_steps(bb, [], [], ToolTuningConfig(out=tmp_path), procs=Two(), step_prefix=StepPrefix(bb.llm.model))
