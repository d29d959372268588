"""The training library's shared pieces: one `LoraSettings` for the model and the YAML (old key still
read, extra keys refused, tool tuning's dropout 0), and the one step loop both trainers run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from mmagent.model.lora import LoraSettings
from mmagent.training.config import ToolTuningConfig, dump_yaml

ROOT = Path(__file__).resolve().parents[1]


def test_one_lora_settings_class_reads_the_old_key_refuses_extras_and_tool_tuning_keeps_dropout_zero():
    assert isinstance(ToolTuningConfig().lora, LoraSettings) and ToolTuningConfig().lora.dropout == 0.0
    assert ToolTuningConfig.model_validate({"lora": {"r": 8, "alpha": 16}}).lora.dropout == 0.0  # a partial block too
    assert ToolTuningConfig.model_validate({"lora": {"dropout": 0.1}}).lora.dropout == 0.1
    assert LoraSettings().dropout == 0.05  # the model's own default is unchanged
    old = ToolTuningConfig.model_validate({"lora": {"targets": ["q_proj", "v_proj"]}})
    assert old.lora.target_modules == ["q_proj", "v_proj"]
    dumped = yaml.safe_load(dump_yaml(old))["lora"]
    assert "targets" not in dumped and dumped["target_modules"] == ["q_proj", "v_proj"]  # written with the new key
    assert ToolTuningConfig.model_validate(yaml.safe_load(dump_yaml(old))) == old
    for bad in ({"lora": {"rank": 4}}, {"lora": {"targets": ["a"], "target_modules": ["b"]}}):
        with pytest.raises(ValueError, match="Extra inputs"):
            ToolTuningConfig.model_validate(bad)
    shipped = yaml.safe_load((ROOT / "mmagent/weights/mmagent-default/recipe.yaml").read_text())
    assert ToolTuningConfig.model_validate(shipped).lora.target_modules[0] == "q_proj"


def test_extra_terms_are_refused_on_several_processes(tmp_path):
    from mmagent.training.backbone import Backbone
    from mmagent.training.loop import OneProcess, train_steps

    class Two(OneProcess):
        num_processes = 2

    lin = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="single-process"):
        train_steps(Backbone(lin, None), [], [], ToolTuningConfig(out=tmp_path), procs=Two(), terms={"x": lambda s: None})


def test_terms_are_added_each_step_checkpoints_saved_and_a_rerun_resumes(tmp_path):
    """On no conversations at all (a preference-only round), the loop trains the terms alone."""
    from mmagent.training.backbone import build_backbone
    from mmagent.training.loop import train_steps

    cfg = ToolTuningConfig.model_validate({"tiny": {}, "out": tmp_path, "steps": 3, "save_every": 2, "lora": {"r": 2, "alpha": 4},
                                           "adapter_name": "learn"})
    bb = build_backbone(cfg)
    w = next(p for p in bb.llm.parameters() if p.requires_grad)
    seen: list[tuple[int, float]] = []
    rows = train_steps(bb, [], [], cfg, terms={"pull": lambda step: ((w - 1) ** 2).sum()},
                       on_step=lambda step, row: seen.append((step, row["pull"])))
    assert [r["step"] for r in rows] == [1, 2, 3] and [s for s, _ in seen] == [1, 2, 3]
    assert seen[0][1] > seen[-1][1]  # the term is what is optimised
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step-00003"
    assert (tmp_path / "checkpoints" / "step-00002").is_dir()
    assert train_steps(bb, [], [], cfg) == []  # resumed at the end: nothing left to run


def test_bf16_runs_store_frozen_weights_as_autocast_casts_them_and_give_them_back(tmp_path):
    """Same loss and gradients as autocast over fp32 weights (the stored values are its casts), the LM
    head tied to the embeddings left fp32, and the original tensors restored after the run."""
    from mmagent.training.backbone import build_backbone, frozen_weights_in
    from mmagent.training.loss import AssistantLoss

    cfg = ToolTuningConfig.model_validate({"tiny": {}, "out": tmp_path, "lora": {"r": 2, "alpha": 4}})
    bb = build_backbone(cfg)
    before = {n: p.detach().clone() for n, p in bb.llm.named_parameters()}
    loss = AssistantLoss(bb.llm)
    g = torch.Generator().manual_seed(0)
    prefix, ids = torch.randint(0, 100, (1, 5), generator=g), torch.randint(0, 100, (2, 7), generator=g)
    pos = torch.arange(5, 12).expand(2, 7)
    mask = torch.ones(7, 12, dtype=torch.bool).tril(5)[None, None].expand(2, 1, 7, 12)

    def run() -> tuple[float, list[torch.Tensor]]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            total, _ = loss(prefix, ids, ids, pos, mask)
        total.backward()
        grads = [p.grad.clone() for p in bb.trainable()]
        bb.llm.zero_grad(set_to_none=True)
        return total.item(), grads

    ref = run()
    with frozen_weights_in(bb, torch.bfloat16):
        frozen = [p for p in bb.llm.parameters() if not p.requires_grad and p.dim() == 2]
        assert {p.dtype for p in frozen} == {torch.bfloat16, torch.float32}  # the tied embedding / LM head stays fp32
        assert bb.llm.get_input_embeddings().weight.dtype == torch.float32
        got = run()
    assert got[0] == ref[0] and all(torch.equal(a, b) for a, b in zip(got[1], ref[1]))
    after = dict(bb.llm.named_parameters())
    assert all(after[n].dtype == t.dtype and torch.equal(after[n], t) for n, t in before.items())
