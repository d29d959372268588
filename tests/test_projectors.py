"""Projectors (linear, MLP, resampler) and visual token reduction (merge, attention top-k)."""

from __future__ import annotations

import pytest
import torch

from mmagent.model.projectors import ProjectorConfig, build_projector, projected_tokens
from mmagent.model.token_reduction import ReductionConfig, TokenReducer, attention_scores, merge_tokens, topk_tokens


@pytest.mark.parametrize("kind,n_out", [("linear", 49), ("mlp", 49), ("resampler", 8)])
def test_projector_shapes(kind, n_out):
    cfg = ProjectorConfig(kind=kind, num_queries=8, depth=2, heads=4)
    proj = build_projector(cfg, 24, 64)
    x = torch.randn(3, 49, 24)
    assert proj(x).shape == (3, n_out, 64)
    assert projected_tokens(cfg, 49) == n_out


def test_resampler_emits_fixed_tokens_whatever_the_input_length():
    proj = build_projector(ProjectorConfig(kind="resampler", num_queries=5, heads=4), 16, 32)
    assert proj(torch.randn(2, 3, 16)).shape == proj(torch.randn(2, 100, 16)).shape == (2, 5, 32)


def test_resampler_heads_must_divide_width():
    with pytest.raises(ValueError, match="must divide"):
        build_projector(ProjectorConfig(kind="resampler", heads=5), 16, 32)


@pytest.mark.parametrize("n,budget", [(49, 1), (49, 16), (49, 24), (49, 48), (10, 3), (2, 1)])
def test_reduction_keeps_exactly_the_budget(n, budget):
    x = torch.randn(2, n, 8)
    assert merge_tokens(x, budget).shape == (2, budget, 8)
    assert topk_tokens(x, budget).shape == (2, budget, 8)


def test_merge_groups_duplicates_and_keeps_raster_order():
    base = torch.randn(1, 6, 16)
    x = base.repeat_interleave(2, dim=1)  # [t0, t0, t1, t1, ...]: each token with its twin
    torch.testing.assert_close(merge_tokens(x, 6), base)  # twins merge; order of first appearance


def test_merge_averages_what_it_groups():
    # two far-apart clusters of near-identical tokens -> two tokens, each its cluster's mean
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    x = torch.stack([a, a * 1.01, a * 0.99, b, b * 1.02, b * 0.98]).unsqueeze(0)
    out = merge_tokens(x, 2)
    torch.testing.assert_close(out[0], torch.stack([x[0, :3].mean(0), x[0, 3:].mean(0)]), atol=1e-5, rtol=0)


def test_topk_keeps_highest_scores_in_original_order():
    x = torch.randn(1, 10, 4)
    scores = torch.tensor([[0.0, 9, 1, 8, 2, 7, 3, 6, 4, 5]])
    torch.testing.assert_close(topk_tokens(x, 3, scores), x[:, [1, 3, 5]])
    s = attention_scores(x)
    assert s.shape == (1, 10) and torch.allclose(s.sum(-1), torch.ones(1))


def test_reducer_passthrough_and_budget():
    x = torch.randn(1, 49, 8)
    assert TokenReducer(ReductionConfig(method="none")).num_tokens(49) == 49
    assert TokenReducer(ReductionConfig(method="none"))(x) is x
    assert TokenReducer(ReductionConfig(method="merge", budget=100))(x) is x  # budget over N: nothing to do
    r = TokenReducer(ReductionConfig(method="topk", budget=12))
    assert r.num_tokens(49) == 12 and r(x).shape == (1, 12, 8)
