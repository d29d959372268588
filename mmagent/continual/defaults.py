"""The learning environment of an installed mmagent: the interaction log under `<home>`, the
built-in tools plus the user's `tools_modules`, the adapter registry of the model that served the
turns (`<home>/adapters` for the embedded default; its routed `open-world` adapter's under
`<home>/adapters/routes/open-world`, `continual/adapter_slots.py`), that model, and the frozen regression suites
shipped with the recipes (350 items over every built-in tool, the no-tool cases and held-out tool families; the items of
tools the user's registry lacks are left out, and the promoted rounds' held-out items of the
user's custom tools join them, see `continual/suites.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmagent.continual.adapter_slots import slot_root
from mmagent.continual.learn import LearnConfig, LearnEnv
from mmagent.continual.update import UpdateConfig
from mmagent.errors import UserError

DEFAULT_MODEL = "mmagent-default"


def default_suite() -> Path:
    """The first frozen regression suite: the recipes' unseen-phrasings test suite."""
    return default_suites()[0]


def default_suites() -> list[Path]:
    """The frozen regression suites: the generator's held-out splits, unseen phrasings (100) and
    unseen combinations (50), every built-in tool and the no-tool / unservable cases, + its held-out
    tool families (200, each item with its own tools) = 350 items. The suites written blind to the
    generator (heldout-*) stay out on purpose: they measure the model from outside, and a gate
    that selects versions on them would make them a validation set."""
    from mmagent.training.scoring import shipped_suites

    root = shipped_suites()
    return [root / "unseen-phrasings.jsonl", root / "unseen-combinations.jsonl", root / "open-world-heldout-families.jsonl"]


def default_model_folder(model: str = DEFAULT_MODEL) -> Path:
    """A composed MM-LLM's folder: a catalog name (kind mmllm) or a folder saved by `MMLLM.save_pretrained`."""
    from mmagent.hub.catalog import CATALOG

    folder = Path(model).expanduser()
    if not folder.is_dir():
        entry = CATALOG.get(model)
        if entry.kind != "mmllm":
            raise _NotComposed(f"`mmagent learn` trains LoRA adapters of composed MM-LLMs; {model!r} is a {entry.kind}")
        folder = Path(entry.source.path)
    if not (folder / "mmllm_config.json").is_file():
        raise _NotComposed(f"{folder} is not a composed MM-LLM folder (no mmllm_config.json)")
    return folder


class _NotComposed(ValueError, UserError):
    """`mmagent learn --model` names a model whose adapters it cannot train."""


def registry_root(home: Path, model: str = DEFAULT_MODEL) -> Path:
    """Each base model has its own versions: the default's under `<home>/adapters`, another's under
    `<home>/adapters/models/<name>` (an adapter of one base does not fit another)."""
    if model == DEFAULT_MODEL:
        return home / "adapters"
    import re

    return home / "adapters" / "models" / re.sub(r"[^A-Za-z0-9_.-]+", "_", str(model)).strip("_.")


def default_config(method: str = "replay", replay_ratio: float = 2.0, steps: int | None = None, model: str = DEFAULT_MODEL,
                   **gate: Any) -> LearnConfig:
    """Learning on a composed MM-LLM (the embedded default unless `model` says): its folder is the
    recipe's base (images go through its encoder + projector as at serving); only the adapter trains."""
    # lr 2e-4 with 2 base conversations replayed per feedback one: on the embedded default, 5e-4 with
    # 1:1 learnt a new tool (held-out 0 -> 100) but cost 25 points of the regression suite; 2e-4 with
    # 2:1 learnt it as well and lost nothing (bench/learn.py embedded, README). Precision `auto`: bf16
    # autocast where the CPU has native bf16 (2.7x the fp32 step here, bench/train.py), fp32 elsewhere.
    recipe: dict[str, Any] = {"multimodal": str(default_model_folder(model)), "precision": "auto", "max_len": 768, "lr": 2e-4}
    if steps is not None:
        recipe["steps"] = steps
    cfg = LearnConfig(update=UpdateConfig(method=method, replay_ratio=replay_ratio, recipe=recipe))
    if gate:
        cfg.gate = cfg.gate.model_copy(update=gate)
    return cfg


def routed_slots(model: str = DEFAULT_MODEL) -> list[str]:
    """The routed adapter slots of a composed model (`mmagent.continual.adapter_slots`): the default's `open-world`."""
    from mmagent.model.mmllm import MMLLM

    routing = MMLLM.read_config(default_model_folder(model)).routing
    return [routing.open_world] if routing is not None else []


def slot_registry(slot: str | None = None, model: str = DEFAULT_MODEL, settings=None):
    """The adapter registry of `model`'s `slot` (None: its own adapter) under `<home>`; a slot the model
    does not route to is a clear error."""
    from mmagent.config import get_settings
    from mmagent.continual.registry import AdapterRegistry

    if slot is not None and slot not in (routed := routed_slots(model)):
        raise _NotComposed(f"{model} has no routed adapter {slot!r} (its routed adapters: {', '.join(routed) or 'none'})")
    return AdapterRegistry(slot_root(registry_root((settings or get_settings()).home, model), slot))


def default_env(settings=None, regression_suite: Path | list[Path] | None = None, tools: Any = None,
                model: str = DEFAULT_MODEL, base_data: Any = None, slot: str | None = None) -> LearnEnv:
    """The round for `model` (the one that served the turns) and its adapter `slot` (None: its own
    adapter; `open-world`: the routed one that served the user's tools): the slot's registry, the
    user's tools (built-ins + `tools_modules`) and the regression suites of those tools, run behind
    the agent's tool retrieval where the model routes (it picks the slot of each reply).
    `base_data` is the base instruction data's generator the replay buffer regenerates
    (`mmagent.recipes.data.generate`, passed by `mmagent learn`: continual does not import the recipes)."""
    from mmagent.agent.log import InteractionLog, default_log_path
    from mmagent.config import get_settings
    from mmagent.continual.update import train_candidate
    from mmagent.feedback import FeedbackStore
    from mmagent.tools.registry import default_registry as default_tools

    settings = settings or get_settings()
    log = InteractionLog(default_log_path(settings))
    suites = [Path(p) for p in ([regression_suite] if isinstance(regression_suite, (str, Path)) else regression_suite or default_suites())]
    for suite in suites:
        if not suite.is_file():
            raise FileNotFoundError(f"regression suite {suite} not found; pass --regression-suite SUITE.jsonl (recipes/eval.py format)")
    registry = slot_registry(slot, model, settings)

    def media(turn, artifact_id: str) -> bytes:
        from mmagent.media.artifacts import ArtifactStore

        return ArtifactStore.open(turn.session, settings).read_bytes(artifact_id)

    def eval_pool(adapter: Path | None, workers: int) -> Any:
        return gate_workers(adapter, workers, model, slot, settings)

    return LearnEnv(feedback=FeedbackStore(log.path), turns=log, tools=tools or default_tools(settings),
                    registry=registry, train=train_candidate,
                    chat_model=gate_chat_models(model, slot, settings), regression_suite=suites, media=media,
                    model=model, base_data=base_data, slot=slot, routed=routed_slots(model), eval_pool=eval_pool)


def gate_workers(adapter: Path | None, workers: int, model: str = DEFAULT_MODEL, slot: str | None = None, settings=None) -> Any:
    """`gate_chat_models`' evaluation of one version (`adapter`; None: the model's own) on `workers` processes
    (`eval_workers.SuiteWorkers`), loading from the settings' home as the round does."""
    from mmagent.config import get_settings
    from mmagent.continual.eval_workers import SuiteWorkers

    home = (settings or get_settings()).home
    return SuiteWorkers(home, default_model_folder(model), model, slot, bool(routed_slots(model)), adapter, workers)


def gate_chat_models(model: str = DEFAULT_MODEL, slot: str | None = None, settings=None) -> Any:
    """`adapter folder | None -> ChatModel` for the gate (`serving.folder_chat_models`): `model` loaded once,
    each version as a named adapter of `slot`, behind the agent's tool retrieval where the model routes."""
    from mmagent.continual.serving import folder_chat_models

    return folder_chat_models(default_model_folder(model), model, slot, bool(routed_slots(model)), settings)
