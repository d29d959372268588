"""The README's tools example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tools_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## Tools: typed tools"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    Image.new("RGB", (10, 10), (100, 150, 200)).save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMAGENT_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - the documented example
    r = ns["r"]
    assert r.ok and abs(r.output["mean"] - 150) < 1 and ns["img"] == "image_1"
