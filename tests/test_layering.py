"""Imports flow one way (README, "Architecture"): this test reads every module's imports (module
level and inside functions) and checks them against the layers, lowest first:

    protocol   mmagent.protocol.chat, toolcall, constrained, errors, atomic, config
    hub        mmagent.hub.catalog, provision
    model      the MM-LLM's parts: mmllm, encoders, projectors, generation, llama_decoder, lora ...
    tools / memory
    backends   mmagent.backends.*
    training   mmagent.training.*: the library the recipes and continual learning share (encoding,
               batching, loss, optimizer, checkpoints, export, suite scoring)
    agent      mmagent.agent.*
    continual / recipes
    entry      mmagent.cli.*, serving surfaces, the top-level package

A module may import its own layer and the layers below it. On top of that the agent knows no
concrete backend (composed, vlm, remote), the model and the training library know no backend, and
continual learning does not import the recipes (both sit on the training library). What breaks the rule
today is listed in KNOWN, each entry with why it is still there: the list may only shrink (a new
upward import fails here; a fixed one fails until it is taken off the list).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"mmagent": "mmagent", "mmagent.tools": "tools", "mmagent.memory": "memory", "mmagent.cli": "cli",
           "mmagent.recipes": "recipes"}
ORDER = ["protocol", "hub", "model", "tools", "memory", "backends", "training", "agent", "continual", "recipes", "entry"]
PEERS = {frozenset({"tools", "memory"}), frozenset({"continual", "recipes"})}  # same level, see KNOWN
PROTOCOL = {"protocol", "media", "errors", "atomic", "config"}
HUB = {"hub"}
TOOL_SOURCES = {"mmagent.interop.mcp_client"}  # MCP servers' tools imported into a registry: a tool source
CONCRETE_BACKENDS = {"mmagent.backends.composed", "mmagent.backends.vlm", "mmagent.backends.remote"}

# (importer, imported): what still crosses a layer upward, and why. Shrink it; never grow it.
KNOWN: dict[tuple[str, str], str] = {}


def modules() -> dict[str, Path]:
    out = {}
    for package, folder in FOLDERS.items():
        for f in (ROOT / folder).rglob("*.py"):
            if "heldout_src" in f.parts:  # the blind suites' generator: not part of the package
                continue
            parts = [p for p in f.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = f
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    if module in TOOL_SOURCES:
        return "tools"
    if len(parts) == 1 or parts[1] in ("cli", "serve", "interop", "mcp_server"):
        return "entry"
    head = parts[1]
    if head in PROTOCOL:
        return "protocol"
    if head in HUB:
        return "hub"
    if head in ("tools", "memory", "backends", "training", "agent", "continual", "recipes", "model"):
        return head
    return "protocol"  # errors, atomic, config, feedback (the ratings store the log and the learning loop read)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "mmagent" and node.level == 0:
            found.update(f"mmagent.{a.name}" for a in node.names)  # `from mmagent import lora`
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "mmagent" or m.startswith("mmagent.")}


def allowed(src: str, dst: str) -> bool:
    a, b = layer(src), layer(dst)
    if a == "agent" and dst in CONCRETE_BACKENDS:
        return False
    if a in ("model", "training") and b == "backends":  # both drive whatever model they are given
        return False
    if a == "continual" and b == "recipes":  # they share a training library instead (see KNOWN)
        return False
    return ORDER.index(b) <= ORDER.index(a) or frozenset({a, b}) in PEERS


def test_imports_flow_down_the_layers():
    seen = {(src, dst) for src, path in modules().items() for dst in imports(path)}
    upward = {(s, d) for s, d in seen if not allowed(s, d)}
    new = sorted(upward - set(KNOWN))
    assert not new, "imports that go up a layer (fix them, or explain them in KNOWN):\n" + "\n".join(f"  {s} -> {d}" for s, d in new)
    fixed = sorted(set(KNOWN) - upward)
    assert not fixed, "fixed, take them off KNOWN:\n" + "\n".join(f"  {s} -> {d}" for s, d in fixed)


def test_the_checker_sees_an_upward_import():
    assert not allowed("mmagent.model.mmllm", "mmagent.agent.api")
    assert not allowed("mmagent.agent.graph", "mmagent.backends.composed")
    assert not allowed("mmagent.tools.ocr", "mmagent.continual.learn")
    assert allowed("mmagent.cli.run", "mmagent.agent")
    assert allowed("mmagent.backends.composed", "mmagent.model.mmllm")
    assert allowed("mmagent.continual.update", "mmagent.training.loss")
    assert allowed("mmagent.recipes.tool_tuning", "mmagent.training.batching")
    assert not allowed("mmagent.training.data", "mmagent.recipes.data")
    assert not allowed("mmagent.training.scoring", "mmagent.agent.api")
    assert not allowed("mmagent.training.export", "mmagent.backends.composed")
    assert not allowed("mmagent.continual.suites", "mmagent.recipes.eval")


def test_one_definition_of_the_ignored_label():
    """IGNORE (-100, the label the loss skips) is defined once (mmagent.model.mm_prompt) and imported elsewhere."""
    defined = sorted(
        name for name, path in modules().items() for node in ast.parse(path.read_text()).body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        and any(isinstance(t, ast.Name) and t.id == "IGNORE" for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
    )
    assert defined == ["mmagent.model.mm_prompt"], defined
