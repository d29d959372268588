"""The training library: what the recipes (`recipes/`) and the learning loop (`mmagent/continual/`)
both train and score with, so neither imports the other.

One module per concept:

    config      the run settings (`ToolTuningConfig`: LoRA (`mmagent.model.lora.LoraSettings`), data, schedule, batching, precision)
    sequences   a conversation -> token ids with assistant-only labels, `IGNORE`, the shared system prefix
    data        conversations (loaded from a data folder or made by a generator) -> encoded `Sample`s
    batching    packing behind the shared prefix, a step's micro-batches, the packed tensors
    backbone    what is trained: the LLM (+ MM-LLM); `load_base` (as saved), `build_backbone` (+ a fresh adapter)
    loss        `AssistantLoss`: the summed next-token loss on assistant tokens
    optim       AdamW with linear warmup and cosine decay
    loop        the optimizer-step loop both trainers run (accelerate or one process; extra loss terms per step)
    checkpoint  adapter folders, checkpoints with optimizer state, resume
    export      the result folder, written through `mmagent.model.mmllm.write_pretrained`
    scoring     eval suites: loading, the replaying runner, per-item scores (the gate and `recipes/eval.py`)

Imports: `mmagent.protocol`, `mmagent.media`, `mmagent.hub`, `mmagent.model` and `tools/` (tool
schemas); never the backends, the agent, `continual`, `recipes` or `cli` (tests/test_layering.py
keeps the rule). What a recipe owns stays in the recipe: the data generators (`recipes/data.py`,
passed in as a function where the library needs one), the training entry points, the reports.
"""
