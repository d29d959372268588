"""Scripted learning scenarios: a tiny world (tests, method comparison) and the embedded default.

Tiny world: a random 2-layer Llama (hidden 64) whose base is fully trained for a few seconds on
read_text / detect_faces requests with an image (standing in for the shipped tool-tuned default),
a small BPE tokenizer with the call scaffolding as whole tokens, and a 16-token patch encoder.
Users then ask for a newly added custom tool (`flip_coin`, later `roll_die`) that the model
mishandles; corrections are logged in the real interaction log and `learn` runs the real recipe
code, eval and gate on it.

Embedded scenario: the same story on `mmagent-default` with a custom `convert_currency` tool and
phrasings with amounts and currency codes (bench/learn.py times one round of 100 items).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image
from torch import nn

from mmagent.protocol.chat import Message, ToolCall
from mmagent.tools.base import ImageId, tool
from mmagent.tools.registry import ToolRegistry

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@tool(name="read_text")
def _read_text(image: ImageId) -> str:
    """Reads the text in an image.

    Args:
        image: The image to read.
    """
    return ""


@tool(name="detect_faces")
def _detect_faces(image: ImageId) -> int:
    """Finds faces in an image.

    Args:
        image: The image to look at.
    """
    return 0


@tool
def flip_coin() -> str:
    """Flips a fair coin and says heads or tails."""
    return random.choice(["heads", "tails"])


@tool
def roll_die() -> int:
    """Rolls a six-sided die."""
    return random.randint(1, 6)


@tool
def pick_card() -> str:
    """Draws a random card from a shuffled deck."""
    return random.choice(["ace of spades", "queen of hearts"])


@tool
def convert_currency(amount: float, to: str) -> float:
    """Converts an amount of euros to another currency.

    Args:
        amount: How many euros.
        to: Target currency code, e.g. USD.
    """
    return amount


READ = ["read the text in this image", "what does this sign say", "read this image for me", "tell me the words in the picture",
        "what is written on this", "read the writing please", "transcribe the text in the photo", "read out the label"]
FACES = ["how many faces are in this photo", "find the faces in this picture", "detect faces please", "are there people's faces here",
         "count the faces in the image", "spot any faces in this photo", "locate the faces", "show me where the faces are"]
COIN = ["flip a coin", "flip a coin for me", "please flip a coin", "can you flip a coin", "coin flip please", "toss a coin",
        "toss a coin for me", "flip the coin now", "do a coin flip", "could you toss a coin", "flip a coin please now", "quick coin toss"]
DIE = ["roll a die", "roll a die for me", "please roll a die", "can you roll a die", "die roll please", "throw a die",
       "throw a die for me", "roll the die now", "do a die roll", "could you throw a die", "roll a die please now", "quick die throw"]
# No-tool requests and their answers: the base answers these in text (the regression suite's no-tool cases).
CHAT = [("hello there, how is your day", "Hello! How can I help?"), ("thanks a lot for your help", "You are welcome."),
        ("who are you exactly", "I am a small assistant."), ("good morning to you", "Good morning!"),
        ("what are your skills", "I read text and find faces in images."), ("goodbye, see you tomorrow", "Goodbye!"),
        ("how are you doing today", "I am fine, thanks."), ("tell me a joke about cats", "I only know tool jokes.")]
# Phrasing variants: the regression suite is every base request in each (208 items: one item < 0.5 point).
VARIANTS = ["{}", "please {}", "{} please", "hey, {}", "could you {}", "{} now", "{} for me", "ok {}", "{} thanks"]
# The chats' own variants share no word with the coin / die / card requests ("please", "could you",
# "for me" ...): the 2-layer toy learnt those words as "call the new tool" and forgot chats that had them.
CHAT_VARIANTS = ["{}", "{}?", "so, {}", "well, {}", "um, {}", "{}, friend", "{} again", "oh, {}"]
CARD = ["pick a card", "pick a card for me", "please pick a card", "can you pick a card", "card draw please", "draw a card",
        "draw a card for me", "pick the card now", "do a card draw", "could you draw a card", "pick a card please now", "quick card pick"]
RT = ToolCall(name="read_text", arguments={"image": "image_1"})
DF = ToolCall(name="detect_faces", arguments={"image": "image_1"})
FC = ToolCall(name="flip_coin", arguments={})
RD = ToolCall(name="roll_die", arguments={})
PC = ToolCall(name="pick_card", arguments={})
HIDDEN = 128  # at 64, learning a text-only tool made most text-only chats call it too
TINY_RECIPE = {"lora": {"r": 16, "alpha": 32}, "steps": 60, "batch_size": 8, "grad_accum": 1, "lr": 5e-3, "warmup": 2,
               "save_every": 5, "max_len": 256, "adapter_dtype": "float32", "threads": 1}


def tiny_tools() -> ToolRegistry:
    return ToolRegistry([_read_text, _detect_faces, flip_coin, roll_die, pick_card])


def tiny_tokenizer():
    """Byte-level BPE with a ChatML template; tool names and call scaffolding are whole tokens so
    a call is a handful of decisions a 2-layer model learns in seconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from mmagent.protocol.toolcall import format_calls, render_tool_prompt

    corpus = [render_tool_prompt(tiny_tools().schemas()), "[attached: image_1] user assistant system tool"]
    corpus += READ + FACES + COIN + DIE + CARD + [p for p, _ in CHAT] + [format_calls([c]) for c in (RT, DF, FC, RD, PC)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus * 4, trainers.BpeTrainer(vocab_size=700, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>")
    tok.chat_template = CHATML
    # No added token spans a JSON key and its value ('"image": "image_1"' did): schema-guided decoding
    # (llguidance) then never offered it and the model, trained on it, wrote the id digit after digit.
    tok.add_tokens(["read_text", "detect_faces", "flip_coin", "roll_die", "pick_card", '<tool_call>{"name": "', '", "arguments": {',
                    '"image": "', "}}</tool_call>"])
    return tok


class PatchEncoder(nn.Module):
    """32x32 image -> 4x4 grid of 24-d features: [B, 16, 24] (the encoder protocol, tiny)."""

    modality = "image"
    hidden_size = 24
    num_tokens = 16

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            self.conv = nn.Sequential(nn.Conv2d(3, 12, 4, stride=4), nn.ReLU(), nn.Conv2d(12, 24, 2, stride=2))

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        import numpy as np

        arr = np.stack([np.asarray(im.convert("RGB").resize((32, 32))) for im in images])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255  # [B, 3, 32, 32]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(2).transpose(1, 2)  # [B, 16, 24]


def conversation(prompt: str, call: ToolCall | str, images: int = 1) -> list[Message]:
    """A request and its call (or, for a string, its text answer)."""
    answer = call if isinstance(call, str) else ""
    return [Message(role="user", content=prompt, images=[f"image_{i + 1}" for i in range(images)]),
            Message(role="assistant", content=answer, tool_calls=[] if answer else [call])]


def base_requests() -> list[tuple[str, ToolCall | str, int]]:
    """What the base does: read_text / detect_faces on an image, plain answers to chat, in every variant."""
    tools = [(v.format(p), c, 1) for p, c in [(p, RT) for p in READ] + [(p, DF) for p in FACES] for v in VARIANTS]
    return tools + [(v.format(p), a, 0) for p, a in CHAT for v in CHAT_VARIANTS]


def write_suite(folder: Path, items: Sequence[tuple[str, ToolCall | None, int]], name: str) -> Path:
    """An eval suite; a None call is a no-tool item."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 40), (200, 30, 30)).save(folder / "red.png")
    rows = [{"id": f"{name}{i}", "prompt": p, "images": ["red.png"] * n,
             "expected": [{"name": c.name, "arguments": {k: [v] for k, v in c.arguments.items()}}] if c else []}
            for i, (p, c, n) in enumerate(items)]
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


class TinyWorld:
    """Builds (once) and serves the tiny base; makes learning environments over it."""

    def __init__(self, root: Path, base_steps: int = 200):
        self.root = Path(root)
        self.base = self.root / "base"
        self.base_data = self.root / "base.jsonl"
        self.suite = write_suite(self.root / "suites", [(p, None if isinstance(c, str) else c, n) for p, c, n in base_requests()], "regression")
        if not (self.base / "config.json").is_file():
            self._write_base_data()
            self._train_base(base_steps)

    def _write_base_data(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 40), (200, 30, 30)).save(self.root / "red.png")
        # Chats three times: replaying the base data must remind a round of them about as often as of
        # the image tools (a new text-only tool competes with them, not with read_text).
        lines = [json.dumps({"images": ["red.png"] * n, "messages": [m.model_dump(exclude_defaults=True) for m in conversation(p, c, n)]})
                 for p, c, n in base_requests() for _ in range(1 if n else 3)]
        self.base_data.write_text("\n".join(lines) + "\n")

    def _fresh_llm(self):
        from transformers import LlamaConfig, LlamaForCausalLM

        tok = tiny_tokenizer()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            cfg = LlamaConfig(vocab_size=len(tok) + 1, hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True, pad_token_id=0)
            return LlamaForCausalLM(cfg), tok  # +1: room for <image> without resizing

    def _train_base(self, steps: int) -> None:
        """Full fine-tuning stands in for a pretrained, tool-tuned base. Embeddings (tied with the LM
        head) stay frozen, as in a real LLM whose vocabulary was not shaped by these tools; otherwise
        the unseen tools' output rows are pushed far down and no LoRA round can lift them."""
        from mmagent.continual.update import UpdateConfig, replay_buffer
        from mmagent.training.backbone import Backbone
        from mmagent.training.batching import batches_for_step, make_batch
        from mmagent.training.config import ToolTuningConfig
        from mmagent.training.data import encode_all
        from mmagent.training.loss import AssistantLoss
        from mmagent.training.sequences import system_prefix

        llm, tok = self._fresh_llm()
        mm = self._mmllm(llm, tok)
        for n, p in llm.named_parameters():
            p.requires_grad_("embed_tokens" not in n)
        bb, tools = Backbone(llm, tok, mm), tiny_tools().schemas()
        prefix = system_prefix(tok, tools)
        data = encode_all(bb, replay_buffer(UpdateConfig(replay_data=self.base_data), 10_000), tools, prefix)
        rc = ToolTuningConfig(batch_size=8, grad_accum=1, max_len=256)
        loss = AssistantLoss(llm, mm)
        opt = torch.optim.AdamW([p for p in llm.parameters() if p.requires_grad], lr=3e-3)
        llm.train()
        for step in range(steps):
            for b, px in [make_batch(bb, prefix, m, rc) for m in batches_for_step(data, step, rc)]:
                total, n = loss(b.prefix, b.input_ids, b.labels, b.position_ids, b.attention_mask, px)
                (total / n).backward()
            opt.step(), opt.zero_grad()
        llm.save_pretrained(self.base)

    @staticmethod
    def _mmllm(llm, tok):
        from mmagent.model.mmllm import MMLLM, MMLLMConfig

        return MMLLM(MMLLMConfig(llm="tiny", encoder="tiny"), llm, tok, PatchEncoder())

    def load_mmllm(self):
        from transformers import LlamaForCausalLM

        return self._mmllm(LlamaForCausalLM.from_pretrained(self.base).eval(), tiny_tokenizer()).eval()

    def load_backbone(self, _rc: Any = None):
        from mmagent.training.backbone import Backbone

        mm = self.load_mmllm()
        for p in mm.parameters():
            p.requires_grad_(False)
        return Backbone(mm.llm, mm.tokenizer, mm)

    def env(self, home: Path, on_step=None):
        """A `LearnEnv` over a fresh interaction log + adapter registry under `home`."""
        from mmagent.agent.log import InteractionLog
        from mmagent.continual.learn import LearnEnv
        from mmagent.continual.registry import AdapterRegistry
        from mmagent.continual.serving import AdapterChatModels
        from mmagent.continual.update import train_candidate
        from mmagent.feedback import FeedbackStore

        log = InteractionLog(Path(home) / "interactions.sqlite")
        red = (self.suite.parent / "red.png").read_bytes()
        return LearnEnv(feedback=FeedbackStore(log.path), turns=log, tools=tiny_tools(), registry=AdapterRegistry(Path(home) / "adapters"),
                        train=train_candidate, chat_model=AdapterChatModels(self.load_mmllm, "tiny"), regression_suite=self.suite,
                        media=lambda turn, aid: red, load_backbone=self.load_backbone, on_step=on_step)

    def config(self, method: str = "replay", steps: int = 100, min_gain: float = 25.0, replay_ratio: float = 4.0):
        from mmagent.continual.gate import GateConfig
        from mmagent.continual.learn import LearnConfig
        from mmagent.continual.update import UpdateConfig

        # 4 base conversations per feedback one: with 1:1, learning a text-only tool made the text-only
        # chats call it too (the per-tool floor caught it on the 208-item suite).
        return LearnConfig(update=UpdateConfig(method=method, replay_ratio=replay_ratio, replay_data=self.base_data,
                                               recipe={**TINY_RECIPE, "steps": steps}),
                           gate=GateConfig(max_regression_drop=1.0, min_learning_gain=min_gain))


def log_corrections(env, prompts: Sequence[str], call: ToolCall, tag: str, images: Sequence[str] = (), sessions: int = 4,
                    answer: str = "I cannot do that.") -> list[str]:
    """Logs one mishandled turn per prompt (the model answered in text) and a correction for each."""
    from mmagent.feedback import record_feedback

    ids = []
    tools = env.tools.names()
    for i, p in enumerate(prompts):
        tid = f"{tag}{i}"
        env.turns.start_turn(tid, f"{tag}-s{i % sessions}", p, list(images), [], tools, "scenario", None, False)
        env.turns.end_turn(tid, "ok", answer, None, 1, 0)
        record_feedback(env.feedback, env.turns, env.tools, tid, "down", correct_calls=[call])
        ids.append(tid)
    return ids


def log_thumbs(env, prompts: Sequence[str], call: ToolCall, tag: str, images: Sequence[str] = (), sessions: int = 4,
               up_every: int = 2, model: Any = None, wrong: str = "I cannot do that.") -> list[str]:
    """Thumbs only, no corrections: every `up_every`-th turn got `call` right (rated up, as a sampling
    agent sometimes does), the others are rated down. A down-rated turn logs what `model` (a
    `ChatModel`, the serving one) really answers there when given, else the `wrong` text."""
    from mmagent.feedback import record_feedback

    ids, tools = [], env.tools.names()
    schemas = env.tools.schemas()
    for i, p in enumerate(prompts):
        tid, right = f"{tag}{i}", i % up_every == 0
        calls, answer = ([call], "") if right else _served(model, p, schemas, wrong)
        env.turns.start_turn(tid, f"{tag}-s{i % sessions}", p, list(images), [], tools, "scenario", None, False)
        if calls:
            env.turns.log_calls(tid, [{"id": f"{tid}c1", "step": 1, "name": c.name, "arguments": c.arguments, "ok": True}
                                      for c in calls])
        env.turns.end_turn(tid, "ok", answer, None, 1, 0)
        record_feedback(env.feedback, env.turns, env.tools, tid, "up" if right else "down")
        ids.append(tid)
    return ids


def _served(model: Any, prompt: str, schemas: list[dict[str, Any]], wrong: str) -> tuple[list[ToolCall], str]:
    """What `model` answers to a text-only prompt (its calls, or its text), or the scripted `wrong`."""
    if model is None:
        return [], wrong
    res = model.chat([Message(role="user", content=prompt)], schemas, max_new_tokens=48)
    return (list(res.tool_calls), "") if res.tool_calls else ([], res.text or wrong)


CURRENCY_TEMPLATES = ["convert {a} euros to {c}", "how much is {a} EUR in {c}", "change {a} euros into {c}", "what are {a} euros in {c}",
                      "{a} euros to {c} please", "exchange {a} EUR to {c}", "give me {a} euros in {c}", "{a} EUR in {c}?",
                      "I have {a} euros, how many {c} is that", "turn {a} euros into {c}"]


def currency_feedback(n: int, seed: int = 0) -> list[tuple[str, ToolCall]]:
    """`n` distinct requests for the custom convert_currency tool with their correct calls."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        a, c, t = rng.randint(2, 500), rng.choice(["USD", "GBP", "JPY", "CHF", "SEK"]), rng.choice(CURRENCY_TEMPLATES)
        prompt = t.format(a=a, c=c)
        if prompt not in seen:
            seen.add(prompt)
            out.append((prompt, ToolCall(name="convert_currency", arguments={"amount": float(a), "to": c})))
    return out


@tool
def open_ticket(category: Literal["billing", "technical", "account", "shipping"], summary: str) -> str:
    """Opens a customer support ticket for a customer's problem or complaint.

    Args:
        category: The support queue for the ticket.
        summary: The problem in a few words.
    """
    return "T-1"


# A custom tool the shipped default mostly gets wrong: it calls open_ticket but fills in the first enum
# value, "billing", for nearly every request (right for 3 of 34 other-queue requests), while sampling at
# T 0.9-1.0 picks the right queue more often (14 of 80): the right samples are what thumbs alone can teach.
# Billing requests are 10% of the mix, so greedy starts near 17%.
TICKET_PROBLEMS = {
    "billing": ["I was charged twice for my subscription", "my invoice shows the wrong amount", "I want a refund for last month",
                "my card got billed after I cancelled", "the price on my bill went up without notice", "I paid but the invoice says unpaid",
                "there is a charge on my statement I don't recognise", "my discount code wasn't applied to the bill",
                "I need a receipt for my last payment", "the monthly fee was taken twice", "my refund hasn't come back to my card",
                "I was billed for a plan I never ordered"],
    "technical": ["the website crashes when I click save", "the app won't load on my laptop", "I get error 500 when uploading",
                  "the printer driver keeps failing", "the page is stuck on a loading spinner", "the app freezes after the update",
                  "the search button does nothing", "videos won't play in the browser", "the sync between my phone and laptop broke",
                  "the export to PDF produces a blank file", "the software shows a bug on startup", "the settings screen throws an error"],
    "account": ["I forgot my password and can't log in", "my account got locked", "I want to change the email on my profile",
                "I want to delete my user profile", "I need to reset my two-factor login", "I can't sign in with my username",
                "please merge my two accounts", "I want to change the name on my account", "my login code never arrives",
                "someone else is using my account", "I want to update my profile phone number", "my account was deactivated by mistake"],
    "shipping": ["my order never arrived", "the box came damaged in the mail", "the courier lost my package", "the delivery is two weeks late",
                 "I got the wrong item in my parcel", "the package was left at the wrong address", "my tracking number shows no movement",
                 "half of my order is missing from the box", "the delivery driver never showed up", "I need to change my delivery address",
                 "the parcel was returned to the sender", "my shipment is stuck at customs"],
}
TICKET_TEMPLATES = ["{p}, open a support ticket", "{p}, file a ticket", "please raise a support ticket: {p}", "open a ticket, {p}",
                    "can you open a support ticket? {p}", "{p}. Make a ticket for customer support",
                    "create a support ticket for me: {p}", "hi, {p} - please log a support ticket"]


def ticket_feedback(n: int, probe: int, seed: int = 0) -> tuple[list[tuple[str, ToolCall]], list[tuple[str, ToolCall]]]:
    """`n` feedback requests for open_ticket and `probe` fresh ones about problems the feedback never
    mentions (the last 3 of each queue's 12): learning the queues, not the sentences. 10% billing, the
    rest split over the other queues."""
    rng = random.Random(seed)

    def draw(part: slice, k: int) -> list[tuple[str, ToolCall]]:
        billing = round(k * 0.1)
        rest = k - billing
        others = [c for c in TICKET_PROBLEMS if c != "billing"]
        counts = {"billing": billing, **{c: rest // 3 + (j < rest % 3) for j, c in enumerate(others)}}
        picked = []
        for c, ps in TICKET_PROBLEMS.items():
            pool = [t.format(p=p) for p in ps[part] for t in TICKET_TEMPLATES]
            rng.shuffle(pool)
            if counts[c] > len(pool):
                raise ValueError(f"{k} requests: more than the phrasings of a queue")
            picked += [(q, ToolCall(name="open_ticket", arguments={"category": c})) for q in pool[: counts[c]]]
        rng.shuffle(picked)
        return picked

    return draw(slice(0, 9), n), draw(slice(9, None), probe)


def currency_requests(n: int, probe: int) -> tuple[list[tuple[str, ToolCall]], list[tuple[str, ToolCall]]]:
    """`n` feedback and `probe` fresh convert_currency requests (distinct prompts)."""
    requests = currency_feedback(n + probe)
    return requests[:n], requests[n:]


# bench/learn.py embedded --tool NAME: (the tool, (n feedback, n probe) -> (feedback requests, probe requests))
CUSTOM_TOOLS = {"currency": (convert_currency, currency_requests), "ticket": (open_ticket, ticket_feedback)}
