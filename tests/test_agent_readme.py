"""The README's custom-agent example runs as written (on the scripted model it uses)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def agent_example() -> str:
    section = README.read_text().split("## The agent", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    code = agent_example()
    assert len(code.strip().splitlines()) <= 20
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    assert capsys.readouterr().out.strip() == "21 °C is 69.8 °F. {'result': 69.8}"
    result = scope["result"]
    assert result.status == "ok" and result.calls[0].name == "to_fahrenheit"
    assert result.calls[0].arguments == {"celsius": 21}
