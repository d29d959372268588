"""A BERT sentence encoder in plain torch, loaded from its folder without transformers.

Why: `MiniLMEmbedder` through `AutoModel` imports transformers and its BERT modeling module
(~3 s on one Zen 4 core, measured: transformers 1.0 s + modeling_bert 1.9 s) to run ~90 MB of
weights that load in 0.14 s. Tool retrieval and the chat router embed the first text-only request
of every process, so a one-shot `mmagent run "Hi!"` paid those imports before its first token.
This is the same computation (Devlin et al. 2019: post-LayerNorm encoder, absolute positions, exact
GELU) over the same safetensors, tokenized by the folder's tokenizer.json with the `tokenizers`
library (what `BertTokenizerFast` calls). `load` returns None for anything else (another model
type or activation, no tokenizer.json, no safetensors), and the caller falls back to transformers.
tests/test_memory_lean_bert.py compares both on a tiny random BERT and on the embedded MiniLM.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class LeanBertConfig:
    def __init__(self, cfg: dict) -> None:
        self.hidden = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.pad_id = int(cfg.get("pad_token_id") or 0)

    @staticmethod
    def supported(cfg: dict) -> bool:
        return (cfg.get("model_type") == "bert" and cfg.get("hidden_act", "gelu") == "gelu"
                and cfg.get("position_embedding_type", "absolute") == "absolute")


class LeanBert(nn.Module):
    """`forward(ids [B, T], mask [B, T]) -> last hidden state [B, T, D]`, as `BertModel(...).last_hidden_state`
    (token types all 0, as a single-sentence tokenizer call gives)."""

    def __init__(self, cfg: LeanBertConfig, weights: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.cfg = cfg
        self.w = {k.removeprefix("bert."): v.float() for k, v in weights.items()}

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.cfg.eps)

    def _lin(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        c, w = self.cfg, self.w
        B, T = ids.shape
        e = "embeddings"
        h = w[f"{e}.word_embeddings.weight"][ids] + w[f"{e}.position_embeddings.weight"][:T] + w[f"{e}.token_type_embeddings.weight"][0]
        h = self._ln(h, f"{e}.LayerNorm")  # [B, T, D]
        keep = mask.bool()[:, None, None, :]  # [B, 1, 1, T]: padding keys are never attended
        split = lambda x: x.view(B, T, c.heads, -1).transpose(1, 2)  # noqa: E731  [B, H, T, D/H]
        for i in range(c.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (split(self._lin(h, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(B, T, -1)
            h = self._ln(h + self._lin(a, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            ff = self._lin(F.gelu(self._lin(h, f"{p}.intermediate.dense")), f"{p}.output.dense")
            h = self._ln(h + ff, f"{p}.output.LayerNorm")
        return h


def load(folder: Path | str, max_length: int):
    """(tokenizer, LeanBert) for a BERT folder with tokenizer.json and model.safetensors; None otherwise."""
    folder = Path(folder)
    files = folder / "config.json", folder / "tokenizer.json", folder / "model.safetensors"
    if not all(f.is_file() for f in files):
        return None
    cfg = json.loads(files[0].read_text())
    if not LeanBertConfig.supported(cfg):
        return None
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(files[1]))
    lc = LeanBertConfig(cfg)
    # The file's own padding / truncation (often fixed at 128) are what transformers overrides per call:
    # pad to the batch's longest, cut at max_length with the special tokens counted.
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=lc.pad_id, pad_token=tok.id_to_token(lc.pad_id) or "[PAD]")
    return tok, LeanBert(lc, load_file(str(files[2]))).eval()


def encode(tok, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """input ids and attention mask [B, T] for `texts` (padded to the longest)."""
    enc = tok.encode_batch(texts)
    return torch.tensor([e.ids for e in enc]), torch.tensor([e.attention_mask for e in enc])
