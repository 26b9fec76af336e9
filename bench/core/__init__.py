"""The core: what every strategy's cell goes through, from a loaded model to an optimizer step.

    model.py          load a model + tokenizer (native Llama/Qwen2 loader or transformers), prompts, hashes
    llama.py          the native Llama / Qwen2 causal LM and tokenizer (no transformers import)
    sampling.py       batched sampling with a KV cache (_decode.py: the decoder loop); vllm_sampler.py on GPU
    rollouts.py       prompts -> rollouts -> verdicts -> the strategy's Group
    _forward.py       scoring completions under the student and under each teacher context
    divergence/       the divergence names (names.py) and their reference formulas (formulas.py)
    kernels/          the fused linear + divergence loss (torch chunked, C++ on CPU, Triton on CUDA)
    objective*.py     the loss of one step from the strategy's plans (materialized and fused routes)
    trainer.py        the training loop (teacher weights: EMA / frozen / live), checkpoint.py its state
    timing.py         per-stage wall-time counters

Nothing is imported here: `import sdbench.core.X` loads only X and what it needs.
"""
