"""Tool tuning on a tiny random Llama: packing is exact, labels sit on assistant turns, the recipe
trains end to end (loss goes down), and a killed run resumes to the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mmagent.recipes.recipe_config import load_config
from mmagent.recipes.tool_tuning import load_conversations, train
from mmagent.training.backbone import build_backbone
from mmagent.training.batching import collate, pack
from mmagent.training.config import ToolTuningConfig
from mmagent.training.data import tool_schemas
from mmagent.training.loss import AssistantLoss
from mmagent.training.sequences import IGNORE, encode, system_prefix
from safetensors.torch import load_file

from mmagent.protocol.chat import Message, ToolCall

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


@pytest.fixture(scope="module")
def tiny():
    cfg = load_config(ToolTuningConfig, CONFIGS / "tools-tiny-cpu.yaml")
    bb = build_backbone(cfg)
    tools = tool_schemas()
    return cfg, bb, tools, system_prefix(bb.tok, tools)


def test_labels_cover_exactly_the_assistant_turns(tiny):
    _, bb, tools, prefix = tiny
    call = ToolCall(name="read_text", arguments={"image": "image_1"})
    msgs = [Message(role="user", content="read it", images=["image_1"]), Message(role="assistant", tool_calls=[call]),
            Message(role="tool", name="read_text", content="<tool_response>{}</tool_response>"), Message(role="assistant", content="It says STOP.")]
    enc = encode(bb.tok, msgs, tools, prefix)
    trained = bb.tok.decode([t for t, lab in zip(enc.ids, enc.labels) if lab != IGNORE])
    assert '<tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>' in trained
    assert "It says STOP." in trained and "read it" not in trained and "tool_response" not in trained
    assert trained.count("<|im_end|>") == 2  # the model learns to end its turns


def test_shared_prefix_and_packing_compute_the_same_loss_as_full_rows(tiny):
    _, bb, tools, prefix = tiny
    data = [encode(bb.tok, c.messages, tools, prefix) for c in load_conversations(ToolTuningConfig(tiny={}, data={"n_train": 5}), "train", 5)]
    plain = collate(prefix, [[e] for e in data], 4096, bb.tok.pad_token_id)
    packed = collate(prefix, pack(data, 4096), 4096, bb.tok.pad_token_id)
    assert packed.input_ids.shape[0] < plain.input_ids.shape[0]
    with torch.no_grad():
        full, n_full = AssistantLoss(bb.llm, share_prefix=False)(plain.prefix, plain.input_ids, plain.labels, plain.position_ids, plain.attention_mask)
        shared, n_shared = AssistantLoss(bb.llm)(packed.prefix, packed.input_ids, packed.labels, packed.position_ids, packed.attention_mask)
    assert int(n_full) == int(n_shared) > 0
    assert float(shared) == pytest.approx(float(full), rel=1e-4)


def _metrics(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_tiny_cpu_recipe_trains_and_resumes_to_the_same_adapter(tmp_path):
    cfg = load_config(ToolTuningConfig, CONFIGS / "tools-tiny-cpu.yaml", [f"out={tmp_path / 'a'}", "steps=4", "save_every=2"])
    result = train(cfg)
    rows = [r for r in _metrics(cfg.out) if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert (cfg.out / "loss.png").stat().st_size > 1000
    final = load_file(result / "adapter_model.safetensors")
    assert final and all(v.dtype == torch.float16 for v in final.values())

    # A run killed after step 2: only its step-2 checkpoint exists. Resuming must land on the same weights.
    killed = tmp_path / "b"
    (killed / "checkpoints").mkdir(parents=True)
    import shutil

    shutil.copytree(cfg.out / "checkpoints" / "step-00002", killed / "checkpoints" / "step-00002")
    (killed / "checkpoints" / "latest").write_text("step-00002")
    resumed = train(cfg.model_copy(update={"out": killed}))
    assert [r["step"] for r in _metrics(killed) if "loss" in r] == [3, 4]
    again = load_file(resumed / "adapter_model.safetensors")
    assert again.keys() == final.keys()
    for k in final:
        torch.testing.assert_close(again[k].float(), final[k].float(), atol=2e-3, rtol=1e-2)


def test_every_recipe_yaml_validates_against_its_config_and_states_its_launch_command():
    from mmagent.recipes.align import AlignConfig
    from mmagent.recipes.recipe_config import launch_command

    models = {"tools-": ToolTuningConfig, "align-": AlignConfig}
    checked = 0
    for path in sorted(CONFIGS.glob("*.yaml")):
        cls = next((c for p, c in models.items() if path.name.startswith(p)), None)
        if cls is None:
            continue  # other recipes' configs (digits-*) and launcher configs are checked by their owners
        assert "mmagent" in launch_command(path) or "accelerate" in launch_command(path)
        load_config(cls, path)
        checked += 1
    assert checked >= 5


def test_overrides_and_bad_configs_say_what_is_wrong(tmp_path):
    cfg = load_config(ToolTuningConfig, CONFIGS / "tools-tiny-cpu.yaml", ["lora.r=4", "steps=3", "data.dir=null"])
    assert cfg.lora.r == 4 and cfg.steps == 3 and cfg.data.dir is None
    with pytest.raises(ValueError, match="not key=value"):
        load_config(ToolTuningConfig, None, ["steps"])
    with pytest.raises(ValueError, match="lora.r"):
        load_config(ToolTuningConfig, None, ["lora.r=0"])
    with pytest.raises(ValueError, match="bogus"):
        load_config(ToolTuningConfig, None, ["bogus=1"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(ToolTuningConfig, tmp_path / "nope.yaml")


def test_train_cli_runs_a_recipe_and_refuses_bad_configs(tmp_path):
    from mmagent.cli.app import app
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, ["train", "tool-tuning", "--config", str(CONFIGS / "tools-tiny-cpu.yaml"), f"out={tmp_path}", "steps=2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["steps"] == 2 and Path(out["result"]).is_dir()
    r = CliRunner().invoke(app, ["train", "tool-tuning", "--config", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(app, ["train", "align", "--config", str(CONFIGS / "align-tiny-cpu.yaml"), "steps=0"])
    assert r.exit_code == 2 and "steps" in r.output
    r = CliRunner().invoke(app, ["train", "--help"])
    assert r.exit_code == 0 and "tool-tuning" in r.output and "align" in r.output
