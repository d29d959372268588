"""DPO / KTO as written in `mmagent/continual/preference.py`, checked against the papers' formulas
computed directly: sequence log-probs from a plain full forward of a tiny MM-LLM (images spliced),
the losses from Rafailov et al. 2023 eq. 7 and Ethayarajh et al. 2024 eq. 8 in scalar math."""

from __future__ import annotations

import math

import pytest
import torch
from continual_fakes import registry
from tiny_mmllm import color_image, tiny_mmllm

from mmagent.continual.dataset import Example
from mmagent.continual.preference import (
    PreferenceObjective,
    PrefItem,
    build_objective,
    dpo_loss,
    kto_loss,
    kto_reference_point,
    kto_weights,
    sequence_logps,
)
from mmagent.continual.update import UpdateConfig
from mmagent.protocol.chat import Message, ToolCall


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_dpo_loss_is_eq_7():
    pw, pl, rw, rl = [-3.0, -10.0], [-5.0, -2.0], [-4.0, -9.0], [-4.5, -2.5]
    got = dpo_loss(*(torch.tensor(v) for v in (pw, pl, rw, rl)), beta=0.3)
    for i in range(2):
        want = -math.log(_sigmoid(0.3 * (pw[i] - rw[i]) - 0.3 * (pl[i] - rl[i])))
        assert got[i].item() == pytest.approx(want, rel=1e-6)


def test_kto_loss_is_eq_8_with_a_detached_clamped_reference_point():
    pol = torch.tensor([-2.0, -6.0, -1.0], requires_grad=True)
    ref = torch.tensor([-3.0, -4.0, -1.5])
    desirable = torch.tensor([True, False, True])
    mis_pol = torch.tensor([-8.0, -7.0], requires_grad=True)
    z0 = kto_reference_point(mis_pol, torch.tensor([-8.5, -7.1]))
    assert z0.item() == pytest.approx(0.3) and not z0.requires_grad  # mean(0.5, 0.1), not back-propagated
    assert kto_reference_point(torch.tensor([-9.0]), torch.tensor([-8.0])).item() == 0.0  # clamped at 0
    lam_d, lam_u, beta = 1.5, 1.0, 0.2
    got = kto_loss(pol, ref, desirable, z0, beta, lam_d, lam_u)
    for i, d in enumerate([True, False, True]):
        r = pol[i].item() - ref[i].item()
        v = lam_d * _sigmoid(beta * (r - 0.3)) if d else lam_u * _sigmoid(beta * (0.3 - r))
        assert got[i].item() == pytest.approx((lam_d if d else lam_u) - v, rel=1e-6)
    got.sum().backward()
    assert pol.grad[0] < 0 and pol.grad[1] > 0  # raises desirable log-probs, lowers undesirable ones
    assert kto_weights(2, 6) == (3.0, 1.0) and kto_weights(0, 4) == (1.0, 1.0)  # lambda_D n_D / (lambda_U n_U) = 1


@pytest.fixture(scope="module")
def bb():
    from mmagent.training.backbone import Backbone

    mm = tiny_mmllm()
    return Backbone(mm.llm, mm.tokenizer, mm)


def _example(prompt: str, call: ToolCall | None, answer: str = "", images: int = 1, label: str = "desirable", **kw) -> Example:
    return Example(prompt=prompt, images=[f"image_{i + 1}" for i in range(images)], calls=[call] if call else [], answer=answer,
                   label=label, feedback_id=1, turn_id="t", **kw)


def _conv(ex: Example, messages: list[Message]):
    from mmagent.training.data import Conversation

    return Conversation(messages, {aid: color_image((200, 30 * i, 30)) for i, aid in enumerate(ex.images)})


def _direct_logp(bb, ex: Example, messages: list[Message], tools) -> float:
    """log pi(y|x) from the MM-LLM's own full forward (no prefix sharing, no packing): the reference."""
    inp = bb.mm.build_inputs(messages, tools, artifacts=_conv(ex, messages).images)
    pixels = bb.mm.encoder.preprocess([_conv(ex, messages).images[i] for m in messages for i in m.images]) if ex.images else None
    with torch.no_grad():
        logits = bb.mm(inp.input_ids[None], pixel_values=pixels).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    labels = inp.labels
    return sum(logp[t - 1, labels[t]].item() for t in range(1, len(labels)) if labels[t] != -100)


def _rc():
    from mmagent.training.config import ToolTuningConfig

    return ToolTuningConfig(max_len=512, pack=False)


def test_sequence_logps_match_a_plain_forward_with_images(bb):
    from mmagent.training.batching import make_batch
    from mmagent.training.data import encode_all
    from mmagent.training.sequences import system_prefix

    tools = registry().schemas()
    exs = [_example("read the sign", ToolCall(name="read_text", arguments={"image": "image_1"})),
           _example("two photos: faces?", ToolCall(name="detect_faces", arguments={"image": "image_2"}), images=2),
           _example("hello there", None, answer="Hi! How can I help?", images=0)]
    prefix = system_prefix(bb.tok, tools)
    samples = encode_all(bb, [_conv(e, e.messages()) for e in exs], tools, prefix)
    b, px = make_batch(bb, prefix, samples, _rc())
    with torch.no_grad():
        got = sequence_logps(bb.llm, bb.mm, b, px)
    for i, e in enumerate(exs):
        assert got[i].item() == pytest.approx(_direct_logp(bb, e, e.messages(), tools), abs=1e-3)


def test_objective_at_step_zero_and_one_step_moves_the_right_way(bb):
    """Policy = reference before any step: DPO = log 2 per pair, KTO = lambda/2 (z_0 = 0); a gradient
    step raises the chosen / desirable log-probs relative to the rejected / undesirable ones."""
    from mmagent.model import lora
    from mmagent.training.sequences import system_prefix

    tools = registry().schemas()
    rt, df = ToolCall(name="read_text", arguments={"image": "image_1"}), ToolCall(name="detect_faces", arguments={"image": "image_1"})
    pair = _example("read the sign", rt, rejected_calls=[df])
    up = _example("what does it say", rt)
    down = _example("read this label", df, label="undesirable")
    assert (pair.kind, up.kind, down.kind) == ("pair", "desirable", "undesirable")
    if "learn" not in lora.adapter_names(bb.llm):
        lora.add_adapter(bb.llm, "learn", lora.LoraSettings(r=4, alpha=8, dropout=0.0))
    for n, p in bb.llm.named_parameters():
        p.requires_grad_(".learn." in n)
    bb.llm.eval()
    cfg = UpdateConfig(method="preference", pref_beta=0.5, pref_batch=3)
    prefix = system_prefix(bb.tok, tools)
    obj = build_objective(bb, [pair, up, down], tools, prefix, _rc(), cfg, _conv)
    assert isinstance(obj, PreferenceObjective) and [i.kind for i in obj.items] == ["pair", "desirable", "undesirable"]
    # Reference log-probs are the direct formula's too (pair chosen, pair rejected, up, up's mismatched = down's target).
    assert obj.ref[0].item() == pytest.approx(_direct_logp(bb, pair, pair.messages(), tools), abs=1e-3)
    assert obj.ref[1].item() == pytest.approx(_direct_logp(bb, pair, pair.rejected_messages(), tools), abs=1e-3)
    assert obj.ref[3].item() == pytest.approx(_direct_logp(bb, up, up.messages(target_of=down), tools), abs=1e-3)
    loss = obj.loss(0)
    want = (math.log(2) + 0.5 + 0.5) / 3  # mean over items: DPO log 2; KTO lambda - lambda * sigmoid(0) with lambda 1
    assert loss.item() == pytest.approx(want, abs=1e-4)
    opt = torch.optim.SGD([p for p in bb.llm.parameters() if p.requires_grad], lr=0.5)
    for step in range(3):
        opt.zero_grad()
        obj.loss(step).backward()
        opt.step()
    with torch.no_grad():
        now = obj._logps(list(range(len(obj.samples))))
    r = now - obj.ref
    assert r[0] - r[1] > 0  # the correction gained on what the model did
    assert r[2] > r[4]  # the thumbs-up gained on the thumbs-down
    lora.set_adapter(bb.llm, None)


def test_objective_is_none_without_preference_items(bb):
    assert build_objective(bb, [], [], [], _rc(), UpdateConfig(), _conv) is None
    assert PrefItem("pair", [0, 1]).kind == "pair"
