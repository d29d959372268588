"""generate_image on pipelines the test assembles: a tiny Stable Diffusion (text-to-image) and a tiny
class-conditional UNet2DModel (the digits pipeline class), both saved and reloaded from folders."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from mmagent.tools.base import ToolContext
from mmagent.tools.generate import GenerateImage, class_ids_from_prompt, load_pipeline
from mmagent.tools.registry import ToolRegistry

from mmagent.media.artifacts import ArtifactStore


def _tiny_clip_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    chars = list(string.ascii_lowercase + string.digits)
    vocab = {t: i for i, t in enumerate(["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)])}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory) -> Path:
    """A complete StableDiffusionPipeline from tiny random parts, saved with save_pretrained."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("sd")
    tok = _tiny_clip_tokenizer(root / "tok")
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=16))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32), layers_per_block=1, norm_num_groups=32,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"), up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=DDIMScheduler(steps_offset=1, clip_sample=False), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(root / "pipe")
    return root / "pipe"


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    """A class-conditional UNet2DModel (10 digits + the null class) in the embedded pipeline's class."""
    from diffusers import DDIMScheduler, UNet2DModel

    from mmagent.model.digits_pipeline import DigitsPipeline

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(16, 32), norm_num_groups=8,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), num_class_embeds=11,
    )
    folder = tmp_path_factory.mktemp("digits") / "pipe"
    DigitsPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=100)).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture()
def ctx(tmp_path) -> ToolContext:
    return ToolContext(ArtifactStore(tmp_path / "a", "g"))


def test_text_to_image_from_folder_is_seeded(sd_folder, ctx):
    reg = ToolRegistry([GenerateImage(pipeline=sd_folder)])
    args = {"prompt": "a red cat", "steps": 2, "seed": 3, "width": 64, "height": 64}
    r1 = reg.call("generate_image", args, ctx)
    assert r1.ok, r1.error
    out = r1.output
    assert (out["width"], out["height"], out["seed"], out["steps"]) == (64, 64, 3, 2) and out["class_labels"] is None
    assert r1.artifacts == [out["image"]] and ctx.artifacts.get(out["image"]).meta["prompt"] == "a red cat"
    r2 = reg.call("generate_image", args, ctx)
    assert r2.output["image"] == out["image"]  # same seed -> same bytes -> same content-addressed id
    r3 = reg.call("generate_image", {**args, "seed": 4}, ctx)
    a = np.asarray(ctx.artifacts.load_image(out["image"]), dtype=float)
    b = np.asarray(ctx.artifacts.load_image(r3.output["image"]), dtype=float)
    assert r3.output["image"] != out["image"] and np.abs(a - b).mean() > 0.5


def test_class_conditional_from_class_label_and_prompt(digits_folder, ctx):
    reg = ToolRegistry([GenerateImage(pipeline=str(digits_folder))])
    r = reg.call("generate_image", {"prompt": "a digit", "class_label": 7, "steps": 3}, ctx)
    assert r.ok, r.error
    assert r.output["class_labels"] == [7] and (r.output["width"], r.output["height"]) == (64, 64)
    r2 = reg.call("generate_image", {"prompt": "draw a three and a 5", "steps": 3}, ctx)
    assert r2.output["class_labels"] == [3, 5] and r2.output["width"] == 128  # one tile per digit, side by side
    r3 = reg.call("generate_image", {"prompt": "a cat", "steps": 3}, ctx)
    assert r3.error_kind == "exception" and "no class found" in r3.error


def test_prebuilt_pipe_object(digits_folder, ctx):
    pipe = load_pipeline(digits_folder)
    t = GenerateImage(pipe=pipe)
    r = ToolRegistry([t]).call("generate_image", {"prompt": "1", "steps": 2}, ctx)
    assert r.ok and r.output["class_labels"] == [1] and t.pipe is pipe


def test_bad_pipeline_specs_say_what_to_do(tmp_path, ctx):
    r = ToolRegistry([GenerateImage(pipeline=tmp_path / "nope")]).call("generate_image", {"prompt": "x"}, ctx)
    assert r.error_kind == "exception" and "no diffusers pipeline folder" in r.error
    (tmp_path / "empty").mkdir()
    r = ToolRegistry([GenerateImage(pipeline=tmp_path / "empty")]).call("generate_image", {"prompt": "x"}, ctx)
    assert "no model_index.json" in r.error


def test_argument_validation(ctx):
    reg = ToolRegistry([GenerateImage(pipeline="unused")])
    r = reg.call("generate_image", {"prompt": "x", "steps": 0, "width": 65}, ctx)
    assert r.error_kind == "validation" and {e["field"] for e in r.details["errors"]} == {"steps", "width"}
    assert reg.get("generate_image")._loaded is False  # bad arguments never load the model


def test_class_ids_from_prompt_uses_pipeline_label_names():
    class Named:
        labels = {"golden retriever": 207, "tabby": 281}

    assert class_ids_from_prompt("a Golden Retriever on grass", Named()) == [207]
    assert class_ids_from_prompt("digits 4 and nine", object()) == [4, 9]
    with pytest.raises(ValueError, match="pass class_label"):
        class_ids_from_prompt("nothing here", object())


def test_default_generator_missing_says_how_to_get_one(ctx, tmp_path, monkeypatch):
    import mmagent.model.digits_pipeline as digits

    monkeypatch.delenv("MMAGENT_GENERATOR", raising=False)
    monkeypatch.setattr(digits, "DEFAULT_WEIGHTS", tmp_path / "not-trained")  # as in a checkout before training
    r = ToolRegistry([GenerateImage()]).call("generate_image", {"prompt": "a 3"}, ctx)
    assert r.error_kind == "exception" and "digits_diffusion" in r.error and "MMAGENT_GENERATOR" in r.error


def test_default_generator_is_the_digits_folder(digits_folder, ctx, monkeypatch):
    import mmagent.model.digits_pipeline as digits

    monkeypatch.delenv("MMAGENT_GENERATOR", raising=False)
    monkeypatch.setattr(digits, "DEFAULT_WEIGHTS", digits_folder)
    r = ToolRegistry([GenerateImage()]).call("generate_image", {"prompt": "a handwritten 7", "steps": 2}, ctx)
    assert r.ok and r.output["class_labels"] == [7] and r.output["model"] == "digits-diffusion (embedded)"
