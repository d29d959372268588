"""New sessions pick up the promoted adapter version without a restart (`activate_serving`)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mmagent.continual.registry import AdapterRegistry
from mmagent.continual.scenario import PatchEncoder, tiny_tokenizer
from mmagent.continual.serving import AdapterChatModels, activate_serving
from mmagent.model import lora
from mmagent.model.mmllm import MMLLM, MMLLMConfig


def _mmllm() -> MMLLM:
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok) + 1, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True))
    return MMLLM(MMLLMConfig(llm="tiny", encoder="tiny"), llm.eval(), tok, PatchEncoder()).eval()


def _version(reg: AdapterRegistry, tmp_path, seed: int) -> str:
    m = _mmllm()
    lora.add_adapter(m.llm, "x", lora.LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(seed)
    with torch.no_grad():
        for n, p in m.llm.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.5)
    return reg.add(lora.save_adapter(m.llm, "x", tmp_path / f"a{seed}")).version


def test_new_sessions_follow_promotions(tmp_path):
    reg = AdapterRegistry(tmp_path / "adapters")
    v1, v2 = _version(reg, tmp_path, 1), _version(reg, tmp_path, 2)
    served = _mmllm()  # a long-running process: the model is loaded once
    assert activate_serving(served, reg) is None and served.active_adapter is None
    ids = torch.tensor([[5, 6, 7, 8]])

    def logits():
        with torch.no_grad():
            return served.llm(input_ids=ids).logits

    base = logits()
    reg.promote(v1)  # e.g. by `mmagent learn` in another process
    assert activate_serving(served, reg) == v1 and served.active_adapter == v1
    out1 = logits()
    reg.promote(v2)
    assert activate_serving(served, reg) == v2
    out2 = logits()
    reg.rollback()
    assert activate_serving(served, reg) == v1
    assert not torch.allclose(base, out1) and not torch.allclose(out1, out2)
    torch.testing.assert_close(logits(), out1)


def test_adapter_chat_models_switch_on_one_base(tmp_path):
    reg = AdapterRegistry(tmp_path / "adapters")
    v1 = _version(reg, tmp_path, 1)
    loads = []
    models = AdapterChatModels(lambda: loads.append(1) or _mmllm(), "tiny")
    models(None)
    cand = models(reg.adapter_path(v1))
    assert cand.model.active_adapter == f"{v1}-adapter" and len(loads) == 1
    assert models(None).model.active_adapter is None


def test_agent_sessions_serve_the_version_promoted_when_they_started(tmp_path):
    """The Agent reads the promoted version at a session's first turn and keeps it for that session."""
    from mmagent.agent import Agent
    from mmagent.backends.composed import ComposedChatModel

    reg = AdapterRegistry(tmp_path / "adapters")
    v1 = _version(reg, tmp_path, 1)
    model = ComposedChatModel(_mmllm(), "tiny")
    with Agent(model=model, tools=["resize_image"], adapters=reg, max_steps=1, max_new_tokens=4,
               checkpoint=tmp_path / "s.sqlite", log=tmp_path / "log.sqlite") as agent:
        before = agent.run("hello", session="old")
        reg.promote(v1)  # by `mmagent learn` in another process
        after = agent.run("hello", session="new")
        old_again = agent.run("hello again", session="old")
        adapters = {r.turn_id: agent.log.turn(r.turn_id).adapter for r in (before, after, old_again)}
    assert adapters == {before.turn_id: None, after.turn_id: v1, old_again.turn_id: None}


def test_the_default_adapter_hook_is_registered_by_the_entry_layer_and_injected(tmp_path):
    """`import mmagent` registers the learning loop's hook; the agent and the server only install
    what is registered (`mmagent.protocol.adapter_hook`) on a model that has no hook."""
    import mmagent  # noqa: F401 - the registration
    from mmagent.continual.serving import PromotedAdapter
    from mmagent.protocol import adapter_hook

    reg = AdapterRegistry(tmp_path / "adapters")
    hook = adapter_hook.default_hook(reg)
    assert isinstance(hook, PromotedAdapter) and hook.registry is reg

    class Sessions:  # ServesSessions
        adapter_hook = None

        def serve_session(self, session):
            return None

    model = adapter_hook.install(Sessions(), reg)
    assert isinstance(model.adapter_hook, PromotedAdapter) and model.adapter_hook.registry is reg
    def mine(host):
        return None

    kept = Sessions()
    kept.adapter_hook = mine
    assert adapter_hook.install(kept, reg).adapter_hook is mine  # a hook the model has is kept
    previous = adapter_hook.register(None)
    try:
        assert adapter_hook.install(Sessions(), reg).adapter_hook is None  # nothing registered: the model's own adapter
    finally:
        adapter_hook.register(previous)
