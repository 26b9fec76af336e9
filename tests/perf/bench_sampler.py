"""Benchmark: sdbench's sampler vs transformers' `generate` (and the previous sampler), new tokens per second.

Run: pytest tests/perf/bench_sampler.py --benchmark-only -s
     (one workload: python tests/perf/bench_sampler.py --worker '{"prompts": 16, "samples": 8}')

Workloads on the shipped graph_paths model (3 layers x 64 hidden, vocabulary 308), its train prompts
and max_new_tokens, temperature 1, one thread:
  train  16 prompts x 8 samples   (a training step of the quick settings)
  eval   64 prompts x 16 samples  (an evaluation split's worth; chunks of 512 rows)
Methods, timed in the same subprocess, interleaved, min over rounds (the machine is shared):
  sample     sdbench.core.sampling.sample (prefill once per prompt, lean Llama decode)
  reference  sdbench.core.sampling._reference_sample (the previous implementation)
  generate   model.generate(do_sample=True, top_k=0, top_p=1.0, num_return_sequences=G), the
             same prompts left-padded, the same row chunks, temperature and max_new_tokens
New tokens = generated positions including the EOS (Sample.num_positions; for generate, tokens up
to and including the first EOS). Target: sample >= 2x generate's tokens/s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

WORKLOADS = {"train": dict(prompts=16, samples=8), "eval": dict(prompts=64, samples=16)}
TARGET = 2.0
BATCH_ROWS = 512        # sample's default batch_size; generate gets the same chunks of prompts


def _methods(cfg: dict) -> dict[str, Callable[[int], int]]:
    import torch

    from sdbench.core.model import encode_prompt, load_model, tokenizer_info
    from sdbench.core.sampling import _reference_sample, sample
    from sdbench.task import load_task

    torch.set_num_threads(1)
    task = load_task("graph_paths")
    model, tok = load_model(task.base_model(), native=False)   # generate and the reference need transformers'
    info = tokenizer_info(tok)
    prompts = [encode_prompt(tok, p.prompt) for p in task.problems("train", cfg["prompts"], seed=0)]
    g, max_new = cfg["samples"], task.max_new_tokens
    kw = dict(num_samples=g, max_new_tokens=max_new, eos_id=info.eos_id, pad_id=info.pad_id, batch_size=BATCH_ROWS)

    def ours(fn: Callable) -> Callable[[int], int]:
        def run(seed: int) -> int:
            out = fn(model, prompts, generator=torch.Generator().manual_seed(seed), **kw)
            return sum(s.num_positions for s in out)

        return run

    per_call = max(1, BATCH_ROWS // g)

    def generate(seed: int) -> int:
        torch.manual_seed(seed)                      # generate samples from the global generator
        new = 0
        for start in range(0, len(prompts), per_call):
            chunk = prompts[start:start + per_call]
            width = max(map(len, chunk))
            ids = torch.full((len(chunk), width), info.pad_id)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, p in enumerate(chunk):
                ids[j, width - len(p):] = torch.tensor(p)
                mask[j, width - len(p):] = 1
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                                     top_p=1.0, max_new_tokens=max_new, num_return_sequences=g,
                                     eos_token_id=info.eos_id, pad_token_id=info.pad_id)
            gen = out[:, width:]
            is_eos = gen == info.eos_id
            # Up to and including the first EOS, or all max_new_tokens.
            first = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, torch.full_like(gen[:, 0], gen.shape[1]))
            new += int(first.sum())
        return new

    return {"sample": ours(sample), "reference": ours(_reference_sample), "generate": generate}


def _worker(cfg: dict) -> dict:
    methods = _methods(cfg)
    rounds = int(os.environ.get("SDBENCH_BENCH_ROUNDS", "5"))
    res: dict = {"config": cfg, "first_s": {}, "times_s": {}, "tokens": {}}
    for name, fn in methods.items():        # warm-up: first calls pay allocator and lazy-import costs
        t0 = time.perf_counter()
        fn(0)
        res["first_s"][name] = time.perf_counter() - t0
    for r in range(rounds):                 # interleaved, so load changes hit every method alike
        for name, fn in methods.items():
            t0 = time.perf_counter()
            n = fn(r + 1)
            res["times_s"].setdefault(name, []).append(time.perf_counter() - t0)
            res["tokens"].setdefault(name, []).append(n)
    return res


def _summarize(name: str, res: dict) -> str:
    t = {k: min(v) for k, v in res["times_s"].items()}
    best = {k: v.index(t[k]) for k, v in res["times_s"].items()}
    tps = {k: res["tokens"][k][best[k]] / t[k] for k in t}      # the fastest round's own token count
    cfg = res["config"]
    ratio = tps["sample"] / tps["generate"]
    parts = [f"sampler {name:5s} {cfg['prompts']}x{cfg['samples']}:"]
    parts += [f"{k} {t[k] * 1e3:7.1f} ms {tps[k]:8.0f} tok/s" for k in ("sample", "reference", "generate")]
    parts.append(f"| sample/generate {ratio:.2f}x (target {TARGET}x: {'MET' if ratio >= TARGET else 'MISSED'})")
    parts.append(f"sample/reference {tps['sample'] / tps['reference']:.2f}x")
    return " ".join(parts)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_sampler_perf(benchmark, name: str, request: pytest.FixtureRequest) -> None:
    def run() -> dict:
        out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(WORKLOADS[name])],
                             capture_output=True, text=True, timeout=1800)
        assert out.returncode == 0, out.stderr[-4000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    res = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    line = _summarize(name, res)
    request.config.sdbench_bench_rows.append(line)  # type: ignore[attr-defined]
    print(line)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(json.loads(sys.argv[2]))))
    else:
        sys.exit(__doc__)
