# Launch: .venv/bin/mmagent train tool-tuning --config recipes/configs/tools-embedded-default.yaml
"""Tool-calling instruction tuning (LLaVA stage 2 / GPT4Tools-style): LoRA on the LLM.

Conversations from `recipes/data.py` are rendered exactly as the backends render them at serving
time (`mmagent.protocol.toolcall.template_messages` + the model's chat template), and only the assistant
turns are trained (`recipes/sequences.py`). The system prompt (the tool list) is shared by every
conversation: it runs once per micro-batch and its KV cache serves all rows; conversations are
packed several to a row behind it. A record may bring its own tools (open-world data,
`recipes/open_world.py`): its system turn lists them; such conversations are grouped within a step
and run behind the part of the system turn they share, each carrying the rest of its own untrained
(`common_head`), which computes exactly what its full sequence would.

LoRA (Hu et al. 2021, arXiv 2106.09685) through peft on the attention and MLP projections; AdamW,
linear warmup then cosine decay; gradient accumulation; bf16 autocast or fp32; checkpoints with
optimizer state every `save_every` steps and automatic resume; the loss curve saved as PNG.
Several GPUs or nodes: the same script under `accelerate launch` / `torchrun`: each step's
conversations are dealt out over the processes (every process gets the same number of
micro-batches), gradients are reduced by accelerate and the loss is normalised by the step's
target tokens over all processes, so a step is the same whatever the number of processes.

Output folder (`out`):
    checkpoints/step-NNNNN/   adapter (peft format) + trainer_state.pt; `checkpoints/latest` names the newest
    adapter/                  the final adapter (peft format, `adapter_dtype`) + recipe.yaml
    metrics.jsonl, loss.png   one line per logged step; the curve
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from mmagent.recipes.sequences import IGNORE, Encoded, PackedBatch, collate, encode, pack, system_prefix
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from mmagent.model.cpu import training_precision
from mmagent.protocol.chat import Message

if TYPE_CHECKING:
    from accelerate import Accelerator

log = logging.getLogger(__name__)


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    targets: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TinyLLM(BaseModel):
    """A random Llama of this shape with `model`'s tokenizer (tests and CI)."""

    model_config = ConfigDict(extra="forbid")
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128


class DataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dir: Path | None = None  # train.jsonl / validation.jsonl from recipes/data.py; None: generate in memory
    seed: int = 0
    n_train: int = Field(4000, ge=1)
    n_validation: int = Field(64, ge=0)
    # Share of tool-using conversations kept whole (last tool result + final answer); the rest end
    # at the last call. Halves the tokens per example; answering from results is still learned.
    full_fraction: float = Field(1.0, ge=0, le=1)


class ToolTuningConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = "smollm2-135m-instruct"  # catalog name, local folder or hub id (text-only runs)
    tiny: TinyLLM | None = None
    # A saved MM-LLM folder (MMLLM.save_pretrained; e.g. mmagent/weights/mmagent-default): images go
    # through its encoder + projector exactly as at serving. None: the text-only LLM `model`.
    multimodal: Path | None = None
    train_projector: bool = True  # with `multimodal`: the projector trains with the adapter (LLaVA stage 2)
    adapter_name: str = "tools"
    data: DataSettings = DataSettings()
    out: Path = Path("runs/tool-tuning")
    lora: LoraSettings = LoraSettings()
    steps: int = Field(200, ge=1)
    batch_size: int = Field(16, ge=1)  # conversations per optimizer step
    # Micro-batches per step on one process (batch_size / grad_accum conversations each); several
    # processes share a step's conversations, so each runs fewer micro-batches of that size.
    grad_accum: int = Field(2, ge=1)
    lr: float = 8e-4
    warmup: int = 10
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    pack: bool = True
    max_len: int = 384  # suffix tokens per packed row
    share_prefix: bool = True
    precision: Literal["auto", "fp32", "bf16"] = "fp32"  # auto: bf16 where native (mmagent.model.cpu)
    threads: int = 2
    save_every: int = 50
    eval_every: int = 0  # 0: validation loss only at the end
    log_every: int = 1
    seed: int = 0
    resume: bool = True
    adapter_dtype: Literal["float32", "float16", "bfloat16"] = "float16"
    gradient_checkpointing: bool = False


# --------------------------------------------------------------------------- model


@dataclass
class Backbone:
    """What the recipe trains: the LLM (adapters injected in place), its tokenizer, and the MM-LLM if any."""

    llm: nn.Module
    tok: Any
    mm: Any = None  # mmagent.model.mmllm.MMLLM

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameters(self):
        yield from self.llm.parameters()
        if self.mm is not None:
            yield from self.mm.projector.parameters()


def build_backbone(cfg: ToolTuningConfig) -> Backbone:
    """The base model with a fresh LoRA adapter (and a trainable projector for MM runs)."""
    from mmagent.model import lora
    if cfg.multimodal is not None:
        from mmagent.model.mmllm import MMLLM

        mm = MMLLM.from_pretrained(cfg.multimodal, dtype=torch.float32)
        bb = Backbone(mm.llm, mm.tokenizer, mm)
        for p in mm.projector.parameters():
            p.requires_grad_(cfg.train_projector)
    else:
        bb = Backbone(*build_llm(cfg))
        for p in bb.llm.parameters():
            p.requires_grad_(False)
    settings = lora.LoraSettings(r=cfg.lora.r, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout, target_modules=cfg.lora.targets)
    if cfg.adapter_name in lora.adapter_names(bb.llm):
        lora.set_adapter(bb.llm, cfg.adapter_name)
    else:
        lora.add_adapter(bb.llm, cfg.adapter_name, settings)
    for n, p in bb.llm.named_parameters():
        p.requires_grad_(f".{cfg.adapter_name}." in n)
    return bb


def build_llm(cfg: ToolTuningConfig) -> tuple[nn.Module, Any]:
    """The text-only base causal LM (real weights, or a tiny random Llama for tests) and its tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from mmagent.hub.catalog import CATALOG
    from mmagent.model.backbone import backbone_path, load_causal_lm

    if cfg.tiny is None:
        return load_causal_lm(cfg.model, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(backbone_path(CATALOG.resolve(cfg.model)))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    t = cfg.tiny
    lc = LlamaConfig(vocab_size=len(tok), hidden_size=t.hidden, intermediate_size=t.intermediate, num_hidden_layers=t.layers,
                     num_attention_heads=t.heads, num_key_value_heads=t.kv_heads, max_position_embeddings=4096,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(lc), tok


class AssistantLoss(nn.Module):
    """Summed next-token loss on assistant tokens of a packed batch (and how many there were).

    The LM head runs only where a label exists: on a 49k vocabulary the full [B, T, V] logits
    would dominate memory while only ~15% of positions are trained. Images (MM runs) are spliced
    into the suffix embeddings by the MM-LLM (`MMLLM.embed`: one mask assignment).
    """

    def __init__(self, llm: nn.Module, mm: Any = None, share_prefix: bool = True) -> None:
        super().__init__()
        self.llm = llm
        self.mm = mm
        self.share_prefix = share_prefix

    def forward(self, prefix: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor, position_ids: torch.Tensor,
                attention_mask: torch.Tensor, pixel_values: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        body = self.llm.model  # the decoder stack under the LM head
        B, P = input_ids.shape[0], prefix.shape[1]
        embeds = self.mm.embed(input_ids, pixel_values) if self.mm is not None else body.embed_tokens(input_ids)  # [B, T, D]
        if self.share_prefix:
            cache = body(input_ids=prefix, use_cache=True).past_key_values  # one pass over [1, P]
            cache.batch_repeat_interleave(B)
            h = body(inputs_embeds=embeds, position_ids=position_ids, attention_mask=attention_mask, past_key_values=cache).last_hidden_state
        else:  # the baseline: every row carries its own copy of the prefix
            pre = body.embed_tokens(prefix).expand(B, P, -1)
            dev = input_ids.device
            pos = torch.cat([torch.arange(P, device=dev).expand(B, P), position_ids], 1)
            top = torch.zeros(B, 1, P, P + input_ids.shape[1], dtype=torch.bool, device=dev)
            top[:, :, :, :P] = torch.ones(P, P, dtype=torch.bool, device=dev).tril()
            mask = torch.cat([top, attention_mask], 2)
            h = body(inputs_embeds=torch.cat([pre, embeds], 1), position_ids=pos, attention_mask=mask, use_cache=False).last_hidden_state[:, P:]
        targets = labels[:, 1:]  # token t is predicted from position t-1: [B, T-1]
        sel = targets != IGNORE
        logits = self.llm.lm_head(h[:, :-1][sel])  # [N, V] only where trained
        loss = nn.functional.cross_entropy(logits.float(), targets[sel], reduction="sum")
        return loss, sel.sum()


# --------------------------------------------------------------------------- data


@dataclass
class Conversation:
    messages: list[Message]
    images: dict[str, Any]  # artifact id -> PIL image
    # Its own tool schemas (open-world data: `recipes/open_world.py`, a record's "tools"); None: the
    # built-in registry's, shared by every conversation.
    tools: list[dict[str, Any]] | None = None
    whole: bool = False  # never shortened (a record's "whole": its last turns are what it teaches)


def load_conversations(cfg: ToolTuningConfig, split: str, n: int) -> list[Conversation]:
    """Conversations of a split: from `data.dir` if set, else generated in memory from the seed."""
    if cfg.data.dir is not None:
        from PIL import Image

        root = Path(cfg.data.dir)
        path = root / f"{split}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: generate it with `python -m mmagent.recipes.data --out {root}` or set data.dir=null")
        out = []
        for line in path.read_text().splitlines()[:n]:
            rec = json.loads(line)
            images = {f"image_{j}": Image.open(root / rel).convert("RGB") for j, rel in enumerate(rec["images"], start=1)}
            tools = rec.get("tools")
            if tools is not None and not tools:
                raise ValueError(f"{path}: record {rec.get('id')} has an empty tools list: leave 'tools' out for the built-in tools")
            out.append(Conversation([Message.model_validate(m) for m in rec["messages"]], images, tools, bool(rec.get("whole"))))
        return [shorten(c, cfg.data.full_fraction, random.Random(f"{cfg.data.seed}/{split}/{i}")) for i, c in enumerate(out)]
    from mmagent.recipes.data import generate

    convs = [Conversation(ex.messages, {f"image_{j}": d.image for j, d in enumerate(ex.images, start=1)}) for ex in generate(split, n, cfg.data.seed)]
    return [shorten(c, cfg.data.full_fraction, random.Random(f"{cfg.data.seed}/{split}/{i}")) for i, c in enumerate(convs)]


def shorten(c: Conversation, full_fraction: float, rng: random.Random) -> Conversation:
    """Ends a tool-using conversation at its last call turn, unless drawn to stay whole."""
    last_call = max((i for i, m in enumerate(c.messages) if m.role == "assistant" and m.tool_calls), default=None)
    if last_call is None or rng.random() < full_fraction or c.whole:
        return c
    return Conversation(c.messages[: last_call + 1], c.images, c.tools)


def tool_schemas() -> list[dict[str, Any]]:
    from mmagent.tools.registry import default_registry

    return default_registry().schemas()


@dataclass
class Sample:
    """An encoded conversation and its images in placeholder order.

    `head`: the token ids of its own system turn when it brings its own tools (`enc` follows it);
    None: the shared prefix of the run's built-in tools."""

    enc: Encoded
    images: list[Any] = field(default_factory=list)
    head: list[int] | None = None

    @property
    def ids(self) -> list[int]:
        return self.enc.ids


def encode_all(bb: Backbone, convs: list[Conversation], tools: list[dict[str, Any]], prefix: list[int]) -> list[Sample]:
    """Token ids + labels after the shared prefix; MM runs render through `MMLLM.build_inputs` (as serving does).

    A conversation with its own tools is rendered with them (its system turn lists them, as at
    serving) and keeps that turn's ids as its `head`."""
    heads: dict[str, list[int]] = {}
    out = []
    for c in convs:
        own, head = tools, prefix
        if c.tools is not None:
            own = c.tools
            key = json.dumps(c.tools, sort_keys=True)
            if key not in heads:
                heads[key] = system_prefix(bb.tok, c.tools)
            head = heads[key]
        if bb.mm is None:
            s = Sample(encode(bb.tok, c.messages, own, head))
        else:
            inp = bb.mm.build_inputs(c.messages, own, artifacts=c.images)
            ids, labels = inp.input_ids.tolist(), inp.labels.tolist()
            if ids[: len(head)] != head:
                raise ValueError("conversation does not start with the shared system prefix")
            order = [i for m in c.messages for i in m.images]
            s = Sample(Encoded(ids[len(head):], labels[len(head):]), [c.images[i] for i in order])
        s.head = None if head is prefix else head
        out.append(s)
    return out


def common_head(prefix: list[int], samples: list[Sample]) -> tuple[list[int], list[Sample]]:
    """The longest system prefix a micro-batch's conversations share, and the conversations behind it.

    Where every conversation uses the built-in tools this is `prefix` and the samples are returned
    as they are. Otherwise the shared part is the common start of their system turns (the call-format
    instructions), and each conversation carries the rest of its own system turn untrained in front
    of its suffix: the same tokens at the same positions as its full sequence."""
    heads = [s.head if s.head is not None else prefix for s in samples]
    if all(h is prefix for h in heads):
        return prefix, samples
    n = min(len(h) for h in heads)
    for k in range(n):
        if any(h[k] != heads[0][k] for h in heads):
            n = k
            break
    if n == 0:
        raise ValueError("the conversations' system turns share no first token: the chat template renders them differently")
    common = heads[0][:n]
    out = [s if len(h) == n else Sample(Encoded(h[n:] + s.enc.ids, [IGNORE] * (len(h) - n) + s.enc.labels), s.images)
           for s, h in zip(samples, heads)]
    return common, out


def step_examples(data: list[Sample], step: int, cfg: ToolTuningConfig) -> list[Sample]:
    """The conversations of one optimizer step: a seeded shuffle per epoch, so a resumed run sees the same stream."""
    picked = []
    for i in range(step * cfg.batch_size, (step + 1) * cfg.batch_size):
        epoch, j = divmod(i, len(data))
        order = list(range(len(data)))
        random.Random(cfg.seed * 1000 + epoch).shuffle(order)
        picked.append(data[order[j]])
    return picked


def masked(s: Sample) -> Sample:
    """A copy that is computed but not learned from (no target tokens)."""
    return Sample(Encoded(s.enc.ids, [IGNORE] * len(s.enc.ids)), s.images, s.head)


def batches_for_step(data: list[Sample], step: int, cfg: ToolTuningConfig, rank: int = 0, world: int = 1) -> list[list[Sample]]:
    """Process `rank`'s micro-batches of one step (of at most batch_size / grad_accum conversations).

    The step's conversations are dealt out round-robin, and a process left short is topped up with
    masked copies, which leave the step's gradient unchanged. (Only the step's last backward syncs,
    so a micro-batch that `make_batches` runs as two passes on one process needs no partner.)
    """
    # Conversations with their own tools go together, so most micro-batches share one whole system
    # turn (`common_head`); the step's gradient is the same in any order. Stable: built-in-only data is
    # dealt exactly as before.
    picked = sorted(step_examples(data, step, cfg), key=lambda s: s.head is not None)
    share = math.ceil(len(picked) / world)
    mine = picked[rank::world]
    mine += [masked(s) for s in picked[: share - len(mine)]]
    per = math.ceil(cfg.batch_size / cfg.grad_accum)
    return [mine[k : k + per] for k in range(0, share, per)]


def make_batches(bb: Backbone, prefix: list[int], samples: list[Sample], cfg: ToolTuningConfig) -> list[tuple[PackedBatch, torch.Tensor | None]]:
    """The forward passes of one micro-batch: its built-in-tools conversations behind the run's shared
    prefix (exactly one pass, as before, when there are no others), and its conversations with their
    own tools behind the start of the system turn they share (`common_head`). Kept apart, a built-in
    conversation never carries the rest of the built-in system turn as untrained suffix tokens."""
    builtin = [s for s in samples if s.head is None]
    own = [s for s in samples if s.head is not None]
    return [make_batch(bb, prefix, group, cfg) for group in (builtin, own) if group]


def make_batch(bb: Backbone, prefix: list[int], samples: list[Sample], cfg: ToolTuningConfig) -> tuple[PackedBatch, torch.Tensor | None]:
    """Packed tensors + the pixels of every image in row-major placeholder order (one pass: a mix of
    built-in and own-tools conversations shares only the start of the system turn, `make_batches` splits it)."""
    prefix, samples = common_head(prefix, samples)
    by_enc = {id(s.enc): s for s in samples}
    rows = pack([s.enc for s in samples], cfg.max_len) if cfg.pack else [[s.enc] for s in samples]
    if any(len(s.ids) > cfg.max_len and s.images for s in samples):
        raise ValueError(f"a conversation with images is longer than max_len={cfg.max_len}: raise max_len so no image is cut")
    pad_id = bb.tok.pad_token_id if bb.tok.pad_token_id is not None else bb.tok.eos_token_id
    batch = collate(prefix, rows, cfg.max_len, pad_id)
    images = [img for row in rows for e in row for img in by_enc[id(e)].images]
    pixels = bb.mm.encoder.preprocess(images) if images and bb.mm is not None else None
    device = next(bb.llm.parameters()).device
    return batch.to(device), pixels.to(device) if pixels is not None else None


# --------------------------------------------------------------------------- checkpoints and curves


def lr_lambda(cfg: ToolTuningConfig):
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return f


def save_adapter(llm: nn.Module, name: str, folder: Path, dtype: str = "float32") -> Path:
    """peft-format adapter folder (loads with `mmagent.model.lora.load_adapter`); LoRA tensors only.

    `save_embedding_layers=False`: the MM-LLM resizes the embeddings for its `<image>` token, and
    peft would otherwise ship the whole (tied) embedding matrix with every adapter.
    """
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = get_peft_model_state_dict(llm, adapter_name=name, save_embedding_layers=False)
    save_file({k: v.detach().to(getattr(torch, dtype)).contiguous().cpu() for k, v in state.items()}, str(folder / "adapter_model.safetensors"))
    llm.peft_config[name].save_pretrained(str(folder))
    meta = json.loads((folder / "adapter_config.json").read_text())
    meta["base_model_name_or_path"] = getattr(llm.config, "_name_or_path", "") and Path(llm.config._name_or_path).parent.name or meta.get("base_model_name_or_path")
    (folder / "adapter_config.json").write_text(json.dumps(meta, indent=2))  # a catalog-style name, not this machine's cache path
    return folder


def load_adapter_state(bb: Backbone, name: str, state: dict[str, torch.Tensor]) -> None:
    """Copies saved LoRA tensors (keys without the adapter name) into the live adapter `name`."""
    params = {n.replace(f".{name}.", "."): p for n, p in bb.llm.named_parameters() if f".{name}." in n}
    missing = set(params) - set(state)
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} adapter tensors (e.g. {sorted(missing)[0]}): was it trained with other LoRA settings?")
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(state[k])


def save_checkpoint(out: Path, step: int, bb: Backbone, cfg: ToolTuningConfig, opt: torch.optim.Optimizer, sched: Any) -> Path:
    """Adapter (+ projector) + optimizer/scheduler state; `latest` is rewritten atomically last, so a kill leaves the previous one valid."""
    from safetensors.torch import save_file

    d = out / "checkpoints" / f"step-{step:05d}"
    save_adapter(bb.llm, cfg.adapter_name, d / "adapter")
    if bb.mm is not None:
        save_file({k: v.contiguous() for k, v in bb.mm.projector.state_dict().items()}, str(d / "projector.safetensors"))
    torch.save({"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, d / "trainer_state.pt")
    tmp = out / "checkpoints" / "latest.tmp"
    tmp.write_text(d.name)
    tmp.replace(out / "checkpoints" / "latest")
    return d


def load_checkpoint(out: Path, bb: Backbone, cfg: ToolTuningConfig, opt: torch.optim.Optimizer, sched: Any) -> int:
    """Restores the newest checkpoint if any; returns the step to continue from (0 if none)."""
    from safetensors.torch import load_file

    latest = out / "checkpoints" / "latest"
    if not latest.is_file():
        return 0
    d = out / "checkpoints" / latest.read_text().strip()
    load_adapter_state(bb, cfg.adapter_name, load_file(d / "adapter" / "adapter_model.safetensors"))
    if bb.mm is not None and (d / "projector.safetensors").is_file():
        bb.mm.load_projector(d / "projector.safetensors")
    state = torch.load(d / "trainer_state.pt", weights_only=True)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    log.info("resumed from %s", d)
    return int(state["step"])


def plot_curves(metrics: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot(*zip(*train), label="train (assistant tokens)")
    if val:
        ax.plot(*zip(*val), "o-", label="validation")
    ax.set_xlabel("optimizer step"), ax.set_ylabel("loss (nats/token)"), ax.set_yscale("log"), ax.legend(), ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def export(bb: Backbone, cfg: ToolTuningConfig, dst: Path) -> Path:
    """The result. MM runs: a complete `MMLLM.save_pretrained`-layout folder (`mmllm_config.json` with
    the adapter active, `projector.safetensors`, `adapters/<name>/`) that `MMLLM.from_pretrained` and
    `load_chat_model` load; text-only runs: the adapter folder. Adapter tensors in `adapter_dtype`."""
    from safetensors.torch import save_file

    dst.mkdir(parents=True, exist_ok=True)
    if bb.mm is None:
        save_adapter(bb.llm, cfg.adapter_name, dst, cfg.adapter_dtype)
    else:
        from mmagent.model.mmllm import ADAPTERS_DIR, CONFIG_FILE, PROJECTOR_FILE

        save_adapter(bb.llm, cfg.adapter_name, dst / ADAPTERS_DIR / cfg.adapter_name, cfg.adapter_dtype)
        save_file({k: v.contiguous() for k, v in bb.mm.projector.state_dict().items()}, str(dst / PROJECTOR_FILE))
        mcfg = bb.mm.config.model_copy(update={"adapters": [cfg.adapter_name], "active_adapter": cfg.adapter_name})
        (dst / CONFIG_FILE).write_text(mcfg.model_dump_json(indent=2))
    (dst / "recipe.yaml").write_text(_dump_yaml(cfg))
    return dst


# --------------------------------------------------------------------------- the loop


@torch.no_grad()
def validation_loss(loss_fn: AssistantLoss, bb: Backbone, prefix: list[int], data: list[Sample], cfg: ToolTuningConfig, autocast) -> float:
    tot, n = 0.0, 0
    per = math.ceil(cfg.batch_size / cfg.grad_accum)
    for k in range(0, len(data), per):
        for b, px in make_batches(bb, prefix, data[k : k + per], cfg):
            with autocast():
                l, c = loss_fn(b.prefix, b.input_ids, b.labels, b.position_ids, b.attention_mask, px)
            tot, n = tot + l.item(), n + int(c)
    return tot / max(n, 1)


def step_tokens(acc: Accelerator, batches: list[tuple[PackedBatch, torch.Tensor | None]]) -> int:
    """Target tokens of the step on all processes (at least 1): the loss is a mean over all of them."""
    n = sum(int((b.labels[:, 1:] != IGNORE).sum()) for b, _ in batches)
    return max(1, int(acc.reduce(torch.tensor(n, device=acc.device), "sum")))


def train(cfg: ToolTuningConfig, on_step: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Runs (or resumes) the recipe; returns the exported result folder. `on_step` gets each
    optimizer step's metrics row (the CLI's progress bar). Under torchrun the process group ends
    with the run (one run per launch)."""
    from accelerate import Accelerator

    torch.set_num_threads(cfg.threads)
    precision = training_precision(cfg.precision)
    acc = Accelerator(mixed_precision="bf16" if precision == "bf16" else "no", cpu=not torch.cuda.is_available())
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(_dump_yaml(cfg))
    bb = build_backbone(cfg)
    bb.llm.to(acc.device), bb.mm.to(acc.device) if bb.mm is not None else None
    if cfg.gradient_checkpointing:
        bb.llm.gradient_checkpointing_enable()
    tools = tool_schemas()
    prefix = system_prefix(bb.tok, tools)
    train_data = encode_all(bb, load_conversations(cfg, "train", cfg.data.n_train), tools, prefix)
    val_data = encode_all(bb, load_conversations(cfg, "validation", cfg.data.n_validation), tools, prefix)
    log.info("prefix %d tokens; %d train conversations, mean suffix %.0f tokens", len(prefix), len(train_data),
             sum(len(e.ids) for e in train_data) / len(train_data))
    params = bb.trainable()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    start = load_checkpoint(out, bb, cfg, opt, sched) if cfg.resume else 0
    # The schedule is not prepared: it counts optimizer steps of the whole batch, while accelerate's
    # wrapper steps it once per process (for per-process batches), running it N times too fast.
    loss_fn, opt = acc.prepare(AssistantLoss(bb.llm, bb.mm, cfg.share_prefix), opt)
    metrics = (out / "metrics.jsonl").open("a")
    for step in range(start, cfg.steps):
        t0 = time.perf_counter()
        micro = batches_for_step(train_data, step, cfg, acc.process_index, acc.num_processes)
        # One pass per micro-batch on built-in data; a micro-batch that also holds conversations with
        # their own tools is two passes (`make_batches`). Each pass has its own backward and only the
        # step's last one syncs, so processes may run different numbers of them.
        batches = [part for m in micro for part in make_batches(bb, prefix, m, cfg)]
        n_total = step_tokens(acc, batches)
        loss_sum, tokens = 0.0, 0
        for k, (b, px) in enumerate(batches):
            # Gradients accumulate locally; only the step's last backward needs DDP's all-reduce.
            with acc.no_sync(loss_fn) if k + 1 < len(batches) else contextlib.nullcontext():
                with acc.autocast():
                    l, _ = loss_fn(b.prefix, b.input_ids, b.labels, b.position_ids, b.attention_mask, px)
                # DDP averages the processes' gradients: scaling by their number makes the result the
                # gradient of the step's summed loss over its tokens on all processes, as on one.
                acc.backward(l * acc.num_processes / n_total)
            loss_sum, tokens = loss_sum + l.item(), tokens + b.n_tokens + b.prefix.numel()
        acc.clip_grad_norm_(params, cfg.grad_clip)
        opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
        loss_sum, tokens = acc.reduce(torch.tensor([loss_sum, tokens], dtype=torch.float64, device=acc.device), "sum").tolist()
        dt = time.perf_counter() - t0
        row: dict[str, Any] = {"step": step + 1, "loss": loss_sum / n_total, "lr": sched.get_last_lr()[0],
                               "seconds": round(dt, 3), "tokens_per_s": round(tokens / dt, 1), "examples_per_s": round(cfg.batch_size / dt, 2)}
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and val_data:
            row["val_loss"] = validation_loss(acc.unwrap_model(loss_fn), bb, prefix, val_data, cfg, acc.autocast)
        if acc.is_main_process:
            metrics.write(json.dumps(row) + "\n"), metrics.flush()
            if on_step is not None:
                on_step(row)
            if (step + 1) % cfg.log_every == 0:
                log.info("step %d loss %.4f lr %.2e %.1f s (%.0f tok/s)", step + 1, row["loss"], row["lr"], dt, row["tokens_per_s"])
            if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps:
                save_checkpoint(out, step + 1, bb, cfg, opt, sched)
                plot_curves(out / "metrics.jsonl", out / "loss.png")
    if val_data and acc.is_main_process and not (cfg.eval_every and cfg.steps % cfg.eval_every == 0):
        # The bare module: the DDP wrapper's forward syncs buffers with processes that are not here.
        val = validation_loss(acc.unwrap_model(loss_fn), bb, prefix, val_data, cfg, acc.autocast)
        metrics.write(json.dumps({"step": cfg.steps, "val_loss": val}) + "\n")
    metrics.close()
    result = out / "export"
    if acc.is_main_process:
        plot_curves(out / "metrics.jsonl", out / "loss.png")
        export(bb, cfg, result)
    acc.wait_for_everyone()  # the result exists on every rank's return
    # A process that exits with its gloo group alive can abort (SIGABRT) in interpreter teardown.
    acc.end_training()
    return result


def _dump_yaml(cfg: BaseModel) -> str:
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from mmagent.recipes.recipe_config import load_config

    ap = argparse.ArgumentParser(description="LoRA tool-calling instruction tuning (see recipes/configs/tools-*.yaml)")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("overrides", nargs="*", help="key=value (dotted keys, YAML values)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(train(load_config(ToolTuningConfig, a.config, a.overrides)))


if __name__ == "__main__":
    main()
