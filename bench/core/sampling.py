"""Batched ancestral sampling with a KV cache, on any transformers causal LM (CPU or GPU).

    samples = sample(model, prompts=[ids, ...], num_samples=8, max_new_tokens=16,
                     eos_id=tok.eos_token_id, pad_id=tok.pad_token_id, generator=g)

Jobs (prompt x sample) are cut into chunks of `batch_size` rows. In a chunk each distinct prompt is
prefilled once (left-padded) and its KV cache copied to its rows; then each step feeds only the new
tokens (sdbench.core._decode: a lean Llama-family forward, or transformers calls for any other LM).
Rows that finished are dropped from the batch once they are at least half of it.

Randomness comes from the explicit `torch.Generator`, so a seed fixes every sample on CPU. The draw
is torch.multinomial's own (argmax of p / Exp(1) noise over the whole chunk at every step), so the
random stream is the same as `_reference_sample`'s — the previous implementation, kept for tests
and benchmarks — and so are the samples, up to float rounding of the logits. The policy's entropy at
each generated position is recorded alongside (the `entropy` metric).

Stop strings: `stop_ids` (from `stop_token_ids(tokenizer, task.stop)`) are the tokens whose text holds a stop
string; a row that samples one ends there, keeping that token (the policy chose it; nothing after it is
sampled or trained), with `finished` False (no EOS was sampled). A stop string spread over several tokens is
not caught here; the task's verifier cuts the text at the first stop string anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sdbench.core._decode import cache_argument, make_decoder
from sdbench.core.divergence import formulas

# Drop finished rows once they are this fraction of the decode batch (and the batch is not tiny):
# a compaction copies every row's KV cache, so it only pays when it removes many rows at once.
COMPACT_FRACTION = 0.5
COMPACT_MIN_ROWS = 16


@dataclass(frozen=True)
class Sample:
    prompt_index: int
    token_ids: tuple[int, ...]          # generated tokens, without the EOS
    finished: bool                      # ended with EOS (False: hit max_new_tokens)
    entropy_sum: float                  # sum over generated positions of H(pi(.|prefix)), nats
    num_positions: int                  # positions whose entropy was summed (EOS included)


def exponential_noise(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Exp(1) noise equal, bit for bit, to `torch.empty(shape).exponential_(generator=generator)` and leaving
    the generator in the same state: torch's CPU kernel draws one float64 uniform u per element and
    returns float(-log1p(-u)), one element at a time; this draws the same uniforms with `uniform_` and
    transforms them as one vector op, ~2.5x faster (117 -> 46 us for 128 x 53; a few percent of a training
    step's sampling).
    tests/test_sampling.py checks the identity, so a torch that changes its kernel is caught."""
    return torch.empty(shape, dtype=torch.float64).uniform_(generator=generator).neg_().log1p_().neg_().float()


def stop_token_ids(tokenizer, stops: Sequence[str]) -> frozenset[int]:
    """The ids of the tokens whose decoded text contains one of `stops` (empty when there are none)."""
    if not stops:
        return frozenset()
    return frozenset(i for i in range(len(tokenizer))
                     if any(s in tokenizer.decode([i], skip_special_tokens=False) for s in stops))


@torch.no_grad()
def sample(model, prompts: Sequence[Sequence[int]], *, num_samples: int, max_new_tokens: int,
           eos_id: int, pad_id: int, generator: torch.Generator, temperature: float = 1.0,
           batch_size: int = 512, stop_ids: frozenset[int] = frozenset()) -> list[Sample]:
    """`num_samples` completions per prompt, in order: prompt 0's samples first. A row ends at EOS (dropped from
    token_ids, finished) or at a token of `stop_ids` (kept, not finished)."""
    jobs = [i for i in range(len(prompts)) for _ in range(num_samples)]
    decoder = make_decoder(model)       # per call: the trainer changes the weights between calls
    out: list[Sample] = []
    for start in range(0, len(jobs), batch_size):
        out.extend(_sample_chunk(decoder, prompts, jobs[start:start + batch_size], max_new_tokens, eos_id, pad_id,
                                 generator, temperature, stop_ids))
    return out


def _sample_chunk(decoder, prompts: Sequence[Sequence[int]], jobs: list[int], max_new_tokens: int, eos_id: int,
                  pad_id: int, generator: torch.Generator, temperature: float,
                  stop_ids: frozenset[int] = frozenset()) -> list[Sample]:
    distinct = sorted(set(jobs))                       # jobs are prompt-major: a chunk holds a run of prompts
    slot = {p: j for j, p in enumerate(distinct)}
    width = max(len(prompts[p]) for p in distinct)
    ids = torch.full((len(distinct), width), pad_id, dtype=torch.long)
    valid = torch.zeros((len(distinct), width), dtype=torch.bool)
    for j, p in enumerate(distinct):
        n = len(prompts[p])
        if n:
            ids[j, width - n:] = torch.as_tensor(list(prompts[p]), dtype=torch.long)
            valid[j, width - n:] = True
    rows = torch.tensor([slot[p] for p in jobs], dtype=torch.long)

    batch = len(jobs)
    generated = torch.full((batch, max(max_new_tokens, 0)), pad_id, dtype=torch.long)
    lengths = torch.zeros(batch, dtype=torch.long)
    entropy = torch.zeros(batch, dtype=torch.float64)
    if max_new_tokens > 0:
        logits = decoder.start(ids, valid, rows, max_new_tokens)
    active: torch.Tensor | None = None                 # chunk rows still in the decode batch (None: all)
    alive = torch.ones(batch, dtype=torch.bool)        # over the decode batch's rows
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long) if stop_ids else None
    for t in range(max_new_tokens):
        logp = torch.log_softmax(logits.float() / temperature, dim=-1)
        probs = logp.exp()
        step_entropy = formulas.entropy(logp).cpu()
        # torch.multinomial(probs, 1) is argmax(probs / q), q ~ Exp(1) of probs' shape: drawing q for
        # the whole chunk keeps the reference's random stream even after rows are dropped.
        noise = exponential_noise((batch, probs.shape[-1]), generator).to(probs.dtype)
        if active is not None:
            noise = noise[active]
        token = (probs.cpu() / noise).argmax(-1)
        gain = torch.where(alive, step_entropy, torch.zeros_like(step_entropy)).double()
        token = torch.where(alive, token, torch.full_like(token, pad_id))
        if active is None:
            entropy += gain
            lengths += alive.long()
            generated[:, t] = token
        else:
            entropy[active] += gain
            lengths[active] += alive.long()
            generated[active, t] = token
        alive &= token != eos_id
        if stops is not None:
            alive &= ~torch.isin(token, stops)
        n_alive = int(alive.sum())
        if n_alive == 0 or t + 1 == max_new_tokens:
            break
        keep = None
        if len(alive) >= COMPACT_MIN_ROWS and n_alive <= COMPACT_FRACTION * len(alive):
            keep = alive.nonzero().squeeze(1)
            active = keep if active is None else active[keep]
            alive, token = alive[keep], token[keep]
        logits = decoder.step(token, keep)

    samples = []
    gen = generated.tolist()
    for row, prompt_index in enumerate(jobs):
        n = int(lengths[row])
        ids_row = gen[row][:n]
        finished = bool(ids_row) and ids_row[-1] == eos_id
        if finished:
            ids_row = ids_row[:-1]
        samples.append(Sample(prompt_index, tuple(ids_row), finished, float(entropy[row]), n))
    return samples


@torch.no_grad()
def _reference_sample(model, prompts: Sequence[Sequence[int]], *, num_samples: int, max_new_tokens: int,
                      eos_id: int, pad_id: int, generator: torch.Generator, temperature: float = 1.0,
                      batch_size: int = 512) -> list[Sample]:
    """The previous sampler (every row prefills its own copy of the prompt; transformers calls): the
    reference the tests and tests/perf/bench_sampler.py compare `sample` with."""
    jobs = [(i, list(p)) for i, p in enumerate(prompts) for _ in range(num_samples)]
    out: list[Sample] = []
    for start in range(0, len(jobs), batch_size):
        out.extend(_reference_batch(model, jobs[start:start + batch_size], max_new_tokens, eos_id, pad_id,
                                    generator, temperature))
    return out


def _reference_batch(model, jobs, max_new_tokens, eos_id, pad_id, generator, temperature) -> list[Sample]:
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
    cache_arg = cache_argument(model)
    step_ids, step_pos = input_ids, positions
    for t in range(max_new_tokens):
        outputs = model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos,
                        use_cache=True, **{cache_arg: cache})
        cache = getattr(outputs, cache_arg)
        logits = outputs.logits[:, -1, :].float() / temperature
        logp = torch.log_softmax(logits, dim=-1)
        probs = logp.exp()
        token = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(device)
        step_entropy = formulas.entropy(logp)
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
