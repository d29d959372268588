"""The MM-LLM, in the survey's parts (arXiv 2401.13601): modality encoders (encoders/), input
projectors (projectors.py) and visual token reduction (token_reduction.py), the LLM backbone
(backbone.py) with LoRA adapters (lora.py), their composition (mmllm.py: one mask assignment
splices image features into the input embeddings; mm_prompt.py renders the conversation), and
generation (generation.py: the decode loop; llama_decoder.py: the fused CPU decoder with prefix
reuse; cpu.py: kernels chosen by what the CPU does natively; decoder_cache.py, lean_backbone.py,
lean_tokenizer.py: serving from the fused decoder on disk without building the HF model); the
embedded image generator (digits_pipeline.py, a diffusers pipeline).

May import: `mmagent.protocol`, `mmagent.hub`, the media helpers and errors of `mmagent.media`.
Never an agent, a backend, the learning loop or a recipe.
"""
