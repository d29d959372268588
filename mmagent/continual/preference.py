"""Preference training for a learning round: DPO on corrected turns, KTO on thumbs.

Why not TRL's trainers: they expect a plain `PreTrainedModel` and build their own batches from
token ids, while our sequences are the composed MM-LLM's (image features spliced into the
embeddings by `MMLLM.embed`, a shared system prefix with its KV reused, assistant-only labels from
`mmagent/training/`). The two losses are a few lines each, written here beside
`tests/test_continual_preference.py`, which checks them against the papers' formulas computed
directly on a tiny model.

Notation: x the prompt (system turn, user turn, images), y an assistant turn, and
log pi(y|x) = sum over y's tokens of log p(token | everything before it), the assistant tokens only.
The reference pi_ref is the serving adapter, frozen: its log-probs are computed once before the
first step (the trainable adapter starts as a copy of it; TRL's `precompute_ref_log_probs`).
Dropout is off for both (TRL's `disable_dropout`), so at step 0 the policy equals the reference.

DPO (Rafailov et al. 2023, arXiv 2305.18290, eq. 7), for a pair (y_w preferred over y_l):

    L_DPO = -log sigmoid( beta * [log pi(y_w|x) - log pi_ref(y_w|x)] - beta * [log pi(y_l|x) - log pi_ref(y_l|x)] )

KTO (Ethayarajh et al. 2024, arXiv 2402.01306, eq. 8), for unpaired y rated desirable or undesirable:

    r(x, y) = log pi(y|x) - log pi_ref(y|x)
    z_0     = KL(pi(y'|x) || pi_ref(y'|x)), estimated on mismatched pairs (x_i, y_j) of the
              micro-batch, clamped at 0 and not back-propagated (the paper's section 4.1)
    v(x, y) = lambda_D * sigmoid(beta * (r - z_0))   if y is desirable
              lambda_U * sigmoid(beta * (z_0 - r))   if y is undesirable
    L_KTO   = lambda_y - v(x, y)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mmagent.protocol.chat import Message


def dpo_loss(pol_w: torch.Tensor, pol_l: torch.Tensor, ref_w: torch.Tensor, ref_l: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-pair DPO loss [B] (eq. 7 of Rafailov et al. 2023); inputs are sequence log-probs [B]."""
    margin = beta * ((pol_w - ref_w) - (pol_l - ref_l))
    return -F.logsigmoid(margin)


def kto_reference_point(pol_mismatched: torch.Tensor, ref_mismatched: torch.Tensor) -> torch.Tensor:
    """z_0: the mean log-ratio on mismatched (x_i, y_j), clamped at 0, detached (Ethayarajh et al. 2024, 4.1)."""
    return (pol_mismatched - ref_mismatched).mean().clamp(min=0).detach()


def kto_loss(pol: torch.Tensor, ref: torch.Tensor, desirable: torch.Tensor, z0: torch.Tensor, beta: float,
             lambda_d: float = 1.0, lambda_u: float = 1.0) -> torch.Tensor:
    """Per-example KTO loss [B] (eq. 8 of Ethayarajh et al. 2024); `desirable` is a bool mask [B]."""
    r = pol - ref
    v = torch.where(desirable, lambda_d * torch.sigmoid(beta * (r - z0)), lambda_u * torch.sigmoid(beta * (z0 - r)))
    lam = torch.where(desirable, torch.full_like(r, lambda_d), torch.full_like(r, lambda_u))
    return lam - v


def sequence_logps(llm: nn.Module, mm: Any, batch: Any, pixels: torch.Tensor | None) -> torch.Tensor:
    """log pi(y|x) per row [B] of a `PackedBatch` with ONE conversation per row (pack=False):
    the summed log-probs of the labelled (assistant) tokens, images spliced as at serving.

    The same forward as `mmagent.training.loss.AssistantLoss` (`behind_prefix`: the shared prefix KV;
    LM head only where a label exists), summed per row instead of over the batch."""
    from mmagent.training.loss import behind_prefix
    from mmagent.training.sequences import IGNORE

    body = llm.model
    B = batch.input_ids.shape[0]
    embeds = mm.embed(batch.input_ids, pixels) if mm is not None else body.embed_tokens(batch.input_ids)
    h = behind_prefix(body, batch.prefix, embeds, batch.position_ids, batch.attention_mask)
    targets = batch.labels[:, 1:]  # token t is predicted from position t-1
    sel = targets != IGNORE
    logp = torch.log_softmax(llm.lm_head(h[:, :-1][sel]).float(), dim=-1)  # [N, V]
    tok = logp.gather(1, targets[sel].unsqueeze(1)).squeeze(1)  # [N]
    rows = sel.nonzero()[:, 0]
    return torch.zeros(B, dtype=tok.dtype, device=tok.device).index_add(0, rows, tok)


# -- the round's preference objective -------------------------------------------------------------


@dataclass
class PrefItem:
    """One preference example as conversations: a pair (chosen, rejected) or one unpaired turn."""

    kind: str  # "pair" | "desirable" | "undesirable"
    seqs: list[int]  # indices into the encoded sequences: pair [chosen, rejected]; unpaired [y, mismatched]


class PreferenceObjective:
    """`loss(step)`: DPO over the step's pairs + KTO over its unpaired thumbs, mean per item.

    Built once per round: every sequence encoded, the reference log-probs computed with the
    warm-start adapter (= the serving version) before any step, in eval mode, without grad."""

    def __init__(self, bb: Any, prefix: list[int], items: list[PrefItem], samples: list[Any], rc: Any,
                 beta: float, lambda_d: float, lambda_u: float, batch: int, seed: int = 0):
        self.bb, self.prefix, self.items, self.samples = bb, prefix, items, samples
        self.rc = rc.model_copy(update={"pack": False})  # one conversation per row: per-sequence log-probs
        self.beta, self.lambda_d, self.lambda_u, self.batch, self.seed = beta, lambda_d, lambda_u, batch, seed
        with torch.no_grad():
            self.ref = self._logps(list(range(len(samples))))

    def _logps(self, idx: Sequence[int]) -> torch.Tensor:
        from mmagent.training.batching import make_batch

        out = []
        for k in range(0, len(idx), 8):
            b, px = make_batch(self.bb, self.prefix, [self.samples[i] for i in idx[k : k + 8]], self.rc)
            out.append(sequence_logps(self.bb.llm, self.bb.mm, b, px))
        return torch.cat(out) if out else torch.zeros(0)

    def step_items(self, step: int) -> list[PrefItem]:
        """A seeded shuffle per epoch, as the recipe's `step_examples` (a resumed round sees the same stream)."""
        picked = []
        for i in range(step * self.batch, (step + 1) * self.batch):
            epoch, j = divmod(i, len(self.items))
            order = list(range(len(self.items)))
            random.Random(self.seed * 1000 + epoch).shuffle(order)
            picked.append(self.items[order[j]])
        return picked

    def loss(self, step: int) -> torch.Tensor:
        items = self.step_items(step)
        pairs = [it for it in items if it.kind == "pair"]
        thumbs = [it for it in items if it.kind != "pair"]
        terms = []
        if pairs:
            w, l_ = [it.seqs[0] for it in pairs], [it.seqs[1] for it in pairs]
            pol = self._logps(w + l_)
            terms.append(dpo_loss(pol[: len(w)], pol[len(w):], self.ref[w], self.ref[l_], self.beta))
        if thumbs:
            y, mis = [it.seqs[0] for it in thumbs], [it.seqs[1] for it in thumbs]
            with torch.no_grad():
                z0 = kto_reference_point(self._logps(mis), self.ref[mis])
            desirable = torch.tensor([it.kind == "desirable" for it in thumbs])
            terms.append(kto_loss(self._logps(y), self.ref[y], desirable, z0, self.beta, self.lambda_d, self.lambda_u))
        return torch.cat(terms).mean()


def build_objective(bb: Any, examples: Sequence[Any], tools: list[dict[str, Any]], prefix: list[int], rc: Any, cfg: Any,
                    conv: Callable[[Any, list[Message]], Any]) -> PreferenceObjective | None:
    """The objective over a round's pair / desirable / undesirable examples (None when it has none).

    `conv(example, messages)` makes a training `Conversation` (with the example's images). KTO's
    mismatched completion for unpaired item i is item i+1's (TRL pairs them the same way)."""
    from mmagent.training.data import encode_all

    pairs = [e for e in examples if e.kind == "pair"]
    thumbs = [e for e in examples if e.kind in ("desirable", "undesirable")]
    if not pairs and not thumbs:
        return None
    convs, items = [], []
    for e in pairs:
        convs += [conv(e, e.messages()), conv(e, e.rejected_messages())]
        items.append(PrefItem("pair", [len(convs) - 2, len(convs) - 1]))
    for i, e in enumerate(thumbs):
        other = thumbs[(i + 1) % len(thumbs)]
        convs += [conv(e, e.messages()), conv(e, e.messages(target_of=other))]
        items.append(PrefItem(e.kind, [len(convs) - 2, len(convs) - 1]))
    samples = encode_all(bb, convs, tools, prefix)
    lam_d, lam_u = kto_weights(sum(e.kind == "desirable" for e in thumbs), sum(e.kind == "undesirable" for e in thumbs))
    return PreferenceObjective(bb, prefix, items, samples, rc, cfg.pref_beta, lam_d, lam_u, cfg.pref_batch, cfg.replay_seed)


def kto_weights(n_desirable: int, n_undesirable: int) -> tuple[float, float]:
    """lambda_D, lambda_U: the paper (section 4.2) keeps lambda_D n_D / (lambda_U n_U) in [1, 4/3];
    we hold it at 1 (lambda_U = 1), so neither kind of thumb outweighs the other however users rate."""
    if not n_desirable or not n_undesirable:
        return 1.0, 1.0
    return n_undesirable / n_desirable, 1.0
