"""Train a candidate adapter version from feedback, without forgetting what the serving one knows.

Four methods (compared in bench/learn.py and the README):
- replay: warm start from the serving adapter and train on the feedback examples mixed with a
  replay buffer of the base instruction data (`replay_ratio` base conversations per feedback one);
- ewc:    replay + an EWC penalty anchoring the LoRA weights where the base data's Fisher is large
          (`ewc.py`, Kirkpatrick et al. 2017);
- olora:  replay + a fresh LoRA on top of the (merged) serving one, pushed into a subspace
          orthogonal to it (`olora.py`, Wang et al. 2023); saved stacked as one adapter;
- preference: replay + DPO on corrected turns (the correction preferred over what the model did)
          and KTO on unpaired thumbs up / down (`preference.py`; Rafailov et al. 2023, Ethayarajh
          et al. 2024), the serving adapter as the frozen reference. The desirable targets are
          also trained with the next-token loss (`pref_sft`, as DPO+NLL, Pang et al. 2024): the
          preference terms add what plain replay cannot use, the thumbs-down and the model's mistakes.

The optimisation is the training library's (`mmagent/training/`, shared with the tool-tuning
recipe: the same chat rendering, assistant-only labels, shared-prefix packing, loss, LR schedule,
the step loop with checkpoints, optimizer state and automatic resume, fp16 export). A round adds
what the recipe has no use for: a warm start (`prepare`) and extra loss terms per step (`fit`).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from pydantic import BaseModel, Field

from mmagent.continual.dataset import Example
from mmagent.protocol.chat import Message

log = logging.getLogger(__name__)

Method = Literal["replay", "ewc", "olora", "preference"]


def _default_recipe() -> dict[str, Any]:
    # A learning round is a short fine-tune: few steps, lower LR than the first tuning, frequent
    # checkpoints (a killed round resumes), fp16 export like the shipped adapter. Every usable core:
    # nothing else runs during a round's training (its evaluations run before and after it).
    from mmagent.model.cpu import usable_cores

    return {"steps": 40, "batch_size": 8, "grad_accum": 1, "lr": 3e-4, "warmup": 2, "save_every": 10, "threads": usable_cores()}


class UpdateConfig(BaseModel):
    method: Method = "replay"
    replay_ratio: float = Field(default=1.0, ge=0, description="Base-data conversations per feedback conversation.")
    replay_data: Path | None = Field(default=None, description="train.jsonl of the base instruction data; None = regenerate it "
                                     "with the round's base-data generator (TrainJob.base_data, e.g. recipes.data.generate).")
    replay_seed: int = 0
    earlier_ratio: float = Field(default=1.0, ge=0, description="Examples from earlier promoted rounds per new feedback example.")
    olora_lambda: float = Field(default=0.5, ge=0, description="Weight of the O-LoRA orthogonality loss.")
    olora_r: int = Field(default=8, ge=1, description="Rank of the new O-LoRA subspace.")
    ewc_lambda: float = Field(default=5.0, ge=0, description="Weight of the EWC penalty (Fisher normalised to mean 1).")
    ewc_batches: int = Field(default=4, ge=1)
    pref_beta: float = Field(default=0.1, gt=0, description="beta of DPO and KTO (both papers' default).")
    # 0.3: in the tiny world (bench/learn.py scenarios thumbs) 1.0 pushed the chats' own answers down
    # with the rated-down ones (regression 100 -> 98.6, rejected); 0.3 learnt as well and kept 100.
    pref_weight: float = Field(default=0.3, ge=0, description="Weight of the preference loss beside the replay next-token loss.")
    pref_batch: int = Field(default=8, ge=1, description="Preference items (pairs or thumbs) per step.")
    pref_sft: bool = Field(default=True, description="Also train the desirable targets with the next-token loss (DPO+NLL).")
    recipe: dict[str, Any] = Field(default_factory=_default_recipe, description="ToolTuningConfig fields (mmagent/training/config.py).")

    def recipe_config(self, out: Path):
        from mmagent.training.config import ToolTuningConfig

        return ToolTuningConfig.model_validate({**_default_recipe(), **self.recipe, "out": out, "resume": True,
                                                "adapter_name": NAME, "train_projector": False})


class Penalty(Protocol):
    def penalty(self, model: torch.nn.Module) -> torch.Tensor: ...


NAME = "learn"  # the trainable adapter's name inside the backbone; "prev" is the frozen one (O-LoRA)


@dataclass
class TrainJob:
    serving: Path | None  # the serving adapter folder (warm start); None = the base's own adapter, if any
    examples: list[Example]
    tools: list[dict[str, Any]]  # the tool schemas the conversations are rendered with
    cfg: UpdateConfig
    work_dir: Path  # checkpoints live here; the same data hash -> the same folder -> resume
    earlier: list[Example] = field(default_factory=list)  # training examples of earlier promoted rounds (replayed too)
    data_hash: str = ""
    media: Callable[[Example, str], Any] | None = field(default=None, repr=False)  # (example, artifact id) -> PIL image
    load_backbone: Callable[[Any], Any] | None = field(default=None, repr=False)  # recipe cfg -> training Backbone
    on_step: Callable[[int], None] | None = field(default=None, repr=False)  # progress (and tests' kill switch)
    # The base instruction data's generator, (split, n, seed) -> examples (`mmagent.training.data.Generator`):
    # the entry layer passes the data recipe's (`mmagent.recipes.data.generate`); used when cfg.replay_data is None.
    base_data: Callable[..., Any] | None = field(default=None, repr=False)
    # The base folder's adapter a slot's first version starts from (`adapter_slots`; None: the folder's active one).
    start_adapter: str | None = None


def default_backbone(rc) -> Any:
    """The recipe's base: the MM-LLM folder `rc.multimodal` (projector frozen) or the text-only LLM."""
    from mmagent.training.backbone import load_base

    bb = load_base(rc)
    for p in bb.parameters():
        p.requires_grad_(False)  # a round trains adapters only; the projector stays the shipped one
    return bb


def replay_buffer(cfg: UpdateConfig, n: int, generate: Callable[..., Any] | None = None) -> list[Any]:
    """`n` base instruction conversations (training `Conversation`s), sampled with a fixed seed: from
    `cfg.replay_data`, else regenerated deterministically by `generate` (the base data's generator,
    `mmagent.training.data.Generator`; the learning loop never imports the data recipe, its caller
    passes it)."""
    from mmagent.training.config import DataSettings, ToolTuningConfig
    from mmagent.training.data import Conversation, load_conversations

    if n <= 0:
        return []
    if cfg.replay_data is None:
        if generate is None:
            raise ValueError("no base data to replay: set update.replay_data to a train.jsonl, or pass the base data's "
                             "generator (LearnEnv.base_data / TrainJob.base_data, e.g. mmagent.recipes.data.generate)")
        return load_conversations(ToolTuningConfig(data=DataSettings(seed=cfg.replay_seed, n_validation=0)), "train", n, generate)
    from PIL import Image

    path = Path(cfg.replay_data)
    if not path.is_file():
        raise FileNotFoundError(f"replay data {path} not found (a train.jsonl written by `python -m mmagent.recipes.data`)")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    out = []
    for ln in random.Random(cfg.replay_seed).sample(lines, min(n, len(lines))):
        rec = json.loads(ln)
        images = {f"image_{j}": Image.open(path.parent / rel).convert("RGB") for j, rel in enumerate(rec.get("images", []), start=1)}
        out.append(Conversation([Message.model_validate(m) for m in rec["messages"]], images))
    return out


def conversation(job: TrainJob, ex: Example, messages: list[Message] | None = None) -> Any:
    """A training `Conversation` of an example (its own target, or `messages`), with its images."""
    from mmagent.training.data import Conversation

    images = {aid: job.media(ex, aid) for aid in ex.images} if ex.images and job.media else {}
    if ex.images and not images:
        raise ValueError(f"feedback turn {ex.turn_id} has images but no media resolver was given")
    return Conversation(messages or ex.messages(), images)


def conversations(job: TrainJob) -> list[Any]:
    """The next-token mix: desirable feedback targets, earlier rounds' feedback, base replay."""
    n = len(job.examples)
    sft = [ex for ex in job.examples if ex.label == "desirable"] if job.cfg.method != "preference" or job.cfg.pref_sft else []
    # Earlier rounds' feedback is replayed too: base-data replay alone protects the shipped skills,
    # not what earlier rounds taught (see the method comparison in bench/learn.py and the README).
    pool = [e for e in job.earlier if e.label == "desirable"]
    earlier = random.Random(job.cfg.replay_seed).sample(pool, min(len(pool), round(job.cfg.earlier_ratio * n)))
    base = replay_buffer(job.cfg, round(job.cfg.replay_ratio * n), job.base_data)
    log.info("training mix: %d new feedback (%d next-token), %d earlier feedback, %d base replay", n, len(sft), len(earlier), len(base))
    return [conversation(job, ex) for ex in [*sft, *earlier]] + base


def train_candidate(job: TrainJob) -> Path:
    """Trains (or resumes) one candidate; returns its adapter folder under `job.work_dir`."""
    rc = job.cfg.recipe_config(job.work_dir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(rc.seed)  # the same data and settings train the same candidate (LoRA init, dropout)
        bb = (job.load_backbone or default_backbone)(rc)
        # After the load: loading an LLM applies the serving thread policy (settings.threads, default 1),
        # which silently undid a count set before it, and every round trained on one thread.
        torch.set_num_threads(rc.threads)
        penalty, finish = prepare(bb, job, rc)
        extra = _preference(bb, job, rc) if job.cfg.method == "preference" else None
        out = fit(bb, conversations(job), job.tools, rc, penalty, job.on_step, extra, dropout=extra is None)
    return finish(out)


def _preference(bb: Any, job: TrainJob, rc) -> Callable[[int], torch.Tensor] | None:
    """DPO + KTO over the round's preference examples; the reference = the adapter as loaded now (the serving one)."""
    from mmagent.continual.preference import build_objective
    from mmagent.training.sequences import system_prefix

    bb.llm.eval()  # the reference without dropout (and the policy too, see preference.py)
    procs = _processes(rc)
    with procs.autocast():  # the reference computed as the policy will be (bf16 runs: the same casts)
        obj = build_objective(bb, job.examples, job.tools, system_prefix(bb.tok, job.tools), rc, job.cfg,
                              lambda ex, msgs: conversation(job, ex, msgs))
    if obj is None:
        return None
    w = job.cfg.pref_weight

    def loss(step: int) -> torch.Tensor:
        with procs.autocast():
            return w * obj.loss(step)

    return loss


def _processes(rc) -> Any:
    """The one process a round trains on, in the recipe's precision (`auto`: bf16 where the CPU has it natively)."""
    from mmagent.model.cpu import training_precision
    from mmagent.training.loop import OneProcess

    return OneProcess(training_precision(rc.precision))


def _previous_adapter(bb: Any, job: TrainJob, rc) -> Path | None:
    """What the candidate starts from: the serving version, else the base MM-LLM's own adapter."""
    if job.serving is not None:
        return job.serving
    own = job.start_adapter or (bb.mm.active_adapter if bb.mm is not None else None)
    if bb.mm is not None and own and rc.multimodal is not None:
        return Path(rc.multimodal) / "adapters" / own
    return None


def prepare(bb: Any, job: TrainJob, rc) -> tuple[Penalty | None, Callable[[Path], Path]]:
    """Sets up the trainable adapter `learn` for the method; returns its penalty and the finisher."""
    from mmagent.model import lora
    cfg, llm = job.cfg, bb.llm
    prev = _previous_adapter(bb, job, rc)
    settings = rc.lora
    if prev is None:  # the first version: a fresh adapter, nothing to protect yet
        lora.add_adapter(llm, NAME, settings)
        penalty, finish = None, (lambda out: out)
    elif cfg.method == "olora":
        from mmagent.continual.olora import OrthogonalRegularizer, stack_adapters

        lora.load_adapter(llm, prev, "prev")  # frozen B_p A_p
        lora.add_adapter(llm, NAME, settings.model_copy(update={"r": cfg.olora_r, "alpha": 2 * cfg.olora_r}))
        llm.set_adapter(["prev", NAME])  # both active: the output sums them, as the stacked version will
        penalty = OrthogonalRegularizer(prev, cfg.olora_lambda)
        finish = lambda out: stack_adapters(prev, out, out.parent / "stacked")  # noqa: E731
    else:  # replay / ewc: warm start from the previous adapter's weights
        lora.load_adapter(llm, prev, NAME)
        lora.set_adapter(llm, NAME)
        penalty, finish = None, (lambda out: out)
    for n, p in llm.named_parameters():
        p.requires_grad_(f".{NAME}." in n)
    if prev is not None and cfg.method == "ewc":
        penalty = _ewc(bb, job, rc)
    return penalty, finish


def _ewc(bb: Any, job: TrainJob, rc) -> Penalty:
    from mmagent.continual.ewc import EWCRegularizer, fisher_diagonal
    from mmagent.training.batching import make_batch
    from mmagent.training.data import encode_all
    from mmagent.training.loss import AssistantLoss
    from mmagent.training.sequences import system_prefix

    prefix = system_prefix(bb.tok, job.tools)
    samples = encode_all(bb, replay_buffer(job.cfg, job.cfg.ewc_batches * 4, job.base_data), job.tools, prefix)
    batches = [make_batch(bb, prefix, samples[i : i + 4], rc) for i in range(0, len(samples), 4)]
    loss = AssistantLoss(bb.llm, bb.mm, rc.share_prefix)

    def mean_loss(_m: torch.nn.Module, batch) -> torch.Tensor:
        b, px = batch
        total, count = loss(b.prefix, b.input_ids, b.labels, b.position_ids, b.attention_mask, px)
        return total / count.clamp(min=1)

    return EWCRegularizer(bb.llm, fisher_diagonal(bb.llm, batches, mean_loss), job.cfg.ewc_lambda)


def fit(bb: Any, convs: list[Any], tools: list[dict[str, Any]], rc, penalty: Penalty | None = None,
        on_step: Callable[[int], None] | None = None, extra: Callable[[int], torch.Tensor] | None = None,
        dropout: bool = True) -> Path:
    """The training library's step loop (`mmagent.training.loop`, one process) with `extra(step)` (a
    loss, e.g. the preference terms) and `penalty(llm)` added to each step; checkpoints and resumes in
    `rc.out`; returns the adapter folder."""
    from mmagent.training.data import encode_all
    from mmagent.training.export import export
    from mmagent.training.loop import Term, train_steps
    from mmagent.training.sequences import system_prefix

    out = Path(rc.out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = system_prefix(bb.tok, tools)
    terms: dict[str, Term] = {}
    if extra is not None:
        terms["pref"] = extra
    if penalty is not None:
        terms["penalty"] = lambda _step: penalty.penalty(bb.llm)

    def step_done(step: int, row: dict[str, Any]) -> None:
        log.info("step %d loss %.4f%s", step, row["loss"], "".join(f" {k} {row[k]:.4f}" for k in terms if k in row))
        if on_step is not None:
            on_step(step)

    bb.llm.train(dropout)
    train_steps(bb, encode_all(bb, convs, tools, prefix), prefix, rc, procs=_processes(rc), terms=terms, on_step=step_done)
    bb.llm.eval()
    dst = export(bb, rc, out / "export")
    return dst / "adapters" / NAME if bb.mm is not None else dst
