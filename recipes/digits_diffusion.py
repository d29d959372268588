"""Recipe: the embedded class-conditional digits generator (issue 8, item 6).

A diffusers `UNet2DModel` with a class embedding (10 digits + 1 null class for classifier-free
guidance, Ho & Salimans 2022) learns DDPM's epsilon objective (Ho et al. 2020, arXiv 2006.11239)
on sklearn's `load_digits()` (1797 8x8 digits), and ships as a `DigitsPipeline` sampled with DDIM
(Song et al. 2020, arXiv 2010.02502). A classifier trained on the real digits judges the samples.

    python -m mmagent.recipes.digits_diffusion train recipes/configs/digits-default.yaml
    python -m mmagent.recipes.digits_diffusion evaluate mmagent/weights/digits-diffusion --per-class 100
    python -m mmagent.recipes.digits_diffusion sample mmagent/weights/digits-diffusion --out grid.png
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field

from mmagent.model.digits_pipeline import NULL_CLASS, NUM_DIGITS, DigitsPipeline

log = logging.getLogger(__name__)


class UNetConfig(BaseModel):
    """The denoiser's shape: two resolution levels are plenty for 8x8 or 16x16."""

    model_config = ConfigDict(extra="forbid")
    block_out_channels: tuple[int, ...] = (32, 64)
    layers_per_block: int = Field(1, ge=1)
    attention: bool = Field(True, description="Self-attention at the lowest resolution level.")
    norm_num_groups: int = Field(8, ge=1)


class DigitsDiffusionConfig(BaseModel):
    """Everything one training run needs; YAML files in recipes/configs/digits-*.yaml."""

    model_config = ConfigDict(extra="forbid")
    output_dir: Path
    resolution: Literal[8, 16] = Field(8, description="8 = the data's own pixels; 16 = bilinear upsampling (4x the compute).")
    unet: UNetConfig = UNetConfig()
    train_timesteps: int = Field(1000, ge=10)
    beta_schedule: Literal["squaredcos_cap_v2", "linear"] = "squaredcos_cap_v2"
    steps: int = Field(2000, ge=1)
    max_minutes: float | None = Field(10.0, gt=0, description="Wall-clock budget; training stops early when it runs out.")
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    label_dropout: float = Field(0.1, ge=0, lt=1, description="P(label -> null class): trains the unconditional branch for CFG.")
    seed: int = 0
    threads: int = Field(1, ge=1, description="torch threads; the CPU is shared, keep it at 1-2.")
    log_every: int = Field(100, ge=1)
    # Evaluation run right after training (0 skips it).
    eval_per_class: int = Field(100, ge=0)
    sample_steps: int = Field(25, ge=1)
    guidance_scale: float = Field(2.0, ge=0)


def load_config(path: Path) -> DigitsDiffusionConfig:
    """Reads a YAML config; relative `output_dir` stays relative to the working directory."""
    if not path.is_file():
        raise FileNotFoundError(f"config {path} not found; see recipes/configs/digits-*.yaml")
    return DigitsDiffusionConfig.model_validate(yaml.safe_load(path.read_text()) or {})


# ---------------------------------------------------------------- data and model


def load_digit_images(resolution: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's digits as x0 in [-1, 1], [N, 1, R, R], and labels [N]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16 * 2 - 1  # [1797, 1, 8, 8]
    if resolution != 8:
        x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return x, torch.tensor(d.target, dtype=torch.long)


def build_unet(cfg: UNetConfig, resolution: int) -> "UNet2DModel":  # noqa: F821
    from diffusers import UNet2DModel

    levels = len(cfg.block_out_channels)
    down = ["DownBlock2D"] * levels
    up = ["UpBlock2D"] * levels
    if cfg.attention:  # attention only where the feature map is smallest (cheap at 4x4 / 8x8)
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    return UNet2DModel(
        sample_size=resolution,
        in_channels=1,
        out_channels=1,
        layers_per_block=cfg.layers_per_block,
        block_out_channels=cfg.block_out_channels,
        down_block_types=tuple(down),
        up_block_types=tuple(up),
        norm_num_groups=cfg.norm_num_groups,
        num_class_embeds=NUM_DIGITS + 1,  # + the null class
    )


def build_pipeline(unet: "UNet2DModel", cfg: DigitsDiffusionConfig) -> DigitsPipeline:  # noqa: F821
    from diffusers import DDIMScheduler

    # "trailing" spacing starts sampling at t = T-1; "leading" skips the noisiest steps when
    # sampling in few steps (Lin et al. 2023, arXiv 2305.08891).
    ddim = DDIMScheduler(
        num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule, timestep_spacing="trailing"
    )
    return DigitsPipeline(unet=unet, scheduler=ddim)


# ---------------------------------------------------------------- training


@dataclass
class TrainResult:
    pipeline: DigitsPipeline
    losses: list[float]
    seconds: float
    steps_done: int


def train(cfg: DigitsDiffusionConfig) -> TrainResult:
    """Trains, saves the EMA pipeline to `cfg.output_dir` (safetensors), and returns it."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_cosine_schedule_with_warmup

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    x0_all, y_all = load_digit_images(cfg.resolution)
    unet = build_unet(cfg.unet, cfg.resolution)
    ema = copy.deepcopy(unet).requires_grad_(False)
    noise_sched = DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    lr_sched = get_cosine_schedule_with_warmup(opt, cfg.warmup_steps, cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    start = time.perf_counter()
    for step in range(cfg.steps):
        loss = _train_step(unet, noise_sched, x0_all, y_all, cfg, gen)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        lr_sched.step()
        opt.zero_grad(set_to_none=True)
        _ema_update(ema, unet, min(cfg.ema_decay, (1 + step) / (10 + step)))
        losses.append(loss.item())
        if (step + 1) % cfg.log_every == 0:
            log.info("step %d/%d loss %.4f (%.0f s)", step + 1, cfg.steps, np.mean(losses[-cfg.log_every :]), time.perf_counter() - start)
        if cfg.max_minutes and time.perf_counter() - start > 60 * cfg.max_minutes:
            log.warning("time budget of %.1f min reached at step %d of %d", cfg.max_minutes, step + 1, cfg.steps)
            break
    seconds = time.perf_counter() - start
    pipe = build_pipeline(ema, cfg)
    save_run(pipe, cfg, losses)
    return TrainResult(pipeline=pipe, losses=losses, seconds=seconds, steps_done=len(losses))


def _train_step(unet, noise_sched, x0_all, y_all, cfg: DigitsDiffusionConfig, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, x0_all.shape[0], (cfg.batch_size,), generator=gen)
    x0, y = x0_all[idx], y_all[idx].clone()  # [B, 1, R, R], [B]
    y[torch.rand(cfg.batch_size, generator=gen) < cfg.label_dropout] = NULL_CLASS
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.randint(0, cfg.train_timesteps, (cfg.batch_size,), generator=gen)
    pred = unet(noise_sched.add_noise(x0, noise, t), t, class_labels=y).sample
    return torch.nn.functional.mse_loss(pred, noise)  # epsilon objective (Ho et al. 2020, eq. 14)


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)


def save_run(pipe: DigitsPipeline, cfg: DigitsDiffusionConfig, losses: list[float]) -> None:
    """The pipeline (safetensors), the config it came from, and the loss curve."""
    out = cfg.output_dir
    pipe.save_pretrained(out, safe_serialization=True)
    (out / "train_config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    if losses:
        _plot_losses(losses, out / "loss.png")


def _plot_losses(losses: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = max(1, len(losses) // 50)
    smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(losses, alpha=0.3, label="step")
    ax.plot(np.arange(len(smooth)) + k - 1, smooth, label=f"mean of {k}")
    ax.set(xlabel="step", ylabel="MSE (epsilon)", yscale="log", title="digits diffusion")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------- evaluation


class DigitsEval(BaseModel):
    """How recognisable the generated digits are to a classifier trained on real ones."""

    classifier: str
    classifier_real_accuracy: float = Field(description="The judge's accuracy on held-out real digits (its ceiling).")
    accuracy: float = Field(description="The judge's accuracy on generated digits, all classes.")
    per_class: dict[int, float]
    n_per_class: int
    sample_steps: int
    guidance_scale: float
    seconds_per_16: float = Field(description="Wall time to generate 16 digits (DDIM, `threads` torch threads).")
    threads: int
    nn_distance_generated: float = Field(description="Mean L2 (8x8, 0-16 scale) to the nearest training digit.")
    nn_distance_real: float = Field(description="The same for each real digit to its nearest other real digit.")


def fit_judge(seed: int = 0):
    """An RBF SVC on the real 8x8 digits (80% split) and its accuracy on the other 20%."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.2, random_state=seed, stratify=d.target)
    clf = SVC(gamma=0.001, C=10.0).fit(xtr, ytr)  # inputs on the data's 0-16 scale
    return clf, float((clf.predict(xte) == yte).mean())


def to_digit_features(ink: np.ndarray) -> np.ndarray:
    """[B, R, R] ink in [0, 1] -> [B, 64] on load_digits' 0-16 scale (area-downsampled to 8x8)."""
    b, r = ink.shape[0], ink.shape[1]
    f = r // 8
    return ink.reshape(b, 8, f, 8, f).mean(axis=(2, 4)).reshape(b, 64) * 16


def generate_ink(pipe: DigitsPipeline, labels: list[int], steps: int, guidance: float, seed: int, batch: int = 250) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    chunks = [labels[i : i + batch] for i in range(0, len(labels), batch)]
    return np.concatenate([pipe(c, steps, guidance, generator=gen, output_type="np").images for c in chunks])


def evaluate(pipe: DigitsPipeline, per_class: int = 100, steps: int = 25, guidance: float = 2.0, seed: int = 0) -> DigitsEval:
    from sklearn.datasets import load_digits
    from sklearn.neighbors import NearestNeighbors

    clf, real_acc = fit_judge(seed)
    labels = [c for c in range(NUM_DIGITS) for _ in range(per_class)]
    feats = to_digit_features(generate_ink(pipe, labels, steps, guidance, seed))  # [10 * per_class, 64]
    pred, y = clf.predict(feats), np.array(labels)
    real = load_digits().data
    nn = NearestNeighbors(n_neighbors=2).fit(real)
    start = time.perf_counter()
    pipe([i % NUM_DIGITS for i in range(16)], steps, guidance, generator=torch.Generator().manual_seed(seed))
    return DigitsEval(
        seconds_per_16=time.perf_counter() - start,
        classifier="sklearn SVC(rbf, gamma=0.001, C=10) on 80% of load_digits()",
        classifier_real_accuracy=real_acc,
        accuracy=float((pred == y).mean()),
        per_class={c: float((pred[y == c] == c).mean()) for c in range(NUM_DIGITS)},
        n_per_class=per_class,
        sample_steps=steps,
        guidance_scale=guidance,
        threads=torch.get_num_threads(),
        nn_distance_generated=float(nn.kneighbors(feats, 1)[0].mean()),
        nn_distance_real=float(nn.kneighbors(real, 2)[0][:, 1].mean()),  # column 0 is the digit itself
    )


def save_grid(pipe: DigitsPipeline, path: Path, per_class: int = 10, steps: int = 25, guidance: float = 2.0, seed: int = 0) -> None:
    """A per_class x 10 grid (one column per digit), black ink on white."""
    from PIL import Image

    labels = [c for _ in range(per_class) for c in range(NUM_DIGITS)]
    ink = generate_ink(pipe, labels, steps, guidance, seed)  # [per_class * 10, R, R]
    r = ink.shape[-1]
    grid = ink.reshape(per_class, NUM_DIGITS, r, r).transpose(0, 2, 1, 3).reshape(per_class * r, NUM_DIGITS * r)
    img = Image.fromarray((255 * (1 - grid)).round().astype(np.uint8), mode="L")
    img.resize((img.width * 64 // r, img.height * 64 // r), Image.NEAREST).save(path)


# ---------------------------------------------------------------- command line

cli = typer.Typer(help="Train, evaluate and sample the embedded digits generator.", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


@cli.command("train")
def train_cmd(config: Annotated[Path, typer.Argument(help="A recipes/configs/digits-*.yaml file.")]) -> None:
    """Trains the generator, saves the pipeline, then evaluates it (eval.json, samples.png).

    Example: python -m mmagent.recipes.digits_diffusion train recipes/configs/digits-default.yaml
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = load_config(config)
    res = train(cfg)
    typer.echo(f"{res.steps_done} steps in {res.seconds:.0f} s, final loss {np.mean(res.losses[-100:]):.4f} -> {cfg.output_dir}")
    if cfg.eval_per_class:
        report = evaluate(res.pipeline, cfg.eval_per_class, cfg.sample_steps, cfg.guidance_scale, cfg.seed)
        (cfg.output_dir / "eval.json").write_text(report.model_dump_json(indent=2) + "\n")
        save_grid(res.pipeline, cfg.output_dir / "samples.png", steps=cfg.sample_steps, guidance=cfg.guidance_scale)
        typer.echo(report.model_dump_json(indent=2))


@cli.command("evaluate")
def evaluate_cmd(
    folder: Annotated[Path, typer.Argument(help="A saved DigitsPipeline folder.")],
    per_class: Annotated[int, typer.Option(help="Generated digits per class.")] = 100,
    steps: Annotated[int, typer.Option(help="DDIM steps.")] = 25,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale (1 = none).")] = 2.0,
    threads: Annotated[int, typer.Option(help="torch threads.")] = 1,
) -> None:
    """Judges generated digits with a classifier trained on real ones; prints JSON.

    Example: python -m mmagent.recipes.digits_diffusion evaluate mmagent/weights/digits-diffusion --per-class 100
    """
    torch.set_num_threads(threads)
    pipe = _load(folder)
    typer.echo(evaluate(pipe, per_class, steps, guidance).model_dump_json(indent=2))


@cli.command("sample")
def sample_cmd(
    folder: Annotated[Path, typer.Argument(help="A saved DigitsPipeline folder.")],
    out: Annotated[Path, typer.Option(help="PNG grid to write.")],
    rows: Annotated[int, typer.Option(help="Samples per digit (rows).")] = 10,
    steps: Annotated[int, typer.Option(help="DDIM steps.")] = 25,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Writes a grid of samples, one column per digit.

    Example: python -m mmagent.recipes.digits_diffusion sample mmagent/weights/digits-diffusion --out grid.png
    """
    torch.set_num_threads(1)
    save_grid(_load(folder), out, rows, steps, guidance, seed)
    typer.echo(str(out))


def _load(folder: Path) -> DigitsPipeline:
    if not (folder / "model_index.json").is_file():
        raise typer.BadParameter(f"{folder} is not a saved DigitsPipeline folder (no model_index.json)")
    return DigitsPipeline.from_pretrained(folder)


if __name__ == "__main__":
    cli()
