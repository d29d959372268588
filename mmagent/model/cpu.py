"""What this CPU does natively, and the kernels and dtypes chosen for it.

A dtype is picked by capability, never by one machine's timing: on a CPU without AVX512-BF16 or
AMX (e.g. AVX2-only AMD EPYC), bf16 matmuls are emulated and ran ~4.5x slower than fp32 (a
794-token prefill 13 s instead of ~1 s). With AMX, bf16 prefill was 2.4x faster than fp32 (Sapphire
Rapids: TTFT 0.14 vs 0.33 s); with AVX512-BF16 alone (a Xeon whose VM exposes no AMX) it was 1.5x
slower (0.72 vs 0.45-0.49 s, bench/core.py side by side), so prompt-sized matmuls go bf16 only with AMX.
fbgemm's int8 GEMM runs on AVX2 and AVX-512 alike (with VNNI it accumulates in int32).

`ONEDNN_MAX_CPU_ISA` / `ATEN_CPU_CAPABILITY` lower what torch uses below what the CPU has; they are
honoured, so `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` measures an AVX2-only machine here.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# oneDNN ISA levels that include native bf16 dot products (AVX512-BF16 or AMX).
_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512",
              "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2", "DEFAULT", "ALL")


@dataclass(frozen=True)
class CpuFeatures:
    capability: str  # torch's ATen vector level: "AVX512", "AVX2", "DEFAULT" ...
    native_bf16: bool  # AVX512-BF16 or AMX-BF16, and not masked by ONEDNN_MAX_CPU_ISA
    amx: bool
    vnni: bool  # AVX512-VNNI or AVX-VNNI: fbgemm accumulates int8 in int32

    @property
    def prefill_dtype(self) -> torch.dtype:
        """Matmul dtype for prompt-sized (compute-bound) work: bf16 only where AMX multiplies it."""
        return torch.bfloat16 if self.amx else torch.float32

    def describe(self) -> str:
        extras = [n for n, on in (("amx", self.amx), ("bf16", self.native_bf16), ("vnni", self.vnni)) if on]
        return f"{self.capability.lower()}{'+' + '+'.join(extras) if extras else ''}"


@functools.cache
def cpu_features() -> CpuFeatures:
    flags = _flags()
    capability = torch.backends.cpu.get_cpu_capability()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    bf16_hw = "avx512_bf16" in flags or "amx_bf16" in flags
    native = bf16_hw and isa in _BF16_ISAS and capability.startswith("AVX512")
    amx = "amx_bf16" in flags and (isa in ("ALL", "DEFAULT") or "AMX" in isa)
    feats = CpuFeatures(capability=capability, native_bf16=native, amx=amx and native,
                        vnni="avx512_vnni" in flags or "avx_vnni" in flags)
    log.info("cpu %s: prefill in %s", feats.describe(), str(feats.prefill_dtype).removeprefix("torch."))
    return feats


def _flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: assume the portable baseline
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask: a container's or `taskset`'s share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def training_precision(requested: str) -> str:
    """`auto` -> "bf16" on a GPU or a CPU with native bf16 (autocast ~1.4x faster there), else
    "fp32" (emulated bf16 autocast would be several times slower); "fp32"/"bf16" are kept."""
    if requested != "auto":
        return requested
    return "bf16" if torch.cuda.is_available() or cpu_features().native_bf16 else "fp32"
