# Launch: .venv/bin/python -m mmagent.recipes.chat_router --out mmagent/weights/chat-router/router.json
"""The chat router: does a text-only request need the agent's tools at all, or is it plain chat?

Tool tuning taught the default to decline or call a tool on general questions its base model
answers ("Say hello in French" -> "I'm not able to speak French with the tools I have"): negative
transfer (`transfer_eval.py`). Tool retrieval's cosines cannot tell those apart from built-in
requests (on the generator's data the best built-in cosine of "remember ..." requests has median
0.17, general questions 0.15), so a linear probe on the same MiniLM sentence embedding decides:

    p(agent | request) = sigmoid(w . MiniLM(request) + b)     # w [384], logistic regression (L2)

"agent" = the request calls a built-in or is one no tool can serve (the tuned adapter declines it);
"chat" = general questions, greetings, thanks and closings, which the base LLM answers. A request
below `threshold` is offered no tool (`mmagent.backends.tool_retrieval`), and a folder whose
routing says `chat: base` serves it with the base LLM (`mmagent.model.adapter_routing`).

Trained on the generator's data only (recipes/data.py train split, natural.py, general_chat.py's
prompts), never on a test suite. The threshold is chosen by cross-validation over the generator's
templates (a phrasing never seen in training): the highest that routes at most `max_miss` of the
agent requests to chat, because a missed tool call costs more than a declined question.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

N_DATA, N_NATURAL, SEED = 6000, 2000, 11


def texts() -> list[tuple[str, int, str]]:
    """(request, 1 = agent / 0 = chat, template) of the generator's text-only requests, unique by text."""
    from mmagent.recipes import data, general_chat, natural

    out: dict[str, tuple[str, int, str]] = {}
    for ex in [*data.generate("train", N_DATA, SEED), *natural.generate(N_NATURAL, SEED)]:
        if ex.images or ex.audio:
            continue  # media turns keep the built-ins: a text encoder cannot see the image
        first = next(m for m in ex.messages if m.role == "assistant")
        agent = bool(first.tool_calls) or ex.kind == "unservable"
        out.setdefault(ex.messages[0].content, (ex.messages[0].content, int(agent), ex.template))
    for p in general_chat.general_prompts():
        out.setdefault(p.text, (p.text, 0, p.id))
    return list(out.values())


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 25) -> tuple[np.ndarray, float]:
    """Class-balanced L2 logistic regression by Newton's method (IRLS): x [N, D], y [N] in {0, 1} -> (w [D], b)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    cw = np.where(y == 1, n / (2 * y.sum()), n / (2 * (n - y.sum())))  # each class weighs half
    theta = np.zeros(d + 1)
    reg = l2 * np.eye(d + 1)
    reg[d, d] = 0.0  # no penalty on the bias
    for _ in range(iters):
        p = 1 / (1 + np.exp(-xb @ theta))
        grad = xb.T @ (cw * (p - y)) + reg @ theta
        hess = (xb * (cw * p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:d], float(theta[d])


def cross_validated(x: np.ndarray, y: np.ndarray, groups: list[str], folds: int = 5) -> np.ndarray:
    """Each request's p(agent) from a probe trained without its template [N]."""
    fold = np.array([sum(map(ord, g)) % folds for g in groups])
    p = np.zeros(len(y))
    for k in range(folds):
        w, b = fit(x[fold != k], y[fold != k])
        p[fold == k] = 1 / (1 + np.exp(-(x[fold == k] @ w + b)))
    return p


def threshold_for(p: np.ndarray, y: np.ndarray, max_miss: float) -> float:
    """The highest threshold that sends at most `max_miss` of the agent requests to chat."""
    agent = np.sort(p[y == 1])
    return float(agent[int(np.floor(max_miss * len(agent)))]) if len(agent) else 0.5


def train(out: Path, max_miss: float = 0.005) -> dict:
    from mmagent.atomic import atomic_write_text
    from mmagent.memory.embedders import load_text_embedder

    rows = texts()
    y = np.array([r[1] for r in rows], dtype=np.float64)
    x = np.asarray(load_text_embedder("minilm-l6").embed_texts([r[0] for r in rows]), dtype=np.float64)
    p = cross_validated(x, y, [r[2] for r in rows])
    t = threshold_for(p, y, max_miss)
    w, b = fit(x, y)
    report = {"agent_requests": int(y.sum()), "chat_requests": int(len(y) - y.sum()),
              "cv_agent_to_chat": float(np.mean(p[y == 1] < t)), "cv_chat_to_chat": float(np.mean(p[y == 0] < t))}
    router = {"format": 1, "encoder": "minilm-l6", "weights": [round(float(v), 6) for v in w], "bias": round(b, 6),
              "threshold": round(t, 6), "trained_on": f"recipes/chat_router.py: data.py train {N_DATA} + natural.py {N_NATURAL} "
              f"(seed {SEED}, text-only) + general_chat.py prompts", "cross_validation": report}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(router, indent=1))
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("mmagent/weights/chat-router/router.json"))
    ap.add_argument("--max-miss", type=float, default=0.005, help="agent requests the chosen threshold may send to chat (CV)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rep = train(a.out, a.max_miss)
    print(f"{a.out}: {rep['agent_requests']} agent / {rep['chat_requests']} chat requests; cross-validated over templates: "
          f"{rep['cv_agent_to_chat']:.1%} of agent requests and {rep['cv_chat_to_chat']:.1%} of chat requests routed to chat")


if __name__ == "__main__":
    main()
