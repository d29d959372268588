"""Adapter registry: versions, lineage, atomic promote/rollback; gate rule; MFT/MFN/BWT."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from continual_fakes import lora_folder

from mmagent.continual.gate import GateConfig, decide, run_gate
from mmagent.continual.metrics import RoundScores, continual_metrics
from mmagent.continual.registry import AdapterRegistry, RegistryError


def _fake_adapter(d: Path, tag: str) -> Path:
    return lora_folder(d, tag)  # promote loads a version before it serves: a fake must load


def test_add_promote_rollback_lineage(tmp_path):
    reg = AdapterRegistry(tmp_path / "adapters")
    assert reg.serving() is None and reg.list() == []
    v1 = reg.add(_fake_adapter(tmp_path / "a1", "one"), method="base", data_hash="h1")
    v2 = reg.add(_fake_adapter(tmp_path / "a2", "two"), parent=v1.version, method="replay", data_hash="h2")
    assert [r.version for r in reg.list()] == ["v0001", "v0002"]
    assert reg.lineage(v2.version) == ["v0002", "v0001"]
    assert reg.get("v0002").data_hash == "h2"
    reg.promote("v0001")
    reg.promote("v0002")
    s = reg.serving()
    assert s.version == "v0002" and json.loads((s.path / "adapter_config.json").read_text())["tag"] == "two"
    assert reg.rollback().version == "v0001"
    assert reg.serving().version == "v0001"
    assert reg.rollback() is None and reg.serving() is None
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()


def test_unknown_version_and_incomplete_adapter(tmp_path):
    reg = AdapterRegistry(tmp_path)
    with pytest.raises(RegistryError, match="unknown adapter version 'v9'"):
        reg.promote("v9")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match="not a complete peft adapter"):
        reg.add(tmp_path / "empty")
    assert reg.list() == []


def test_interrupted_promotion_keeps_old_version(tmp_path, monkeypatch):
    reg = AdapterRegistry(tmp_path)
    reg.add(_fake_adapter(tmp_path / "a1", "one"))
    reg.add(_fake_adapter(tmp_path / "a2", "two"))
    reg.promote("v0001")

    def killed(*a, **k):
        raise KeyboardInterrupt  # the process dies right before the rename

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        reg.promote("v0002")
    monkeypatch.undo()
    assert reg.serving().version == "v0001"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".current")]  # no temp left behind


def test_disk_full_during_add_leaves_nothing(tmp_path, monkeypatch):
    import shutil

    reg = AdapterRegistry(tmp_path / "reg")
    reg.add(_fake_adapter(tmp_path / "a1", "one"))

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copytree", full)
    with pytest.raises(OSError, match="No space"):
        reg.add(_fake_adapter(tmp_path / "a2", "two"))
    monkeypatch.undo()
    assert [r.version for r in reg.list()] == ["v0001"]
    assert not [p for p in (tmp_path / "reg" / "versions").iterdir() if p.name.startswith(".")]


def test_gate_rule():
    cfg = GateConfig(max_regression_drop=1.0, min_learning_gain=10.0)
    assert decide(80.0, 79.0, 20.0, 60.0, cfg).promote
    bad = decide(80.0, 78.5, 20.0, 60.0, cfg)
    assert not bad.promote and "FAIL" in bad.reasons[0]
    weak = decide(80.0, 80.0, 20.0, 25.0, cfg)
    assert not weak.promote and "FAIL" in weak.reasons[1]


def test_run_gate_uses_evaluator_and_refuses_empty_learning_set(tmp_path):
    scores = {None: {"reg": 90.0, "new": 10.0}, tmp_path: {"reg": 90.0, "new": 70.0}}
    ev = lambda adapter, items: scores[adapter][items[0]]  # noqa: E731
    rep = run_gate(ev, None, tmp_path, ["reg"], ["new"], GateConfig(min_learning_gain=20))
    assert rep.promote and rep.learning_gain == 60.0
    with pytest.raises(ValueError, match="no held-out feedback"):
        run_gate(ev, None, tmp_path, ["reg"], [], GateConfig())


def test_continual_metrics_by_hand():
    hist = [
        RoundScores(round=0, task="a", scores={"a": 80}),
        RoundScores(round=1, task="b", scores={"a": 70, "b": 90}),
        RoundScores(round=2, task="c", scores={"a": 60, "b": 85, "c": 50}),
    ]
    rep = continual_metrics(hist)
    assert rep.mft == pytest.approx((80 + 90 + 50) / 3, abs=1e-3)
    assert rep.mfn == pytest.approx((60 + 85 + 50) / 3, abs=1e-3)
    assert rep.bwt == pytest.approx(((60 - 80) + (85 - 90)) / 2)
    assert continual_metrics([]).mft is None
    assert continual_metrics(hist[:1]).bwt is None
