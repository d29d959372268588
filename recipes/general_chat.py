"""General chat kept in the tool-tuning mix by self-distillation: the base model's own answers as targets.

Tool tuning must not cost what the model could already do (negative transfer, `transfer_eval.py`).
So the mix keeps general prompts that need no tool (facts, arithmetic, greetings, translation,
short writing; written here, `general_prompts()`), whose targets are what the BASE model (no
adapter, no tools, its plain chat) answers, greedy and short. The training conversation offers
tools (the built-ins or open-world ones) and the target is that plain answer: with tools in the
prompt, the model still answers as it did without them, and calls nothing.

`distill` runs the generator only for prompts missing from the JSONL cache (one line per prompt,
appended as they are made, so an interrupted run resumes); the generator is any
`Callable[[list[str]], list[str]]`, so tests plug in a fake and need no model. Answers are cut to
whole sentences; an arithmetic answer that lacks the right result is dropped (never train a wrong
sum), as is one that is empty or writes a tool call.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mmagent.recipes.data import Example

from mmagent.protocol.chat import Message

log = logging.getLogger(__name__)

Generator = Callable[[list[str]], list[str]]
BASE_MODEL = "smollm2-135m-instruct"
MAX_NEW_TOKENS = 64
DEFAULT_CACHE = Path(__file__).resolve().parent / "general_chat_distilled.jsonl"

FACTS = [
    "What is the tallest mountain on Earth?", "Which ocean is the largest?", "What gas do plants take in from the air?",
    "Who painted the Mona Lisa?", "What is the chemical symbol for gold?", "How many continents are there?",
    "What is the longest river in Africa?", "Which planet is known as the Red Planet?", "What do bees make?",
    "What language is spoken in Brazil?", "What is the capital of Japan?", "What is the capital of Canada?",
    "What is the capital of Kenya?", "What is the capital of Australia?", "How many hours are in a day?",
    "What is the main ingredient in guacamole?", "Why is the sky blue?", "What causes the seasons on Earth?",
    "What is photosynthesis?", "What is the difference between weather and climate?", "Who wrote Pride and Prejudice?",
    "What does DNA stand for?", "What is the hardest natural material?", "How many bones does an adult human have?",
    "What is the smallest prime number?", "What is a leap year?", "Which animal is the largest mammal?",
    "What is the speed of light roughly?", "What is the freezing point of water in Fahrenheit?", "What are the three states of matter?",
    "What does a thermometer measure?", "Why do we have day and night?", "What is the opposite of ancient?",
    "What is a synonym for quick?", "What is an adjective?", "What is the plural of mouse?",
    "What is the past tense of run?", "How many players are on a soccer team on the field?", "What is the capital of Italy?",
    "Which metal is liquid at room temperature?", "What is the boiling point of water in Fahrenheit?", "What is gravity?",
    "What is a noun?", "Where is the Sahara desert?", "What is the largest country by area?",
    "What do you call a baby cat?", "What is the main language of Argentina?", "How many strings does a standard guitar have?",
    "What is the primary source of energy for the Earth?", "What does a compass do?",
]
GREETINGS = [
    "Hi!", "Hello there.", "Good evening!", "Hey, how are you?", "How are you today?", "Good afternoon.", "Nice to meet you.",
    "Thanks for your help earlier.", "Thank you!", "Bye for now!", "See you later.", "Have a nice day!", "What's up?",
    "I'm back.", "Cheers, that's all I needed.", "Good night!", "Morning!", "Who made you?", "Are you a robot?",
    "Can you tell me a joke?", "I'm bored.", "I had a long day.", "Happy Friday!", "Thanks a lot, bye!",
]
WRITING = [
    "Write a haiku about rain.", "Write a haiku about the ocean.", "Give me a one-line slogan for a bakery.",
    "Write a short birthday message for my sister.", "Suggest a name for a pet turtle.", "Write one sentence describing autumn.",
    "Give me three words that rhyme with light.", "Write a short thank-you note to a teacher.", "Describe a cat in one sentence.",
    "Write a two-line poem about coffee.", "Suggest a title for a story about a lost key.", "Give me a tip for staying focused.",
    "Write a short motivational quote.", "Give me an idea for a rainy day activity.", "Write a polite way to decline an invitation.",
    "Describe the color blue to someone who cannot see.", "Write a tongue twister.", "Give me a fun fact about space.",
    "Write a short riddle.", "Suggest a healthy breakfast.", "Give me a tip for learning a new language.",
    "Write a one-sentence summary of Cinderella.", "Write a friendly reminder to drink water.", "Name three fruits that are red.",
    "Give me two tips for better sleep.", "Write a short welcome message for a new colleague.", "Suggest a name for a coffee shop.",
    "Explain what a rainbow is in one sentence.", "Write an opening line for a mystery novel.", "List three things to pack for a picnic.",
]
PHRASES = ["good morning", "thank you", "where is the station", "I love you", "good night", "how much is this", "see you tomorrow",
           "excuse me", "the bill please", "happy birthday", "water", "friend", "book", "cat", "I am hungry"]
LANGS = ["Spanish", "French", "German", "Italian", "Portuguese", "Dutch", "Japanese"]


@dataclass(frozen=True)
class Prompt:
    id: str
    category: str
    text: str
    check: str = ""  # a result the answer must contain (arithmetic), else any answer is kept


def general_prompts() -> list[Prompt]:
    """The general no-tool prompts (fixed: the cache is keyed by their text)."""
    out = [Prompt(f"fact-{i}", "fact", q) for i, q in enumerate(FACTS)]
    out += [Prompt(f"greeting-{i}", "greeting", q) for i, q in enumerate(GREETINGS)]
    out += [Prompt(f"writing-{i}", "writing", q) for i, q in enumerate(WRITING)]
    rng = random.Random("general-chat/translation")
    forms = ["How do you say '{p}' in {l}?", "Translate '{p}' into {l}.", "What is '{p}' in {l}?", "How would I say \"{p}\" in {l}?"]
    for i in range(36):
        out.append(Prompt(f"translation-{i}", "translation", rng.choice(forms).format(p=rng.choice(PHRASES), l=rng.choice(LANGS))))
    rng = random.Random("general-chat/arithmetic")
    for i in range(40):
        a, b = rng.randint(2, 60), rng.randint(2, 30)
        op = rng.choice(["+", "-", "*", "/", "%"])
        if op == "+":
            text, res = rng.choice(["What is {a} plus {b}?", "What's {a} + {b}?", "Add {a} and {b}."]).format(a=a, b=b), a + b
        elif op == "-":
            a += b
            text, res = rng.choice(["What is {a} minus {b}?", "What's {a} - {b}?", "Subtract {b} from {a}."]).format(a=a, b=b), a - b
        elif op == "*":
            a, b = a % 13 + 2, b % 11 + 2
            text, res = rng.choice(["What is {a} times {b}?", "What's {a} x {b}?", "Multiply {a} by {b}."]).format(a=a, b=b), a * b
        elif op == "/":
            a = a * b
            text, res = rng.choice(["What is {a} divided by {b}?", "What's {a} / {b}?"]).format(a=a, b=b), a // b
        else:
            p, w = rng.choice([10, 20, 25, 50]), rng.choice([40, 80, 120, 200, 60])
            text, res = f"What is {p}% of {w}?", p * w // 100
        out.append(Prompt(f"arithmetic-{i}", "arithmetic", text, str(res)))
    return out


def clean(prompt: Prompt, answer: str) -> str | None:
    """The answer cut to whole sentences; None when it cannot be a target (see the module docstring)."""
    text = answer.strip()
    if "<tool_call>" in text or "tool_call" in text:
        return None
    if text and text[-1] not in ".!?\"')":
        ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
        text = text[: ends[-1]] if ends else ""
    text = text.strip()
    if len(text) < 2:
        return None
    if prompt.check and not re.search(rf"(?<![\d.]){re.escape(prompt.check)}(?![\d]|\.\d)", text.replace(",", "")):
        return None
    return text


def base_model_generator(model: str = BASE_MODEL, max_new_tokens: int = MAX_NEW_TOKENS) -> Generator:
    """Greedy answers of the base LLM (no adapter) to plain user turns, as its own chat template renders them."""
    import torch

    from mmagent.model.backbone import load_causal_lm

    llm, tok = load_causal_lm(model, dtype=torch.float32)
    tok.padding_side = "left"

    @torch.no_grad()
    def generate(prompts: list[str]) -> list[str]:
        texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(llm.device)
        out = llm.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        return [tok.decode(row[enc["input_ids"].shape[1]:], skip_special_tokens=True).strip() for row in out]

    return generate


def distill(prompts: list[Prompt], cache: Path = DEFAULT_CACHE, generate: Generator | None = None, *, model: str = BASE_MODEL,
            max_new_tokens: int = MAX_NEW_TOKENS, batch: int = 8) -> dict[str, str]:
    """prompt text -> the base model's raw answer, from `cache` or made now (and appended to it)."""
    cache = Path(cache)
    key = {"model": model, "max_new_tokens": max_new_tokens}
    done: dict[str, str] = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if all(row.get(k) == v for k, v in key.items()):
                    done[row["prompt"]] = row["answer"]
    missing = list(dict.fromkeys(p.text for p in prompts if p.text not in done))
    if missing:
        log.info("distilling %d prompts with %s (cache %s)", len(missing), model, cache)
        gen = generate or base_model_generator(model, max_new_tokens)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("a") as f:
            for k in range(0, len(missing), batch):
                chunk = missing[k : k + batch]
                for p, a in zip(chunk, gen(chunk), strict=True):
                    done[p] = a
                    f.write(json.dumps({"prompt": p, "answer": a, **key}, ensure_ascii=False) + "\n")
                f.flush()
    return {p.text: done[p.text] for p in prompts}


def targets(prompts: list[Prompt], answers: dict[str, str]) -> list[tuple[Prompt, str]]:
    """(prompt, cleaned answer) for every prompt whose answer can be a target."""
    out = []
    for p in prompts:
        a = clean(p, answers.get(p.text, ""))
        if a is not None:
            out.append((p, a))
    return out


def chat_examples(rng: random.Random, n: int, pairs: list[tuple[Prompt, str]], tool_sets: Callable[[random.Random], list[dict] | None],
                  prefix: str = "chat") -> list[Example]:
    """`n` one-turn chats (prompts cycle in a seeded order), each offered `tool_sets(rng)` (None: the built-ins)."""
    if not pairs:
        return []
    order: list[int] = []
    out = []
    for i in range(n):
        if not order:
            order = list(range(len(pairs)))
            rng.shuffle(order)
        p, a = pairs[order.pop()]
        msgs = [Message(role="user", content=p.text), Message(role="assistant", content=a)]
        out.append(Example(f"{prefix}-{i:05d}", "chat", f"chat/{p.id}", msgs, tools=tool_sets(rng)))
    return out
