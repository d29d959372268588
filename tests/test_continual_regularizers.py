"""O-LoRA and EWC on a tiny random Llama with peft LoRA (2 layers, hidden 64)."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from mmagent.continual.ewc import EWCRegularizer, fisher_diagonal, lora_parameters
from mmagent.continual.olora import OrthogonalRegularizer, orthogonal_penalty, previous_A, stack_adapters

TARGETS = ["q_proj", "v_proj"]


def _tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def _lora(model, r=4, alpha=8, seed=1):
    torch.manual_seed(seed)
    pm = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGETS, lora_dropout=0.0))
    for n, p in pm.named_parameters():  # non-zero B so the adapter changes the output
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.05)
    return pm


def _ids(seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 97, (2, 12), generator=g)


def _lm_loss(model, ids):
    return model(input_ids=ids, labels=ids).loss


def test_stacked_adapter_equals_prev_plus_new(tmp_path):
    ids = _ids()
    prev = _lora(_tiny_llama(), r=4, alpha=8, seed=1)
    prev.save_pretrained(tmp_path / "prev")
    # Train-time view: prev merged into the base, then a fresh adapter with a different scale.
    merged = PeftModel.from_pretrained(_tiny_llama(), tmp_path / "prev").merge_and_unload()
    new = _lora(merged, r=2, alpha=6, seed=3)
    new.save_pretrained(tmp_path / "new")
    with torch.no_grad():
        want = new(input_ids=ids).logits
    stack_adapters(tmp_path / "prev", tmp_path / "new", tmp_path / "stacked")
    served = PeftModel.from_pretrained(_tiny_llama(), tmp_path / "stacked").eval()
    with torch.no_grad():
        got = served(input_ids=ids).logits
    assert served.peft_config["default"].r == 6
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_orthogonal_penalty_zero_for_orthogonal_rows_and_pushes_overlap_down(tmp_path):
    prev = _lora(_tiny_llama(), seed=1)
    prev.save_pretrained(tmp_path / "prev")
    a_prev = previous_A(tmp_path / "prev")
    assert len(a_prev) == 2 * len(TARGETS)
    model = _lora(_tiny_llama(), seed=5)
    for n, p in lora_parameters(model).items():  # make every new A orthogonal to its previous A
        if "lora_A" in n:
            key = n.split(".lora_")[0].removeprefix("base_model.model.")
            q, _ = torch.linalg.qr(a_prev[key].T)  # [d_in, r_p] orthonormal basis of prev rows
            with torch.no_grad():
                p.copy_(p - (p @ q) @ q.T)
    assert orthogonal_penalty(model, a_prev).item() == pytest.approx(0.0, abs=1e-8)

    model = _lora(_tiny_llama(), seed=5)
    reg = OrthogonalRegularizer(tmp_path / "prev", lam=1.0)
    opt = torch.optim.Adam(list(lora_parameters(model).values()), lr=0.02)
    start = reg.penalty(model).item()
    for _ in range(50):
        opt.zero_grad()
        reg.penalty(model).backward()
        opt.step()
    assert start > 0 and reg.penalty(model).item() < 0.2 * start


def test_ewc_fisher_and_penalty_anchor_the_weights():
    model = _lora(_tiny_llama(), seed=1)
    model.train()
    fisher = fisher_diagonal(model, [_ids(s) for s in range(3)], _lm_loss)
    assert set(fisher) == set(lora_parameters(model)) and all((f >= 0).all() for f in fisher.values())
    assert sum(f.sum() for f in fisher.values()) > 0
    reg = EWCRegularizer(model, fisher, lam=10.0)
    assert reg.penalty(model).item() == 0.0  # at the anchor
    with torch.no_grad():
        for p in lora_parameters(model).values():
            p.add_(0.1)
    moved = reg.penalty(model)
    assert moved.item() > 0
    moved.backward()  # gradients flow to the LoRA weights
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora_parameters(model).values())
    with pytest.raises(ValueError, match="at least one batch"):
        fisher_diagonal(model, [], _lm_loss)
