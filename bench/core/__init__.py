"""The core: what every strategy's cell goes through, from a loaded model to an optimizer step.

    model.py          load a model + tokenizer (native Llama/Qwen2 loader or transformers), prompts, hashes
    llama.py          the native Llama / Qwen2 causal LM and tokenizer (no transformers import)
    sampling.py       batched sampling with a KV cache (_decode.py: the decoder loop); vllm_sampler.py on GPU
    rollouts.py       prompts -> rollouts -> verdicts -> the strategy's Group
    settings.py       TrainingConfig (the trainer's settings) and LossSpec (the one validated loss description)
    scoring.py        rows at the positions predicting a completion; log p(y_t) from hidden states, chunked
    _forward.py       scoring completions under the student and under each teacher context (shared prefixes)
    divergence/       the divergence names (names.py) and their reference formulas (formulas.py)
    kernels/          the fused linear + divergence loss (torch chunked, C++ on CPU, Triton on CUDA)
    loss_items.py     a tokenized rollout with its plan (LossItem), step statistics, the teacher-context layout
    policy_terms.py   the sampled-token terms (hint contrast, KL to the base, cross-entropy)
    objective*.py     the loss of one step from the strategy's plans (materialized and fused routes)
    trainer.py        the training loop (teacher weights: EMA / frozen / live), checkpoint.py its state
    timing.py         per-stage wall-time counters

The loss modules import downwards in the order settings, scoring, _forward, loss_items, policy_terms,
objective_fused, objective (tests/test_layers.py fails on a loop). Nothing is imported here:
`import sdbench.core.X` loads only X and what it needs.
"""
