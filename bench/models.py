"""Cold vs warm load of each embedded model: wall time and peak RSS, one subprocess per measurement.

    python bench/models.py [--threads 1] [--repeats 3] [--wheelhouse DIR]

Cold = provision into an empty cache (download or wheelhouse, sha256, extract, convert) + load.
Warm = load from the provisioned cache. Each measurement runs in a fresh process so peak RSS
(ru_maxrss) is that of the load alone; the interpreter + imports baseline is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

# One snippet per model: the code a user's process runs to get a usable model.
LOADERS = {
    "smollm2-135m-instruct": "from mmagent.model.backbone import load_causal_lm; load_causal_lm('smollm2-135m-instruct')",
    "minilm-l6": "from mmagent.memory.embedders import load_text_embedder; load_text_embedder('minilm-l6')",
    "efficientnet-lite0": "from mmagent.model.encoders.efficientnet import load_efficientnet_lite0; load_efficientnet_lite0('efficientnet-lite0')",
    "ppocr-v4": "from mmagent.tools.ocr import ReadText; ReadText('ppocr-v4').load()",
}
IMPORTS = "import torch, transformers, mmagent.hub.provision"

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
{provision}
{load}
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run_child(code: str, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(name: str, cold: bool, env: dict[str, str], repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        child_env = dict(env)
        if cold:
            child_env["MMAGENT_CACHE_DIR"] = tempfile.mkdtemp(prefix="mmagent-bench-cold-")
        provision = f"from mmagent.hub.provision import ensure; ensure({name!r}, progress=False)"
        runs.append(run_child(CHILD.format(imports=IMPORTS, provision=provision, load=LOADERS[name]), child_env))
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"]}
    return {k: statistics.median(r[k] for r in ok) for k in ("load_s", "rss_mb")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="warm repeats (cold runs once)")
    p.add_argument("--wheelhouse", default=os.environ.get("MMAGENT_WHEELHOUSE", ""))
    p.add_argument("--only", nargs="*", default=list(LOADERS))
    args = p.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MMAGENT_THREADS=str(args.threads), HF_HUB_OFFLINE="1")
    if args.wheelhouse:
        env["MMAGENT_WHEELHOUSE"] = args.wheelhouse
    base = run_child(CHILD.format(imports=IMPORTS, provision="", load=""), env)
    print(f"threads={args.threads}  python={sys.version.split()[0]}  imports alone: {base['import_s']:.2f} s, {base['rss_mb']:.0f} MB RSS")
    print(f"cold = provision from {'wheelhouse' if args.wheelhouse else 'the package index'} + load (1 run); warm = median of {args.repeats}")
    print(f"{'model':24} {'cold load s':>12} {'cold RSS MB':>12} {'warm load s':>12} {'warm RSS MB':>12} {'cold/warm':>10}")
    for name in args.only:
        cold = measure(name, True, env, 1)
        warm = measure(name, False, env, args.repeats)
        if "error" in cold or "error" in warm:
            print(f"{name:24} error: {cold.get('error') or warm.get('error')}")
            continue
        print(
            f"{name:24} {cold['load_s']:12.2f} {cold['rss_mb']:12.0f} {warm['load_s']:12.2f} {warm['rss_mb']:12.0f} "
            f"{cold['load_s'] / warm['load_s']:9.1f}x"
        )


if __name__ == "__main__":
    main()
