"""The vLLM sampler (`--backend vllm`, extra `gpu`): same `Sample` records as the HF sampler, on vLLM.

    sdbench run --backend vllm ...                        # training rollouts and evaluation on vLLM
    sampler = select_sampler(config.training.backend)     # sdbench.core.sampling.sample for "hf"
    samples = sampler(model, prompts, num_samples=8, max_new_tokens=16, eos_id=2, pad_id=0, generator=g)

One vLLM engine per base-model path and process (a cell's worker), built on first use from the HF
model's `name_or_path`. The trainer keeps the weights: before each generate call the engine gets
the trainer model's weights when they changed since the last push (optimizer steps and checkpoint
loads bump torch's per-tensor version counters, so the fingerprint is free to compute). A push
loads the state dict through the vLLM model's own `load_weights` (which maps HF names onto its
fused layers) and then resets vLLM's prefix cache — otherwise KV blocks computed under the old
weights would be reused, a known pitfall of in-place weight updates.

Engine access: the engine core runs in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0, as TRL's
colocate mode does), so the model is reachable as
`llm.llm_engine.model_executor.driver_worker[.worker].model_runner.model`; where it is not (a
multiprocess or tensor-parallel engine), weights go through `llm.collective_rpc` to every worker.

Records: token ids without the EOS, `finished` = stopped on EOS, `num_positions` counts the EOS.
vLLM does not expose the full next-token distribution, so `entropy_sum` is the sum of the sampled
tokens' negative log-probabilities (`cumulative_logprob`): its expectation is exactly the summed
per-position entropy the HF sampler records (E[-log p(y_t | y_<t)] = H(pi(. | y_<t))), so per-problem
means agree in expectation but are noisier. The engine is asked for processed log-probs (after
temperature) where the vLLM version supports `logprobs_mode`; older versions report raw ones, which
equal processed ones at temperature 1 (the evaluation setting). Seeds: one vLLM request seed per
prompt, drawn from the caller's torch generator, so a run seed fixes the requests.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from sdbench.core.sampling import Sample
from sdbench.errors import UserError

Sampler = Callable[..., list[Sample]]
GPU_MEMORY_ENV = "SDBENCH_VLLM_GPU_MEMORY_UTILIZATION"     # share of the GPU vLLM may take (default 0.3)


def select_sampler(backend: str) -> Sampler:
    """The `sample`-compatible function for a backend: "hf" (transformers) or "vllm"."""
    if backend == "hf":
        from sdbench.core.sampling import sample

        return sample
    if backend == "vllm":
        return vllm_sample
    raise UserError(f"unknown sampling backend {backend!r}", "use hf or vllm")


def require_vllm() -> Any:
    """The vllm module, or a one-line UserError saying what to install (checked before a run starts)."""
    try:
        import vllm
    except ImportError:
        raise UserError("the vllm backend needs vLLM, which is not installed",
                        "pip install 'sdbench[gpu]' on a CUDA machine, or use --backend hf") from None
    if not torch.cuda.is_available():
        raise UserError("the vllm backend needs a CUDA GPU and none is visible", "use --backend hf on this machine")
    return vllm


_tokens = itertools.count(1)


def weights_fingerprint(model: torch.nn.Module) -> tuple[int, tuple[int, ...]]:
    """Changes whenever a parameter or buffer is modified in place (optimizer step, load_state_dict).

    The first element names the model object; a token rather than id(), which a later model of the
    next in-process cell may reuse with equal version counters but other weights.
    """
    token = getattr(model, "_sdbench_sync_token", None)
    if token is None:
        token = next(_tokens)
        object.__setattr__(model, "_sdbench_sync_token", token)
    tensors = [*model.parameters(), *model.buffers()]
    return token, tuple(t._version for t in tensors)


def _attr_path(obj: Any, path: str) -> Any:
    for name in path.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


# Where an in-process engine keeps its nn.Module, newest vLLM layout first (V1, then V0).
_MODEL_PATHS = ("llm_engine.model_executor.driver_worker.worker.model_runner.model",
                "llm_engine.model_executor.driver_worker.model_runner.model")


def _load_on_worker(worker: Any, weights: list[tuple[str, torch.Tensor]]) -> None:
    """Runs inside each vLLM worker (collective_rpc): load HF-named weights into its model."""
    worker.model_runner.model.load_weights(weights=weights)


def push_weights(llm: Any, model: torch.nn.Module) -> str:
    """Copy the trainer model's weights into the engine; returns the route taken (for tests/logs)."""
    weights = [(name, t.detach()) for name, t in model.state_dict().items()]
    target = next((m for m in (_attr_path(llm, p) for p in _MODEL_PATHS) if m is not None), None)
    if target is not None:
        target.load_weights(weights=weights)
        route = "in-process"
    elif hasattr(llm, "collective_rpc"):
        llm.collective_rpc(_load_on_worker, args=([(n, t.cpu()) for n, t in weights],))
        route = "collective_rpc"
    else:
        raise RuntimeError("cannot reach the vLLM model to load weights (unknown vLLM engine layout)")
    reset = getattr(llm, "reset_prefix_cache", None)
    if reset is not None:
        reset()            # cached KV blocks were computed under the old weights
    return route


def to_samples(outputs: Sequence[Any], num_samples: int, eos_id: int) -> list[Sample]:
    """vLLM RequestOutputs (one per prompt, `n` completions each) -> Samples, prompt 0's first."""
    samples: list[Sample] = []
    for prompt_index, request in enumerate(outputs):
        completions = sorted(request.outputs, key=lambda c: c.index)
        if len(completions) != num_samples:
            raise RuntimeError(f"vLLM returned {len(completions)} completions for prompt {prompt_index}, "
                               f"expected {num_samples}")
        for completion in completions:
            ids = list(completion.token_ids)
            positions = len(ids)
            finished = completion.finish_reason == "stop" and bool(ids) and ids[-1] == eos_id
            if finished:
                ids = ids[:-1]
            samples.append(Sample(prompt_index, tuple(ids), finished, _negative_logprob(completion), positions))
    return samples


def _negative_logprob(completion: Any) -> float:
    """Sum of -log p(sampled token) over the completion; 0.0 when vLLM gave no log-probs."""
    total = getattr(completion, "cumulative_logprob", None)
    if total is not None:
        return float(-total)
    per_position: Iterable[Any] | None = getattr(completion, "logprobs", None)
    if not per_position:
        return 0.0
    out = 0.0
    for token, entries in zip(completion.token_ids, per_position, strict=False):
        entry = entries[token]
        out -= float(getattr(entry, "logprob", entry))
    return out


class VLLMSampler:
    """A vLLM engine plus the bookkeeping of which trainer weights it holds."""

    def __init__(self, llm: Any, sampling_params: Callable[..., Any] | None = None) -> None:
        self.llm = llm
        self.sampling_params = sampling_params       # vllm.SamplingParams unless a test injects one
        self.synced: tuple[int, tuple[int, ...]] | None = None
        self.pushes = 0

    def sync(self, model: torch.nn.Module) -> bool:
        """Push the model's weights if they changed since the last push; True when it pushed."""
        fingerprint = weights_fingerprint(model)
        if fingerprint == self.synced:
            return False
        push_weights(self.llm, model)
        self.synced = fingerprint
        self.pushes += 1
        return True

    def sample(self, model: torch.nn.Module, prompts: Sequence[Sequence[int]], *, num_samples: int,
               max_new_tokens: int, eos_id: int, pad_id: int, generator: torch.Generator,
               temperature: float = 1.0, batch_size: int = 512) -> list[Sample]:
        """Same contract as sdbench.core.sampling.sample (pad_id/batch_size: vLLM batches itself)."""
        if not prompts:
            return []
        self.sync(model)
        make = self.sampling_params or _vllm_sampling_params()
        seeds = torch.randint(0, 2**31 - 1, (len(prompts),), generator=generator).tolist()
        params = [make(n=num_samples, temperature=temperature, max_tokens=max_new_tokens,
                       stop_token_ids=[eos_id], logprobs=0, seed=int(seed), detokenize=False) for seed in seeds]
        requests = [{"prompt_token_ids": list(p)} for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return to_samples(outputs, num_samples, eos_id)


def _vllm_sampling_params() -> Callable[..., Any]:
    from vllm import SamplingParams

    return SamplingParams


_ENGINES: dict[str, VLLMSampler] = {}       # one engine per base-model path in this process


def engine_for(path: str) -> VLLMSampler:
    """The process's vLLM engine for a model path, built on first use."""
    if path not in _ENGINES:
        vllm = require_vllm()
        # In-process engine core: the model is reachable for direct weight loads (see the docstring).
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        options: dict[str, Any] = {"model": path, "dtype": "auto", "enforce_eager": True,
                                   "gpu_memory_utilization": float(os.environ.get(GPU_MEMORY_ENV, "0.3")),
                                   "enable_prefix_caching": True}
        try:
            llm = vllm.LLM(**options, logprobs_mode="processed_logprobs")
        except TypeError:       # vLLM before logprobs_mode (< 0.10.2): raw log-probs
            llm = vllm.LLM(**options)
        _ENGINES[path] = VLLMSampler(llm)
    return _ENGINES[path]


def vllm_sample(model: torch.nn.Module, prompts: Sequence[Sequence[int]], **kwargs: Any) -> list[Sample]:
    """`sample` on vLLM: the engine for the model's path, synced with its current weights."""
    path = getattr(model, "name_or_path", "") or getattr(getattr(model, "config", None), "_name_or_path", "")
    if not path:
        raise UserError("the vllm backend needs a model loaded from a directory or hub id",
                        "load the model with sdbench.core.model.load_model")
    return engine_for(str(path)).sample(model, prompts, **kwargs)
