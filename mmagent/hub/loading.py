"""One model load at a time per process: transformers' `from_pretrained` is not thread-safe.

While it loads, transformers patches process-wide state (`torch.nn.init` functions become no-ops
under `no_init_weights`, `torch.linspace` is wrapped, lazy modules import): a second load in another
thread can see the patched functions and leave its missing keys uninitialised on the meta device
(seen: "Cannot copy out of meta tensor" converting the GGUF LLM while tool retrieval's MiniLM
loaded in its warm-up thread), or fail with "cannot import name". Every load in mmagent takes this
lock; it is re-entrant, so a load that loads another (a pipeline's parts) does not deadlock.
"""

from __future__ import annotations

import threading

HF_LOAD_LOCK = threading.RLock()


def hf_loading() -> threading.RLock:
    """`with hf_loading(): Model.from_pretrained(...)`."""
    return HF_LOAD_LOCK
