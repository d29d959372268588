"""`mmagent models` through Typer's CliRunner, and the console script as a real subprocess."""

import json
import os
import subprocess
import sys

from mmagent.cli.app import app
from typer.testing import CliRunner

runner = CliRunner()


def test_models_list_json_names_every_embedded_entry():
    res = runner.invoke(app, ["models", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert set(rows) >= {"smollm2-135m-instruct", "minilm-l6", "efficientnet-lite0", "ppocr-v4"}
    embedded = [r for r in rows.values() if r["kind"] != "mmllm"]  # composed models have no wheel of their own
    assert all(r["size_bytes"] > 0 and isinstance(r["present"], bool) for r in embedded)


def test_models_list_table():
    res = runner.invoke(app, ["models", "list"])
    assert res.exit_code == 0 and "minilm-l6" in res.output


def test_models_pull_needs_a_name_or_all():
    res = runner.invoke(app, ["models", "pull"])
    assert res.exit_code == 2 and "--all" in res.output


def test_unknown_model_is_one_line_and_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "mmagent.cli", "models", "pull", "gpt-7"], capture_output=True, text=True, env=dict(os.environ)
    )
    assert proc.returncode == 2
    assert "known names" in proc.stderr and "Traceback" not in proc.stderr


def test_doctor_names_the_cpu_and_the_path_chosen_for_it(monkeypatch):
    import json

    from mmagent.cli.app import app
    from typer.testing import CliRunner

    from mmagent.model import cpu

    avx2 = cpu.CpuFeatures(capability="AVX2", native_bf16=False, amx=False, vnni=False)
    monkeypatch.setattr(cpu, "cpu_features", lambda: avx2)
    res = CliRunner().invoke(app, ["models", "doctor", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    from mmagent.model import ort_decode

    steps = "int8 decode on onnxruntime" if ort_decode.available() else "int8 decode"
    assert report["cpu"] == "avx2" and report["mmagent_default_path"] == f"{steps} + float32 prefill"
    assert cpu.training_precision("auto") == ("bf16" if __import__("torch").cuda.is_available() else "fp32")


def test_doctor_says_which_choices_the_config_forces():
    from cli.models import _chosen_by

    from mmagent.model.mmllm import MMLLMConfig

    base = MMLLMConfig.model_fields
    assert base["prefill_dtype"].default == "auto" and base["decode_kernel"].default == "auto"
    auto = MMLLMConfig.model_construct(prefill_dtype="auto", decode_kernel="auto")
    forced = MMLLMConfig.model_construct(prefill_dtype="auto", decode_kernel="torch")
    assert _chosen_by(auto) == "cpu capability"
    assert _chosen_by(forced) == "config (decode_kernel=torch)"
