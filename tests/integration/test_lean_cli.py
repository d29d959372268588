"""The README's sign question as two real `mmagent run` processes: the first builds the decoder and
leaves it in the cache, the second serves from it without transformers' modeling stack or peft
(mmagent.model.lean_backbone) and answers the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PROBE = "import runpy, sys; sys.argv = ['mmagent'] + sys.argv[1:]; runpy.run_module('mmagent.cli', run_name='__main__')"


def _run(home: Path) -> tuple[dict, subprocess.CompletedProcess]:
    env = dict(os.environ, MMAGENT_HOME=str(home), OMP_NUM_THREADS="1", MMAGENT_DECODER_CACHE="1",
               PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", PROBE, "run", "What does this sign say?",
                           "--image", str(ROOT / "examples" / "sign.png"), "--json"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout), proc


def _imported(proc: subprocess.CompletedProcess, module: str) -> bool:
    return any(line.rstrip().endswith(f"| {module}") or line.rstrip().split("|")[-1].strip() == module
               for line in proc.stderr.splitlines() if line.startswith("import time:"))


def test_second_process_serves_from_the_decoder_cache(tmp_path):
    first, p1 = _run(tmp_path)
    assert list((tmp_path / "cache" / "decoders").glob("*.safetensors")), "the first run left no decoder cache"
    assert _imported(p1, "transformers.modeling_utils")
    second, p2 = _run(tmp_path)
    assert not _imported(p2, "transformers.modeling_utils") and not _imported(p2, "peft")
    assert second["answer"] == first["answer"]
    assert [c["name"] for c in second["calls"]] == [c["name"] for c in first["calls"]]


def test_lean_tokenizer_renders_and_encodes_the_default_like_transformers():
    from mmagent.tools.registry import default_registry
    from transformers import AutoTokenizer

    from mmagent.hub.catalog import CATALOG
    from mmagent.model.backbone import backbone_path
    from mmagent.model.lean_tokenizer import LeanTokenizer
    from mmagent.protocol.chat import Message, ToolCall
    from mmagent.protocol.toolcall import template_messages

    folder = backbone_path(CATALOG.get("smollm2-135m-instruct"))
    hf, lean = AutoTokenizer.from_pretrained(folder), LeanTokenizer.load(folder)
    msgs = [Message(role="system", content="You are mmagent."), Message(role="user", content="Qu'est-ce que ça dit ? 🚏", images=["image_1"]),
            Message(role="assistant", content="", tool_calls=[ToolCall(id="c1", name="read_text", arguments={"image": "image_1"})]),
            Message(role="tool", content='{"text": "MAIN STREET"}', tool_call_id="c1", name="read_text")]
    dicts = template_messages(msgs, default_registry().schemas())
    for gen in (True, False):
        text = hf.apply_chat_template(dicts, tokenize=False, add_generation_prompt=gen)
        assert lean.apply_chat_template(dicts, add_generation_prompt=gen) == text
        assert lean(text)["input_ids"] == list(hf(text, add_special_tokens=False)["input_ids"])
    ids = hf(text, add_special_tokens=False)["input_ids"]
    assert lean.decode(ids, skip_special_tokens=True) == hf.decode(ids, skip_special_tokens=True)


def test_a_promoted_version_is_served_from_the_decoder_cache_from_the_second_run(tmp_path):
    """After `mmagent learn` promoted a version, the first `mmagent run` builds the model and caches that
    version's decoder (mmagent.model.mmllm.MMLLM.set_adapter); the next one serves it lean."""
    import shutil

    from safetensors.torch import load_file, save_file

    from mmagent.continual.registry import AdapterRegistry
    from mmagent.hub.catalog import CATALOG

    candidate = tmp_path / "candidate"
    shutil.copytree(Path(CATALOG.get("mmagent-default").source.path) / "adapters" / "tools", candidate)
    weights = candidate / "adapter_model.safetensors"
    save_file({k: v * 1.01 if "lora_B" in k else v for k, v in load_file(str(weights)).items()}, str(weights))
    home = tmp_path / "home"
    registry = AdapterRegistry(home / "adapters")  # the default's versions (mmagent.continual.defaults.registry_root)
    registry.promote(registry.add(candidate).version)

    first, p1 = _run(home)
    assert _imported(p1, "peft")  # the version was loaded for real
    assert len([f for f in (home / "cache" / "decoders").glob("*.safetensors") if ".prefix." not in f.name]) == 2
    second, p2 = _run(home)
    assert not _imported(p2, "transformers.modeling_utils") and not _imported(p2, "peft")
    assert second["answer"] == first["answer"]
    assert [c["name"] for c in second["calls"]] == [c["name"] for c in first["calls"]]


FORECAST = {"type": "function", "function": {"name": "weather.forecast", "description": "Rain, sun and temperature forecast for a city and a day.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "day": {"type": "string", "enum": ["today", "tomorrow"]}},
                           "required": ["city"]}}}
PIZZA = {"type": "function", "function": {"name": "order_pizza", "description": "Order a pizza for delivery.",
         "parameters": {"type": "object", "properties": {"size": {"type": "string", "enum": ["small", "medium", "large"]},
                                                         "toppings": {"type": "array", "items": {"type": "string"}}}, "required": ["size"]}}}


def test_a_users_own_tool_is_called_by_the_open_world_adapter(tmp_path):
    """A real process: the user's schemas from a file, the default routes the reply to its open-world adapter
    (served from the decoder cache `models pull` wrote, like `tools`), and the call waits for the caller (exit 4)."""
    (tmp_path / "tools.json").write_text(json.dumps([FORECAST, PIZZA]))
    env = dict(os.environ, MMAGENT_HOME=str(tmp_path), OMP_NUM_THREADS="1", MMAGENT_DECODER_CACHE="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-c", PROBE, "run", "Will it rain in Lisbon tomorrow?", "--tools-json",
                           str(tmp_path / "tools.json"), "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    pending = json.loads(proc.stdout)["pending"]
    assert [(c["name"], c["arguments"].get("city")) for c in pending] == [("weather.forecast", "Lisbon")], pending
    assert json.loads(proc.stdout)["trace"][0]["adapter"] == "open-world"


PREFILL = """
from mmagent import Agent
from mmagent.backends import load_chat_model
assert load_chat_model("mmagent-default").model.cache_decoders()
with Agent() as agent:  # served from the cache now, as `mmagent models pull --all` does it
    agent.prefill_prompt()
"""
TURN = """
import json, sys
from mmagent import Agent
from mmagent.model.mmllm import MMLLM

reused, generate = [], MMLLM.generate
def recorded(self, *args, **kwargs):  # the positions each step's prefill took from the cache
    out = generate(self, *args, **kwargs)
    reused.append(self.decoder().reused)
    return out
MMLLM.generate = recorded
with Agent() as agent:
    result = agent.run("What does this sign say?", images=[sys.argv[1]])
print(json.dumps({"answer": result.answer, "reused": reused}))
"""


def test_the_prompt_prefix_saved_at_pull_is_reused_by_the_first_turn(tmp_path):
    """`Agent.prefill_prompt` in a process served from the decoder cache saves the tool prompt's KV; the
    first step of the next process prefills only what follows it (the request's words and the image)."""
    env = dict(os.environ, MMAGENT_HOME=str(tmp_path), OMP_NUM_THREADS="1", MMAGENT_DECODER_CACHE="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-c", PREFILL], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "cache" / "decoders").glob("*.prefix.safetensors")), "no prompt prefix was saved"
    proc = subprocess.run([sys.executable, "-c", TURN, str(ROOT / "examples" / "sign.png")], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["reused"][0] > 500, out  # the system prompt and the tool signatures (~750 of the ~800 tokens)
    assert "MAIN STREET" in out["answer"].upper()
