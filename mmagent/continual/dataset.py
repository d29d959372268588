"""Feedback -> training examples, with the guards that keep a few users from steering the model.

Sources: turns rated up (the model's own calls/answer are the target) and corrected turns (the
correction is the target). A turn rated down without a correction teaches nothing and is skipped,
except in a preference build (`DatasetConfig.preference`, the `preference` update method):
- rated up          -> desirable (the model's own output), unpaired (KTO);
- rated down        -> undesirable (the model's own output), unpaired (KTO);
- corrected         -> a pair: the correction preferred over what the model did (DPO); a turn
                       whose output was empty (or equal to the correction) is desirable only.

Guards, applied in this order, every decision reported:
1. validity    - every target call must validate against its tool's pydantic input model.
2. dedup       - identical (prompt, media count, offered tools, target) pairs count once.
3. conflicts   - the same prompt with different targets: the target backed by most distinct
                 sessions wins; a tie is held for review (we cannot tell who is right).
4. outliers    - a target whose tool set disagrees with most of its lexical neighbours from
                 other sessions, or whose string arguments share nothing with the prompt, is held
                 for review instead of trained on.
5. per-session - at most `max_per_session` examples from one session per round (the rest held).
In a preference build the same guards see the thumbs-down too: a target rated up by some sessions
and down by others is a conflict (most sessions win, a tie is held), and a thumbs-down on what most
similar prompts from other sessions want is an outlier held for review.

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

from mmagent.feedback import Feedback, LoggedTurn, validate_calls
from mmagent.protocol.chat import Message, ToolCall
from mmagent.protocol.toolcall import format_calls

_ARTIFACT_ID = re.compile(r"^(image|audio|text)_\d+$")
_WORD = re.compile(r"[a-z0-9]+")


class DatasetConfig(BaseModel):
    max_per_session: int = Field(default=50, ge=1, description="Examples one session may contribute per round.")
    holdout_frac: float = Field(default=0.3, ge=0, lt=1, description="Share of prompts kept out of training for the gate.")
    neighbor_sim: float = Field(default=0.5, gt=0, le=1, description="Word-Jaccard similarity that makes two prompts neighbours.")
    min_neighbors: int = Field(default=3, ge=1, description="Neighbours needed before a target can be called an outlier.")
    min_agreement: float = Field(default=0.34, ge=0, le=1, description="Least share of neighbours whose tools must agree.")
    check_grounding: bool = Field(default=True, description="Hold string arguments that share no word with the prompt.")
    preference: bool = Field(default=False, description="Keep thumbs-down as undesirable examples and corrections as pairs (DPO / KTO).")
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
    # Preference builds: the target above is undesirable (a thumbs-down's own output), or it is
    # preferred over what the model did (a correction; `rejected_*`, empty when unpaired).
    label: Literal["desirable", "undesirable"] = "desirable"
    rejected_calls: list[ToolCall] = Field(default_factory=list)
    rejected_answer: str = ""
    # The target is the model's own output judged by a thumb (up or down), not one the user wrote: its
    # free-text arguments are the model's wording, and a held-out copy is scored on the rest (`suites.same_calls`).
    rated: bool = False

    @property
    def kind(self) -> Literal["pair", "desirable", "undesirable"]:
        if self.label == "undesirable":
            return "undesirable"
        return "pair" if self.rejected_calls or self.rejected_answer else "desirable"

    def target_text(self) -> str:
        """The assistant text in THE tool-call format (`mmagent.protocol.toolcall.format_calls`)."""
        return format_calls(self.calls) if self.calls else self.answer

    def rejected_text(self) -> str:
        return format_calls(self.rejected_calls) if self.rejected_calls else self.rejected_answer

    def messages(self, target_of: Example | None = None) -> list[Message]:
        """User turn -> this example's target (or `target_of`'s: KTO's mismatched pairs)."""
        t = target_of or self
        return [
            Message(role="user", content=self.prompt, images=self.images, audio=self.audio),
            Message(role="assistant", content="" if t.calls else t.answer, tool_calls=t.calls),
        ]

    def rejected_messages(self) -> list[Message]:
        calls, answer = self.rejected_calls, self.rejected_answer
        return [Message(role="user", content=self.prompt, images=self.images, audio=self.audio),
                Message(role="assistant", content="" if calls else answer, tool_calls=calls)]

    def key(self) -> tuple:
        return (_norm(self.prompt), len(self.images), len(self.audio), tuple(sorted(self.tools)), self.target_text(), self.label)

    def eval_item(self) -> dict[str, Any]:
        """The held-out case in the eval-suite shape (`recipes/eval.py`): exact allowed values.
        An undesirable one is an `avoid` item: success is any valid output but that one."""
        if self.label == "undesirable":
            return {"id": f"fb{self.feedback_id}", "prompt": self.prompt, "images": self.images, "expected": [],
                    "kind": "avoid", "avoid": self.target_text(), "tools": self.tools}
        expected = [{"name": c.name, "arguments": {k: [v] for k, v in c.arguments.items()}} for c in self.calls]
        item = {"id": f"fb{self.feedback_id}", "prompt": self.prompt, "images": self.images, "expected": expected,
                "answer": self.answer if not self.calls else None, "tools": self.tools}
        return {**item, "kind": "keep"} if self.rated else item


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
    examples = _to_examples(pairs, registry, decisions, cfg.preference)
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
    rows = sorted(json.dumps([e.prompt, e.images, e.audio, e.tools, e.target_text()]
                             + ([e.label, e.rejected_text()] if e.kind != "desirable" else []), sort_keys=True) for e in examples)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


# -- the guards ------------------------------------------------------------------------------


def _to_examples(pairs: Sequence[tuple[LoggedTurn, Feedback]], registry: Any, decisions: list[Decision],
                 preference: bool = False) -> list[Example]:
    out = []
    for turn, fb in pairs:
        ex = _example(turn, fb, preference)
        if isinstance(ex, str):
            decisions.append(Decision(feedback_id=fb.id, turn_id=turn.id, action="skipped", reason=ex))
            continue
        problems = validate_calls(ex.calls, registry, turn.tools or None) if ex.label == "desirable" else []
        if problems:  # an undesirable output is the model's own: it need not validate to be pushed down
            decisions.append(Decision(feedback_id=fb.id, turn_id=turn.id, action="rejected", reason="invalid target: " + " | ".join(problems)))
            continue
        out.append(ex)
    return out


def _example(turn: LoggedTurn, fb: Feedback, preference: bool) -> Example | str:
    """The feedback's example, or why it has none."""
    own_calls, own_answer = turn.calls, turn.answer if not turn.calls else ""
    label, rejected_calls, rejected_answer = "desirable", [], ""
    if fb.corrected:
        calls, answer = (fb.correct_calls, "") if fb.correct_calls is not None else ([], fb.correct_answer or "")
        if preference:  # the correction preferred over what the model did (DPO), when it did something else
            rejected_calls, rejected_answer = own_calls, own_answer
    elif fb.rating == "up":
        calls, answer = turn.calls, turn.answer
    elif preference:
        calls, answer, label = own_calls, own_answer, "undesirable"
    else:
        return "rated down without a correction: nothing to learn from (the preference method learns from it)"
    if not calls and not answer.strip():
        return "empty target" if label == "desirable" else "rated down, but the turn has no output to push down"
    ex = Example(prompt=turn.prompt, images=turn.images, audio=turn.audio, tools=turn.tools, calls=calls, answer=answer,
                 session=turn.session, feedback_id=fb.id, turn_id=turn.id, label=label,
                 rejected_calls=rejected_calls, rejected_answer=rejected_answer if rejected_answer.strip() else "",
                 rated=not fb.corrected)
    if ex.rejected_text() == ex.target_text():  # "corrected" to what it did: no pair to learn from
        ex = ex.model_copy(update={"rejected_calls": [], "rejected_answer": ""})
    return ex


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
    """Per prompt: one desirable target (most sessions win), then thumbs-down against it (`_polarity`)."""
    by_prompt: dict[tuple, list[Example]] = defaultdict(list)
    for ex in examples:
        by_prompt[ex.key()[:4]].append(ex)
    out, conflicts = [], []
    for group in by_prompt.values():
        ups = [ex for ex in group if ex.label == "desirable"]
        good = _vote_targets(ups, decisions, conflicts)
        bad = [ex for ex in group if ex.label == "undesirable"]
        out += _polarity(good, ups, bad, decisions, conflicts) if bad else good
    return out, conflicts


def _vote_targets(group: list[Example], decisions: list[Decision], conflicts: list[Conflict]) -> list[Example]:
    """Different desirable targets for one prompt: the one backed by most distinct sessions wins."""
    if not group:
        return []
    votes: dict[str, set[str]] = defaultdict(set)
    for ex in group:
        votes[ex.target_text()].add(ex.session)
    if len(votes) == 1:
        for ex in group[1:]:  # agreeing copies from several sessions train once
            decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="skipped", reason="duplicate (another session agreed)"))
        return [group[0]]
    ranked = sorted(votes.items(), key=lambda kv: -len(kv[1]))
    winner = None if len(ranked[1][1]) == len(ranked[0][1]) else ranked[0][0]
    conflicts.append(Conflict(prompt=group[0].prompt, targets={t: sorted(v) for t, v in votes.items()},
                              resolution=winner if winner else "held for review (tie)"))
    out = []
    for ex in group:
        if winner is not None and ex.target_text() == winner and not out:
            out.append(ex)
        elif winner is not None and ex.target_text() == winner:
            decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="skipped", reason="duplicate (conflict winner)"))
        else:
            action = "held_for_review" if winner is None else "rejected"
            why = "conflicting corrections tie" if winner is None else f"outvoted by {len(votes[winner])} session(s) in a conflict"
            decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action=action, reason=why))
    return out


def _polarity(good: list[Example], ups: list[Example], bad: list[Example], decisions: list[Decision],
              conflicts: list[Conflict]) -> list[Example]:
    """The same output rated up by some sessions and down by others: most sessions win, a tie is held.
    `good`: the desirable examples kept for the prompt; `ups`: all of them (every session's vote)."""
    out = list(good)
    for target in dict.fromkeys(ex.target_text() for ex in bad):
        down = [ex for ex in bad if ex.target_text() == target]
        voters = [ex for ex in ups if ex.target_text() == target]
        up = [ex for ex in good if ex.target_text() == target]
        if not voters:
            out.append(down[0])
            for ex in down[1:]:
                decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="skipped", reason="duplicate (another session agreed)"))
            continue
        for ex in down[1:]:  # several sessions agreeing it is wrong: trained once
            decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action="skipped", reason="duplicate (another session agreed)"))
        n_up, n_down = len({e.session for e in voters}), len({e.session for e in down})
        conflicts.append(Conflict(prompt=down[0].prompt, targets={f"up: {target}": sorted({e.session for e in voters}),
                                                                 f"down: {target}": sorted({e.session for e in down})},
                                  resolution="held for review (tie)" if n_up == n_down else ("up" if n_up > n_down else "down")))
        losers = [*up, down[0]] if n_up == n_down else (down[:1] if n_up > n_down else up)
        if n_down > n_up:
            out = [e for e in out if e not in up] + [down[0]]
        elif n_up == n_down:
            out = [e for e in out if e not in up]
        for ex in losers:
            action = "held_for_review" if n_up == n_down else "rejected"
            why = "rated up and down by as many sessions" if n_up == n_down else f"outvoted {max(n_up, n_down)}:{min(n_up, n_down)} (sessions rating it up vs down)"
            decisions.append(Decision(feedback_id=ex.feedback_id, turn_id=ex.turn_id, action=action, reason=why))
    return out


def _drop_outliers(examples: list[Example], cfg: DatasetConfig, decisions: list[Decision]) -> list[Example]:
    words = [_words(ex.prompt) for ex in examples]
    tools = [frozenset(c.name for c in ex.calls) for ex in examples]
    good = [j for j, ex in enumerate(examples) if ex.label == "desirable"]  # only what users want counts as a vote
    out = []
    for i, ex in enumerate(examples):
        reason = _ungrounded(ex) if cfg.check_grounding and ex.label == "desirable" else ""
        if not reason:
            neigh = [j for j in good if j != i and examples[j].session != ex.session and _jaccard(words[i], words[j]) >= cfg.neighbor_sim]
            if len(neigh) >= cfg.min_neighbors:
                agree = sum(tools[j] == tools[i] for j in neigh) / len(neigh)
                common = Counter(tools[j] for j in neigh).most_common(1)[0][0]
                # A thumbs-down is compared by its exact output: "right tool, wrong arguments" is a fair one.
                same = sum(examples[j].target_text() == ex.target_text() for j in neigh) / len(neigh)
                if ex.label == "desirable" and agree < cfg.min_agreement:
                    reason = (f"outlier: {len(neigh)} similar prompts from other sessions mostly call "
                              f"{sorted(common) or 'no tool'}, this one calls {sorted(tools[i]) or 'no tool'}")
                elif ex.label == "undesirable" and same > 1 - cfg.min_agreement:
                    reason = (f"outlier: {len(neigh)} similar prompts from other sessions want exactly the output "
                              f"this thumbs-down rates wrong ({ex.target_text()[:60]!r})")
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
