"""The locked install and pyproject.toml cannot drift apart: every dependency pyproject names
(with the test extras CI installs) is pinned in requirements.lock at a version its range allows,
each pin carries a hash, and torch (installed by its exact pin, see scripts/setup.sh) stays out."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def locked(path: Path) -> dict[str, str]:
    """{canonical name: version} of a pip-compile lock; fails on a pin without a hash."""
    text = path.read_text()
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = PIN.match(block)
        if m:
            assert "--hash=sha256:" in block, f"{m.group(1)} is pinned without a hash in {path.name}"
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


LOCK = locked(ROOT / "requirements.lock")


@pytest.mark.parametrize("req", [r for r in declared() if r.name != "torch"], ids=lambda r: r.name)
def test_every_dependency_is_locked_inside_its_range(req: Requirement):
    version = LOCK.get(canonicalize_name(req.name))
    assert version is not None, f"{req.name} is in pyproject.toml but not in requirements.lock; run scripts/lock.sh"
    assert req.specifier.contains(version, prereleases=True), (
        f"requirements.lock pins {req.name}=={version}, outside pyproject's {req.specifier}; run scripts/lock.sh")


def test_torch_is_pinned_exactly_and_left_out_of_the_lock():
    torch = next(r for r in declared() if r.name == "torch")
    assert str(torch.specifier).startswith("=="), "torch needs an exact pin: a range pulls the newest CUDA build"
    assert "torch" not in LOCK, "torch is installed by its pyproject pin, not from the lock (its hash names one build)"


def test_rapidocr_is_locked_and_installed_without_its_declared_deps():
    pins = locked(ROOT / "requirements-nodeps.lock")
    assert set(pins) == {"rapidocr-onnxruntime"}
    assert "opencv-python" not in LOCK, "the GUI opencv-python would shadow opencv-python-headless"
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "--no-deps --require-hashes -r requirements.lock" in setup
    assert "--no-deps --require-hashes -r requirements-nodeps.lock" in setup


def test_the_lock_matches_this_install():
    """What is installed here is what the lock says (a hand-installed upgrade shows up here)."""
    from importlib.metadata import PackageNotFoundError, version

    wrong = {}
    for name, pinned in LOCK.items():
        try:
            got = version(name)
        except PackageNotFoundError:
            got = None
        if got != pinned:
            wrong[name] = (pinned, got)
    assert not wrong, f"installed versions differ from requirements.lock (locked, installed): {wrong}; run scripts/setup.sh"
