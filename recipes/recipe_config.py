"""Recipe configs: a YAML file checked against the recipe's pydantic model, plus `key=value` overrides.

Overrides use dotted keys and YAML values (`lora.r=8`, `steps=20`, `data.dir=null`), so a command
line can change anything the file sets without a flag per field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

C = TypeVar("C", bound=BaseModel)


def apply_override(tree: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise ValueError(f"override {item!r} is not key=value (e.g. steps=20 or lora.r=8)")
    key, raw = item.split("=", 1)
    node = tree
    *parents, leaf = key.strip().split(".")
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {item!r}: {p} is not a section")
    node[leaf] = yaml.safe_load(raw)


def load_config(cls: type[C], path: Path | None, overrides: list[str] | tuple[str, ...] = ()) -> C:
    """Reads `path` (or the model's defaults), applies overrides, validates; errors name the field."""
    tree: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist (configs ship in recipes/configs/)")
        tree = yaml.safe_load(path.read_text()) or {}
        if not isinstance(tree, dict):
            raise ValueError(f"config file {path} must hold a YAML mapping")
    for item in overrides:
        apply_override(tree, item)
    try:
        return cls.model_validate(tree)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(top)"
        raise ValueError(f"config {path or '(defaults)'}: {where}: {first['msg']}") from None


def launch_command(path: Path) -> str:
    """The launch command a config file states on its first line (`# Launch: ...`)."""
    first = Path(path).read_text().splitlines()[0]
    if not first.startswith("# Launch:"):
        raise ValueError(f"{path}: the first line must be '# Launch: <command>'")
    return first.removeprefix("# Launch:").strip()
