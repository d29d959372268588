"""One step's system-prefix KV, computed once and shared by every forward pass of the step.

Why: a learning round's step makes three passes behind the same system turn (~730 tokens: the
built-in tools and the user's): the next-token batch, the KTO batch and KTO's mismatched (KL)
batch (`mmagent/continual/preference.py`). Each computed the prefix's forward (and two its
backward) on its own; in the round's step that was ~20% of the token passes, all spent on the
same tokens with the same weights.

How: the prefix's per-layer keys and values [1, H_kv, P, d] are computed once per step, with
grad, and handed to each pass as detached leaves (`cache`: a fresh `DynamicCache`, repeated for
the pass's B rows). Each pass's backward accumulates the gradient of its loss w.r.t. the prefix
KV in the leaves' `.grad`; `backward()`, once at the end of the step, runs the prefix's own
backward with that summed gradient. By linearity that is the gradient of separate passes,
exactly, when the prefix is computed the same way for each (dropout off: a learning round's
preference steps, `update.fit`).

Single process only: under DDP the synced backward is a pass's, and the prefix's share of the
gradient would come after it, unsynced (`loop.train_steps` refuses the combination).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import DynamicCache


class StepPrefix:
    """The KV of each distinct prefix used in the current step (`cache`), and its one backward (`backward`)."""

    def __init__(self, body: nn.Module) -> None:
        self.body = body  # the decoder stack (`llm.model`), called as the passes call it
        # prefix ids -> (the KV as computed, with its graph; the leaves the passes read), per layer
        self._entries: dict[tuple[int, ...], tuple[list[torch.Tensor], list[torch.Tensor]]] = {}

    def cache(self, prefix: torch.Tensor, repeats: int) -> DynamicCache:
        """A cache holding the KV of `prefix` [1, P] for `repeats` rows, whatever grad mode the pass is in."""
        key = tuple(prefix[0].tolist())
        if key not in self._entries:
            with torch.enable_grad():  # a no-grad pass (KTO's KL estimate) may come first in a step
                past = self.body(input_ids=prefix, use_cache=True).past_key_values
            roots = [t for layer in past.layers for t in (layer.keys, layer.values)]
            self._entries[key] = (roots, [t.detach().requires_grad_(t.requires_grad) for t in roots])
        leaves = self._entries[key][1]
        cache = DynamicCache(ddp_cache_data=list(zip(leaves[0::2], leaves[1::2], strict=True)))
        if repeats > 1:
            cache.batch_repeat_interleave(repeats)
        return cache

    def backward(self) -> None:
        """The prefix's backward with the gradient every pass of the step left on its KV; then forget the step."""
        roots, grads = [], []
        for computed, leaves in self._entries.values():
            for root, leaf in zip(computed, leaves, strict=True):
                if leaf.grad is not None and root.requires_grad:
                    roots.append(root)
                    grads.append(leaf.grad)
        self._entries.clear()
        if roots:
            torch.autograd.backward(roots, grads)
