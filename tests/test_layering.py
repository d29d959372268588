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

Within and across layers the import graph has no cycle (`test_no_import_cycles`): a piece two
modules share lives in a module below both. What still closes a cycle is listed in KNOWN_CYCLES,
the same way.
"""

from __future__ import annotations

import ast
import functools
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

# (importer, imported): an import that closes a cycle between two modules, and why it is still there.
# The cycle test drops these edges before it looks for cycles. Shrink it; never grow it.
KNOWN_CYCLES: dict[tuple[str, str], str] = {
    ("mmagent.memory.transfer", "mmagent.memory.store"):
        "type-only (under TYPE_CHECKING): export_store/import_store annotate their `store` as MemoryStore, "
        "while MemoryStore.export/import_ (public, used by the CLI and tests) call into transfer.py from "
        "their bodies. The fix is an API choice: drop those two methods (callers use transfer.py), or "
        "type `store` with a protocol of what transfer uses (which includes the store's private _insert)",
}


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
    """The mmagent modules `path` imports, module level and in function bodies: `import a.b.c` is
    a.b.c, and `from pkg import name` is the submodule pkg.name when there is one, else pkg."""
    found, known = set(), _module_names()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "mmagent" and node.level == 0:
            found.update(f"mmagent.{a.name}" for a in node.names)  # `from mmagent import lora`
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known  # `from mmagent.model import mmllm`
            found.update(subs)
            if len(subs) < len(node.names):  # names defined in (or re-exported by) the package itself
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "mmagent" or m.startswith("mmagent.")}


@functools.cache
def _module_names() -> frozenset[str]:
    return frozenset(modules())


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


def import_graph() -> dict[str, set[str]]:
    """module -> the mmagent modules it imports (module level and function bodies, as `imports`
    reads them), self-imports left out. No package `__init__` is special-cased: the top-level
    package's public names are imported lazily through importlib (not an import statement), and no
    other package re-export closes a cycle."""
    names = _module_names()
    return {m: (imports(path) & names) - {m} for m, path in modules().items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) through each strongly connected group of modules."""
    return [_cycle_in(graph, g) for g in strongly_connected(graph)]


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of two or more modules that each reach one another (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group (BFS)."""
    start = min(group)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in {sorted(group)}")


def test_no_import_cycles():
    graph = import_graph()
    for src, dst in KNOWN_CYCLES:
        graph[src].discard(dst)
    found = cycles(graph)
    assert not found, "import cycles (move the shared piece down a module, or explain the edge in KNOWN_CYCLES):\n" + "\n".join(
        "  " + " -> ".join(c) for c in found)
    full = import_graph()
    groups = strongly_connected(full)
    fixed = sorted((s, d) for s, d in KNOWN_CYCLES if d not in full[s] or not any({s, d} <= g for g in groups))
    assert not fixed, "no longer a cycle, take them off KNOWN_CYCLES:\n" + "\n".join(f"  {s} -> {d}" for s, d in fixed)


def test_the_cycle_checker_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_one_definition_of_the_ignored_label():
    """IGNORE (-100, the label the loss skips) is defined once (mmagent.model.mm_prompt) and imported elsewhere."""
    defined = sorted(
        name for name, path in modules().items() for node in ast.parse(path.read_text()).body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        and any(isinstance(t, ast.Name) and t.id == "IGNORE" for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
    )
    assert defined == ["mmagent.model.mm_prompt"], defined


def test_one_family_of_media_errors():
    """The media errors are defined once, under mmagent/media/ (errors.py roots the family); the
    backends and the model re-export those classes under the names they used to define."""
    family = {"MediaError", "UnsupportedMediaError", "ImageDecodeError", "ImageTooLargeError", "ArtifactError"}
    defined = sorted(
        (node.name, name) for name, path in modules().items() for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.name in family
    )
    assert all(module.startswith("mmagent.media.") for _, module in defined), defined
    assert sorted(n for n, _ in defined) == sorted(family), defined
