"""MM alignment on a tiny random MM-LLM: only the projector moves, the caption loss goes down, and
the export is an MM-LLM folder that loads."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from mmagent.recipes.align import AlignConfig, captions, train
from mmagent.recipes.recipe_config import load_config
from tiny_mmllm import tiny_mmllm

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


def test_captions_are_true_of_their_drawings():
    caps = captions(30, seed=0)
    assert len({c for _, _, c in caps}) > 10
    assert any(c.startswith("A photo of a") for _, _, c in caps) and any("digit" in c for _, _, c in caps)


def test_align_trains_only_the_projector_and_exports_a_loadable_folder(tmp_path):
    from mmagent.model.mmllm import MMLLM

    mm = tiny_mmllm()
    llm_before = {k: v.clone() for k, v in mm.llm.state_dict().items()}
    proj_before = {k: v.clone() for k, v in mm.projector.state_dict().items()}
    cfg = load_config(AlignConfig, CONFIGS / "align-tiny-cpu.yaml", [f"out={tmp_path}", "steps=8", "n_train=4"])
    export = train(cfg, mm=mm)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses, val = [r["loss"] for r in rows if "loss" in r], [r["val_loss"] for r in rows if "val_loss" in r]
    assert losses[-1] < losses[0] and len(val) == 2 and val[1] < val[0]  # held-out captions, before and after
    assert all(torch.equal(v, mm.llm.state_dict()[k]) for k, v in llm_before.items())
    assert any(not torch.equal(v, mm.projector.state_dict()[k]) for k, v in proj_before.items())
    again = MMLLM.from_pretrained(export, llm=mm.llm, tokenizer=mm.tokenizer, encoder=mm.encoder)
    for k, v in mm.projector.state_dict().items():
        torch.testing.assert_close(again.projector.state_dict()[k], v)
