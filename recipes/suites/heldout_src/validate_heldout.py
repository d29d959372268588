"""Checks the held-out suites: JSON lines, unique ids, media present, tool schemas in OpenAI format, expected calls
name offered tools, use known arguments, give every required argument non-empty allowed values, and every allowed
value fits its argument's schema.

    .venv/bin/python recipes/suites/heldout_src/validate_heldout.py
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITES = HERE.parent
BUILTINS = json.loads((HERE / "builtin_tools.json").read_text())
FILES = {"heldout-natural-builtins.jsonl": {"single": 72, "no_tool": 30, "unservable": 18},
         "heldout-open-world.jsonl": {"single": 60, "multiple": 60, "irrelevance": 50, "parallel": 30},
         "heldout-general.jsonl": {"general": 200}}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict, "null": type(None)}

errors: list[str] = []


def err(where: str, msg: str) -> None:
    errors.append(f"{where}: {msg}")


def fits(value, schema: dict, defs: dict) -> bool:
    """A small JSON-Schema check, enough for these tools (type, enum, bounds, anyOf, $ref, items, properties)."""
    if "$ref" in schema:
        return fits(value, defs[schema["$ref"].split("/")[-1]], defs)
    if "anyOf" in schema:
        return any(fits(value, s, defs) for s in schema["anyOf"])
    t = schema.get("type")
    if t:
        if isinstance(value, bool) and t in ("integer", "number"):
            return False
        if t == "integer" and isinstance(value, float):
            if not value.is_integer():
                return False
        elif not isinstance(value, TYPES[t]):
            return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "maximum" in schema and value > schema["maximum"]:
            return False
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return False
        if "multipleOf" in schema and value % schema["multipleOf"]:
            return False
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 10**9):
            return False
    if isinstance(value, list) and "items" in schema:
        return all(fits(v, schema["items"], defs) for v in value)
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        if any(r not in value for r in schema.get("required", [])):
            return False
        if schema.get("additionalProperties") is False and set(value) - set(props):
            return False
        return all(fits(v, props[k], defs) for k, v in value.items() if k in props)
    return True


def check_property(where: str, name: str, p: dict) -> None:
    if not isinstance(p, dict) or not ({"type", "anyOf", "$ref"} & set(p)):
        err(where, f"property {name} has no type")
        return
    if p.get("type") not in (None, *TYPES):
        err(where, f"property {name} has unknown type {p.get('type')}")
    if not p.get("description"):
        err(where, f"property {name} has no description")
    if p.get("type") == "array" and "items" not in p:
        err(where, f"array property {name} has no items")
    if "enum" in p and (not p["enum"] or len(set(map(str, p["enum"]))) != len(p["enum"])):
        err(where, f"property {name} has a bad enum")
    if "default" in p and not fits(p["default"], p, {}):
        err(where, f"property {name}: default {p['default']!r} does not fit")
    if p.get("type") == "object":
        for k, sub in p.get("properties", {}).items():
            check_property(where, f"{name}.{k}", sub)
        if set(p.get("required", [])) - set(p.get("properties", {})):
            err(where, f"object property {name} requires unknown keys")


def check_tool(where: str, tool: dict) -> None:
    if tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
        err(where, "tool is not {'type': 'function', 'function': {...}}")
        return
    f = tool["function"]
    if not isinstance(f.get("name"), str) or not NAME.match(f["name"]):
        err(where, f"bad function name {f.get('name')!r}")
    if not f.get("description"):
        err(where, f"{f.get('name')}: no description")
    params = f.get("parameters")
    if not isinstance(params, dict) or params.get("type") != "object" or not isinstance(params.get("properties"), dict):
        err(where, f"{f.get('name')}: parameters must be an object schema with properties")
        return
    if not isinstance(params.get("required", []), list) or set(params.get("required", [])) - set(params["properties"]):
        err(where, f"{f.get('name')}: required names unknown properties")
    if len(params["properties"]) > 6:
        err(where, f"{f.get('name')}: more than 6 parameters")
    for name, p in params["properties"].items():
        check_property(where, f"{f['name']}.{name}", p)


def check_line(fname: str, n: int, row: dict, seen_ids: set, prompts: Counter) -> None:
    where = f"{fname}:{n}"
    for k in ("id", "prompt", "expected", "kind"):
        if k not in row:
            err(where, f"missing {k}")
            return
    if row["id"] in seen_ids:
        err(where, f"duplicate id {row['id']}")
    seen_ids.add(row["id"])
    prompts[row["prompt"].strip().lower()] += 1
    if not row["prompt"].strip():
        err(where, "empty prompt")
    images, audio = row.get("images", []), row.get("audio", [])
    for p in images + audio:
        if not (SUITES / p).is_file():
            err(where, f"missing media {p}")
    for p in images:
        if not p.endswith((".png", ".jpg")):
            err(where, f"image {p} is not png/jpg")
    for p in audio:
        if not p.endswith(".wav"):
            err(where, f"audio {p} is not wav")
    tools = row.get("tools", BUILTINS)
    if "tools" in row:
        if not isinstance(row["tools"], list) or not row["tools"]:
            err(where, "tools must be a non-empty list")
            return
        for t in row["tools"]:
            check_tool(where, t)
        names = [t["function"]["name"] for t in row["tools"]]
        if len(set(names)) != len(names):
            err(where, "duplicate tool names")
    by_name = {t["function"]["name"]: t["function"] for t in tools}
    kind, exp = row["kind"], row["expected"]
    if kind in ("no_tool", "unservable", "irrelevance", "general") and exp:
        err(where, f"{kind} item expects calls")
    if kind in ("single", "multiple") and len(exp) != 1:
        err(where, f"{kind} item must expect exactly one call")
    if kind == "parallel" and len(exp) != 2:
        err(where, "parallel item must expect two calls")
    if kind == "general" and not (isinstance(row.get("answers"), list) and all(isinstance(a, str) and a for a in row["answers"])):
        err(where, "general item needs answers: [non-empty strings]")
    if kind == "multiple" and not 2 <= len(row.get("tools", [])) <= 6:
        err(where, "multiple item must offer 2-6 tools")
    if kind == "single" and "tools" in row and len(row["tools"]) != 1:
        err(where, "single open-world item must offer one tool")
    if kind == "irrelevance" and not 1 <= len(row.get("tools", [])) <= 4:
        err(where, "irrelevance item must offer 1-4 tools")
    if kind == "parallel" and not 1 <= len(row.get("tools", [])) <= 3:
        err(where, "parallel item must offer 1-3 tools")
    for c in exp:
        f = by_name.get(c.get("name"))
        if f is None:
            err(where, f"expected call to {c.get('name')} which is not offered")
            continue
        params = f["parameters"]
        props, required, defs = params["properties"], params.get("required", []), params.get("$defs", {})
        args = c.get("arguments", {})
        for a, allowed in args.items():
            if a not in props:
                err(where, f"{f['name']}: unknown argument {a}")
                continue
            if not isinstance(allowed, list) or not allowed:
                err(where, f"{f['name']}.{a}: allowed values must be a non-empty list")
                continue
            for v in allowed:
                if v == "":  # "left out"
                    continue
                if not fits(v, props[a], defs):
                    err(where, f"{f['name']}.{a}: allowed value {v!r} does not fit the schema")
                if isinstance(v, str):
                    m = re.fullmatch(r"(image|audio)_(\d+)", v)
                    if m and props[a].get("x-artifact", m.group(1)) == m.group(1):
                        have = images if m.group(1) == "image" else audio
                        if int(m.group(2)) > len(have):
                            err(where, f"{f['name']}.{a} = {v} but only {len(have)} {m.group(1)} attached")
        for r in required:
            if r not in args or "" in args[r]:
                err(where, f"{f['name']}: required argument {r} must have allowed values without ''")


def main() -> int:
    seen_ids: set = set()
    prompts: Counter = Counter()
    for fname, want in FILES.items():
        kinds: Counter = Counter()
        for n, line in enumerate((SUITES / fname).read_text(encoding="utf-8").splitlines(), 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                err(f"{fname}:{n}", f"not JSON: {e}")
                continue
            kinds[row.get("kind")] += 1
            check_line(fname, n, row, seen_ids, prompts)
        if dict(kinds) != want:
            err(fname, f"kind counts {dict(kinds)} != {want}")
        print(f"{fname}: {sum(kinds.values())} lines, {dict(kinds)}")
    for p, k in prompts.items():
        if k > 1:
            err("all", f"prompt repeated {k}x: {p!r}")
    try:  # the project's own loader, if importable
        from mmagent.recipes.eval import load_suite
        for fname in FILES:
            load_suite(SUITES / fname)
        print("mmagent.recipes.eval.load_suite: all three suites load")
    except ImportError:
        print("mmagent not importable; skipped load_suite")
    except Exception as e:  # noqa: BLE001
        err("load_suite", repr(e))
    for e in errors:
        print("ERROR", e)
    print("OK" if not errors else f"{len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
