"""Feedback -> training examples, with the guards that keep a few users from steering the model.

Sources: turns rated up (the model's own calls/answer are the target) and corrected turns (the
correction is the target). A turn rated down without a correction teaches nothing and is skipped.

Guards, applied in this order, every decision reported:
1. validity    - every target call must validate against its tool's pydantic input model.
2. dedup       - identical (prompt, media count, offered tools, target) pairs count once.
3. conflicts   - the same prompt with different targets: the target backed by most distinct
                 sessions wins; a tie is held for review (we cannot tell who is right).
4. outliers    - a target whose tool set disagrees with most of its lexical neighbours from
                 other sessions, or whose string arguments share nothing with the prompt, is held
                 for review instead of trained on.
5. per-session - at most `max_per_session` examples from one session per round (the rest held).

What is left is split by prompt into train and held-out (never the same prompt in both); held-out
items become eval items for the gate's learning score.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from mmagent.chat import Message, ToolCall
from mmagent.feedback import Feedback, LoggedTurn, validate_calls
from mmagent.toolcall import format_calls

_ARTIFACT_ID = re.compile(r"^(image|audio|text)_\d+$")
_WORD = re.compile(r"[a-z0-9]+")


class DatasetConfig(BaseModel):
    max_per_session: int = Field(default=50, ge=1, description="Examples one session may contribute per round.")
    holdout_frac: float = Field(default=0.3, ge=0, lt=1, description="Share of prompts kept out of training for the gate.")
    neighbor_sim: float = Field(default=0.5, gt=0, le=1, description="Word-Jaccard similarity that makes two prompts neighbours.")
    min_neighbors: int = Field(default=3, ge=1, description="Neighbours needed before a target can be called an outlier.")
    min_agreement: float = Field(default=0.34, ge=0, le=1, description="Least share of neighbours whose tools must agree.")
    check_grounding: bool = Field(default=True, description="Hold string arguments that share no word with the prompt.")
    seed: int = 0


class Example(BaseModel):
    """One training conversation: user turn (+ media ids) -> assistant target (calls or answer)."""

    prompt: str
    images: list[str] = Field(default_factory=list)
    audio: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    calls: list[ToolCall] = Field(default_factory=list)
    answer: str = ""
    session: str = ""
    feedback_id: int | None = None
    turn_id: str = ""

    def target_text(self) -> str:
        """The assistant text in THE tool-call format (`mmagent.toolcall.format_calls`)."""
        return format_calls(self.calls) if self.calls else self.answer

    def messages(self) -> list[Message]:
        return [
            Message(role="user", content=self.prompt, images=self.images, audio=self.audio),
            Message(role="assistant", content="" if self.calls else self.answer, tool_calls=self.calls),
        ]

    def key(self) -> tuple:
        return (_norm(self.prompt), len(self.images), len(self.audio), tuple(sorted(self.tools)), self.target_text())

    def eval_item(self) -> dict[str, Any]:
        """The held-out case in the eval-suite shape (`recipes/eval.py`): exact allowed values."""
        expected = [{"name": c.name, "arguments": {k: [v] for k, v in c.arguments.items()}} for c in self.calls]
        return {"id": f"fb{self.feedback_id}", "prompt": self.prompt, "images": self.images, "expected": expected,
                "answer": self.answer if not self.calls else None, "tools": self.tools}


class Decision(BaseModel):
    feedback_id: int | None
    turn_id: str
    action: Literal["train", "heldout", "skipped", "rejected", "held_for_review"]
    reason: str = ""


class Conflict(BaseModel):
    prompt: str
    targets: dict[str, list[str]]  # target text -> sessions backing it
    resolution: str  # the winning target text, or "held for review (tie)"


class Build(BaseModel):
    train: list[Example]
    heldout: list[Example]
    decisions: list[Decision]
    conflicts: list[Conflict]
    data_hash: str

    def counts(self) -> dict[str, int]:
        return dict(Counter(d.action for d in self.decisions))


def build_dataset(pairs: Sequence[tuple[LoggedTurn, Feedback]], registry: Any, cfg: DatasetConfig | None = None) -> Build:
    cfg = cfg or DatasetConfig()
    decisions: list[Decision] = []
    examples = _to_examples(pairs, registry, decisions)
    examples = _dedup(examples, decisions)
    examples, conflicts = _resolve_conflicts(examples, decisions)
    examples = _drop_outliers(examples, cfg, decisions)
    examples = _limit_sessions(examples, cfg, decisions)
    train, heldout = _split(examples, cfg)
    for ex in train:
        decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="train"))
    for ex in heldout:
        decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="heldout"))
    return Build(train=train, heldout=heldout, decisions=decisions, conflicts=conflicts, data_hash=data_hash(train))


def data_hash(examples: Iterable[Example]) -> str:
    """sha256 over the canonical JSON of the training conversations (order-independent)."""
    rows = sorted(json.dumps([e.prompt, e.images, e.audio, e.tools, e.target_text()], sort_keys=True) for e in examples)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


# -- the guards ------------------------------------------------------------------------------


def _to_examples(pairs: Sequence[tuple[LoggedTurn, Feedback]], registry: Any, decisions: list[Decision]) -> list[Example]:
    out = []
    for turn, fb in pairs:
        def note(action: str, reason: str) -> None:
            decisions.append(Decision(feedback_id=fb.id, turn_id=turn.id, action=action, reason=reason))

        if fb.correct_calls is not None:
            calls, answer = fb.correct_calls, ""
        elif fb.correct_answer is not None:
            calls, answer = [], fb.correct_answer
        elif fb.rating == "up":
            calls, answer = turn.calls, turn.answer
        else:
            note("skipped", "rated down without a correction: nothing to learn from")
            continue
        problems = validate_calls(calls, registry, turn.tools or None)
        if problems:
            note("rejected", "invalid target: " + " | ".join(problems))
            continue
        if not calls and not answer.strip():
            note("skipped", "empty target")
            continue
        out.append(Example(prompt=turn.prompt, images=turn.images, audio=turn.audio, tools=turn.tools, calls=calls,
                           answer=answer, session=turn.session, feedback_id=fb.id, turn_id=turn.id))
    return out


def _dedup(examples: list[Example], decisions: list[Decision]) -> list[Example]:
    """Drops repeats of one example from the same session (copies from other sessions are votes)."""
    out, seen = [], set()
    for ex in examples:
        k = (ex.key(), ex.session)
        if k in seen:
            decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="skipped", reason="duplicate"))
            continue
        seen.add(k)
        out.append(ex)
    return out


def _resolve_conflicts(examples: list[Example], decisions: list[Decision]) -> tuple[list[Example], list[Conflict]]:
    by_prompt: dict[tuple, list[Example]] = defaultdict(list)
    for ex in examples:
        by_prompt[ex.key()[:4]].append(ex)
    out, conflicts = [], []
    for group in by_prompt.values():
        votes: dict[str, set[str]] = defaultdict(set)
        for ex in group:
            votes[ex.target_text()].add(ex.session)
        if len(votes) == 1:
            out.append(group[0])  # agreeing copies from several sessions train once
            for ex in group[1:]:
                decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="skipped", reason="duplicate (another session agreed)"))
            continue
        ranked = sorted(votes.items(), key=lambda kv: -len(kv[1]))
        tie = len(ranked[1][1]) == len(ranked[0][1])
        winner = None if tie else ranked[0][0]
        conflicts.append(Conflict(prompt=group[0].prompt, targets={t: sorted(s) for t, s in votes.items()},
                                  resolution=winner if winner else "held for review (tie)"))
        kept = False
        for ex in group:
            if winner is not None and ex.target_text() == winner and not kept:
                out.append(ex)
                kept = True
            elif winner is not None and ex.target_text() == winner:
                decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="skipped", reason="duplicate (conflict winner)"))
            else:
                action = "held_for_review" if winner is None else "rejected"
                why = "conflicting corrections tie" if winner is None else f"outvoted by {len(votes[winner])} session(s) in a conflict"
                decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action=action, reason=why))
    return out, conflicts


def _drop_outliers(examples: list[Example], cfg: DatasetConfig, decisions: list[Decision]) -> list[Example]:
    words = [_words(ex.prompt) for ex in examples]
    tools = [frozenset(c.name for c in ex.calls) for ex in examples]
    out = []
    for i, ex in enumerate(examples):
        reason = _ungrounded(ex) if cfg.check_grounding else ""
        if not reason:
            neigh = [j for j in range(len(examples)) if j != i and examples[j].session != ex.session
                     and _jaccard(words[i], words[j]) >= cfg.neighbor_sim]
            if len(neigh) >= cfg.min_neighbors:
                agree = sum(tools[j] == tools[i] for j in neigh) / len(neigh)
                if agree < cfg.min_agreement:
                    common = Counter(tools[j] for j in neigh).most_common(1)[0][0]
                    reason = (f"outlier: {len(neigh)} similar prompts from other sessions mostly call "
                              f"{sorted(common) or 'no tool'}, this one calls {sorted(tools[i]) or 'no tool'}")
        if reason:
            decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="held_for_review", reason=reason))
        else:
            out.append(ex)
    return out


def _ungrounded(ex: Example) -> str:
    """A free-text argument that shares no word (or word stem) with the prompt."""
    prompt = _words(ex.prompt)
    stems = {w[:4] for w in prompt}
    for c in ex.calls:
        for k, v in c.arguments.items():
            if not isinstance(v, str) or _ARTIFACT_ID.match(v) or len(v) < 4:
                continue
            vw = _words(v)
            if vw and not (vw & prompt) and not ({w[:4] for w in vw} & stems):
                return f"outlier: argument {c.name}.{k}={v!r} shares no word with the prompt"
    return ""


def _limit_sessions(examples: list[Example], cfg: DatasetConfig, decisions: list[Decision]) -> list[Example]:
    per: Counter[str] = Counter()
    out = []
    for ex in examples:
        per[ex.session] += 1
        if per[ex.session] > cfg.max_per_session:
            decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="held_for_review",
                                      reason=f"session {ex.session!r} is over its limit of {cfg.max_per_session} examples per round"))
        else:
            out.append(ex)
    return out


def _split(examples: list[Example], cfg: DatasetConfig) -> tuple[list[Example], list[Example]]:
    """Deterministic split by prompt hash; with at least 2 distinct prompts, at least one is held out."""
    prompts = sorted({_norm(ex.prompt) for ex in examples}, key=lambda p: hashlib.sha256(f"{cfg.seed}:{p}".encode()).hexdigest())
    if cfg.holdout_frac == 0 or len(prompts) < 2:
        return examples, []
    held = set(prompts[: max(1, round(len(prompts) * cfg.holdout_frac))])
    train = [ex for ex in examples if _norm(ex.prompt) not in held]
    heldout = [ex for ex in examples if _norm(ex.prompt) in held]
    return train, heldout


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
