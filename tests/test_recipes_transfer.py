"""The negative-transfer eval: scoring of general answers, refusals and stray tool calls."""

from __future__ import annotations

from mmagent.training.scoring import SuiteItem
from mmagent.recipes.transfer_eval import is_correct, score

from mmagent.agent import ScriptedChatModel


def test_answers_match_as_words_case_insensitively():
    assert is_correct("The capital is Paris.", ["paris"])
    assert not is_correct("Comparison", ["paris"]) and not is_correct("12345", ["12"])
    assert is_correct("It is twelve.", ["12", "twelve"])


def test_score_counts_correct_declined_and_called():
    items = [SuiteItem(id=str(i), prompt=p, expected=[], answers=a)
             for i, (p, a) in enumerate([("capital of France?", ["Paris"]), ("2+2?", ["4"]), ("say hi", [])])]
    model = ScriptedChatModel(["Paris.", "I'm not able to do math with the tools I have.",
                               '<tool_call>{"name": "remember", "arguments": {"text": "hi"}}</tool_call>'])
    s = score(model, items, "scripted", None, "")
    assert (s.n, s.n_with_answers) == (3, 2)
    assert s.correct == 0.5 and round(s.declined, 3) == round(1 / 3, 3) and round(s.called, 3) == round(1 / 3, 3)
