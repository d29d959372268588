# Launch: .venv/bin/mmagent train align --config recipes/configs/align-embedded-default.yaml
"""MM alignment (LLaVA stage 1, Liu et al. 2023, arXiv 2304.08485): train the projector only.

The encoder and the LLM stay frozen (no adapter active); the projector learns to map image
features to embeddings the LLM reads as the image's content, from captions the data generator
knows to be true (`Drawing.describe`: the text on a sign, the number of faces, the shapes and
colours, the digit) and ImageNet-label captions for the skimage/sklearn photos. Loss on the
caption tokens only (`MMLLM.build_inputs` labels).

Output (`out`): `export/` = `mmllm_config.json` + `projector.safetensors` (no adapters), the
starting point of tool tuning (`multimodal: <out>/export` in a tools-*.yaml); metrics.jsonl, loss.png.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from mmagent.model.cpu import training_precision
from mmagent.protocol.chat import Message

log = logging.getLogger(__name__)

ASK = ["Describe image_1.", "What is in this image?", "What does the picture show?", "Describe the image briefly.",
       "Tell me what you see.", "What is this?", "Caption this image.", "Give a short description of the image."]
KINDS = ["sign", "document", "faces", "shapes", "digit", "photo"]


class AlignConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    multimodal: Path = Path("mmagent/weights/mmagent-default")  # MM-LLM folder whose projector is trained
    out: Path = Path("runs/align")
    n_train: int = Field(2000, ge=1)
    seed: int = 0
    steps: int = Field(100, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = 1e-3
    warmup: int = 5
    precision: Literal["auto", "fp32", "bf16"] = "fp32"  # auto: bf16 where native (mmagent.model.cpu)
    threads: int = 2
    save_every: int = 50
    n_val: int = Field(32, ge=0)  # held-out captions (another seed) scored before and after training


def captions(n: int, seed: int) -> list[tuple[Any, str, str]]:
    """(image, question, true caption) triples from the generator's drawings and photos."""
    from mmagent.recipes.drawings import draw

    rng = random.Random(f"align/{seed}")
    out = []
    for _ in range(n):
        d = draw(rng.choice(KINDS), rng)
        out.append((d.image, rng.choice(ASK), d.describe()))
    return out


def conversation(question: str, caption: str) -> list[Message]:
    return [Message(role="user", content=question, images=["image_1"]), Message(role="assistant", content=caption)]


def _batch(mm: Any, triples: list[tuple[Any, str, str]]) -> dict[str, Any]:
    """(image, question, caption) triples -> one collated MM batch, as serving builds its inputs."""
    return mm.collate([mm.build_inputs(conversation(q, c), artifacts={"image_1": img}) for img, q, c in triples])


def caption_loss(mm: Any, data: list[tuple[Any, str, str]], batch_size: int = 16) -> float:
    """Mean caption loss of `mm` on (image, question, caption) triples, no grad: what alignment lowers."""
    losses = []
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            b = _batch(mm, data[i : i + batch_size])
            losses.append(mm(b["input_ids"], b["attention_mask"], b["pixel_values"], labels=b["labels"]).loss.item())
    return sum(losses) / len(losses)


def train(cfg: AlignConfig, mm: Any = None) -> Path:
    """Trains the projector of `mm` (default: loaded from `cfg.multimodal`); returns the export folder."""
    from mmagent.model.mmllm import MMLLM

    mm = mm if mm is not None else MMLLM.from_pretrained(cfg.multimodal, dtype=torch.float32)
    torch.set_num_threads(cfg.threads)  # after the load, which applies the serving thread policy (settings.threads)
    mm.set_adapter(None)  # stage 1 aligns to the base LLM
    for p in mm.parameters():
        p.requires_grad_(False)
    params = list(mm.projector.parameters())
    for p in params:
        p.requires_grad_(True)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    data = captions(cfg.n_train, cfg.seed)
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * min(s / cfg.steps, 1.0))))
    metrics = (out / "metrics.jsonl").open("w")
    val = captions(cfg.n_val, cfg.seed + 1) if cfg.n_val else []
    if val:
        metrics.write(json.dumps({"step": 0, "val_loss": caption_loss(mm, val)}) + "\n")
    for step in range(cfg.steps):
        t0 = time.perf_counter()
        b = _batch(mm, [data[(step * cfg.batch_size + i) % len(data)] for i in range(cfg.batch_size)])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=training_precision(cfg.precision) == "bf16"):
            loss = mm(b["input_ids"], b["attention_mask"], b["pixel_values"], labels=b["labels"]).loss
        loss.backward()
        opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
        row = {"step": step + 1, "loss": loss.item(), "lr": sched.get_last_lr()[0], "seconds": round(time.perf_counter() - t0, 3)}
        metrics.write(json.dumps(row) + "\n"), metrics.flush()
        log.info("align step %d loss %.4f", step + 1, row["loss"])
        if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps:
            export(mm, out / "export")
    if val:
        metrics.write(json.dumps({"step": cfg.steps, "val_loss": caption_loss(mm, val)}) + "\n")
    metrics.close()
    from mmagent.recipes.tool_tuning import plot_curves

    plot_curves(out / "metrics.jsonl", out / "loss.png")
    return out / "export"


def export(mm: Any, dst: Path) -> Path:
    """`mmllm_config.json` (no adapters) + `projector.safetensors`: an MM-LLM folder to start tool tuning from
    (the MM-LLM's one folder writer, with no adapter: alignment trains the projector only)."""
    from mmagent.model.mmllm import write_pretrained

    return write_pretrained(dst, mm.config, mm.projector, {}, None)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from mmagent.recipes.recipe_config import load_config

    ap = argparse.ArgumentParser(description="MM alignment: train the projector on true captions (recipes/configs/align-*.yaml)")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("overrides", nargs="*", help="key=value (dotted keys, YAML values)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(train(load_config(AlignConfig, a.config, a.overrides)))


if __name__ == "__main__":
    main()
