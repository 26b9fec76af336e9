"""Batched ancestral sampling with a KV cache, on any transformers causal LM (CPU or GPU).

    samples = sample(model, prompts=[ids, ...], num_samples=8, max_new_tokens=16,
                     eos_id=tok.eos_token_id, pad_id=tok.pad_token_id, generator=g)

Prompts are left-padded into one batch; each step feeds only the new token through the cache.
Randomness comes from the explicit `torch.Generator`, so a seed fixes every sample on CPU. The
policy's entropy at each generated position is recorded alongside (the `entropy` metric).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sample:
    prompt_index: int
    token_ids: tuple[int, ...]          # generated tokens, without the EOS
    finished: bool                      # ended with EOS (False: hit max_new_tokens)
    entropy_sum: float                  # sum over generated positions of H(pi(.|prefix)), nats
    num_positions: int                  # positions whose entropy was summed (EOS included)


@torch.no_grad()
def sample(model, prompts: Sequence[Sequence[int]], *, num_samples: int, max_new_tokens: int,
           eos_id: int, pad_id: int, generator: torch.Generator, temperature: float = 1.0,
           batch_size: int = 512) -> list[Sample]:
    """`num_samples` completions per prompt, in order: prompt 0's samples first."""
    jobs = [(i, list(p)) for i, p in enumerate(prompts) for _ in range(num_samples)]
    out: list[Sample] = []
    for start in range(0, len(jobs), batch_size):
        out.extend(_sample_batch(model, jobs[start:start + batch_size], max_new_tokens, eos_id, pad_id,
                                 generator, temperature))
    return out


def _cache_argument(model) -> str:
    """transformers >= 5.2x calls the KV cache `cache`; earlier releases `past_key_values`."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _sample_batch(model, jobs, max_new_tokens, eos_id, pad_id, generator, temperature) -> list[Sample]:
    device = next(model.parameters()).device
    width = max(len(p) for _, p in jobs)
    batch = len(jobs)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for row, (_, ids) in enumerate(jobs):
        input_ids[row, width - len(ids):] = torch.tensor(ids)
        mask[row, width - len(ids):] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)

    generated = torch.full((batch, max_new_tokens), pad_id, dtype=torch.long, device=device)
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)
    entropy = torch.zeros(batch, dtype=torch.float64, device=device)
    cache = None
    cache_arg = _cache_argument(model)
    step_ids, step_pos = input_ids, positions
    for t in range(max_new_tokens):
        outputs = model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos,
                        use_cache=True, **{cache_arg: cache})
        cache = getattr(outputs, cache_arg)
        logits = outputs.logits[:, -1, :].float() / temperature
        logp = torch.log_softmax(logits, dim=-1)
        probs = logp.exp()
        token = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(device)
        step_entropy = -(probs * logp).sum(-1)
        entropy += torch.where(alive, step_entropy, torch.zeros_like(step_entropy)).double()
        lengths += alive.long()
        token = torch.where(alive, token, torch.full_like(token, pad_id))
        generated[:, t] = token
        alive &= token != eos_id
        if not alive.any():
            break
        step_ids = token.unsqueeze(1)
        step_pos = positions[:, -1:] + t + 1
        mask = torch.cat([mask, torch.ones((batch, 1), dtype=mask.dtype, device=device)], dim=1)

    samples = []
    gen = generated.cpu().tolist()
    for row, (prompt_index, _) in enumerate(jobs):
        ids = gen[row][: int(lengths[row])]
        finished = bool(ids) and ids[-1] == eos_id
        if finished:
            ids = ids[:-1]
        samples.append(Sample(prompt_index, tuple(ids), finished, float(entropy[row]), int(lengths[row])))
    return samples
