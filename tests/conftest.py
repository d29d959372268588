"""Test-wide settings: one torch thread, a throwaway MMAGENT_HOME, and a model cache shared
across runs (integration tests provision the embedded models into it on first use)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before anything imports torch: 2-core machines oversubscribe badly (20-80x slower, measured).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ["MMAGENT_HOME"] = tempfile.mkdtemp(prefix="mmagent-test-home-")
os.environ.setdefault("MMAGENT_CACHE_DIR", str(Path.home() / ".cache" / "mmagent-test-models"))
os.environ.setdefault("MMAGENT_THREADS", "1")
# Off unless a test turns it on (tests/test_lean_serving.py, tests/integration/test_lean_cli.py): every
# other test loads models the full way, and a session does not leave ~0.5 GB decoders in its temp home.
os.environ.setdefault("MMAGENT_DECODER_CACHE", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_settings():
    """Settings are cached per process; tests that change env vars get a fresh read."""
    from mmagent.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
