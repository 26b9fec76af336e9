"""The vLLM sampler's CPU-side logic against a fake engine: output conversion, weight-sync bookkeeping,
and the trainer/evaluation dispatch. No vLLM needed (tests/gpu/ runs the real engine on a GPU).

    pytest tests/test_vllm_sampler.py
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch

from sdbench.core import vllm_sampler
from sdbench.core.sampling import Sample
from sdbench.core.vllm_sampler import VLLMSampler, push_weights, select_sampler, to_samples
from sdbench.errors import UserError

EOS = 2
LETTER_IDS = range(8, 18)       # the toy vocabulary's letters (tests/toy.py)


def completion(index: int, ids: list[int], reason: str, cumulative: float | None = None, logprobs=None):
    return SimpleNamespace(index=index, token_ids=ids, finish_reason=reason, cumulative_logprob=cumulative,
                           logprobs=logprobs)


class FakeModel:
    def __init__(self) -> None:
        self.loads: list[list[str]] = []

    def load_weights(self, weights) -> None:
        self.loads.append([name for name, _ in weights])


class FakeLLM:
    """Shaped like vllm.LLM with an in-process engine core (the V1 attribute path)."""

    def __init__(self, in_process: bool = True) -> None:
        self.model = FakeModel()
        self.resets = 0
        self.rpcs: list[object] = []
        self.requests: list[tuple[list, list]] = []
        if in_process:
            runner = SimpleNamespace(model=self.model)
            self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(
                driver_worker=SimpleNamespace(worker=SimpleNamespace(model_runner=runner))))

    def reset_prefix_cache(self) -> None:
        self.resets += 1

    def collective_rpc(self, method, args=()) -> list:
        self.rpcs.append(method)
        method(SimpleNamespace(model_runner=SimpleNamespace(model=self.model)), *args)
        return [None]

    def generate(self, requests, params, use_tqdm=True):
        self.requests.append((requests, params))
        outputs = []
        for p in params:
            comps = [completion(i, [LETTER_IDS[(p["seed"] + i) % 10], EOS], "stop", -0.5) if i % 2 == 0 else
                     completion(i, [LETTER_IDS[i % 10]] * p["max_tokens"], "length", -2.0) for i in range(p["n"])]
            outputs.append(SimpleNamespace(outputs=comps[::-1]))      # vLLM may return them in any order
        return outputs


def fake_sampler(llm: FakeLLM | None = None) -> VLLMSampler:
    return VLLMSampler(llm or FakeLLM(), sampling_params=lambda **kw: kw)


def test_outputs_become_samples_like_the_hf_sampler() -> None:
    outputs = [SimpleNamespace(outputs=[completion(1, [9, 9, 9], "length", -3.0),
                                        completion(0, [8, EOS], "stop", -0.25)]),
               SimpleNamespace(outputs=[completion(0, [EOS], "stop", None, [{EOS: SimpleNamespace(logprob=-0.5)}]),
                                        completion(1, [7, 3], "stop", None, None)])]
    got = to_samples(outputs, num_samples=2, eos_id=EOS)
    assert got == [Sample(0, (8,), True, 0.25, 2), Sample(0, (9, 9, 9), False, 3.0, 3),
                   Sample(1, (), True, 0.5, 1),
                   Sample(1, (7, 3), False, 0.0, 2)]      # a stop string, not EOS: not finished
    with pytest.raises(RuntimeError, match="expected 3"):
        to_samples(outputs, num_samples=3, eos_id=EOS)


def test_weights_are_pushed_once_per_change_with_the_prefix_cache_reset(toy_model_dir: str) -> None:
    from sdbench.core.model import load_model

    model, _ = load_model(toy_model_dir)
    llm = FakeLLM()
    sampler = fake_sampler(llm)
    g = torch.Generator().manual_seed(0)
    kwargs = {"num_samples": 4, "max_new_tokens": 3, "eos_id": EOS, "pad_id": 0, "generator": g}
    out = sampler.sample(model, [[1, 4, 8], [1, 4, 9]], **kwargs)
    assert len(out) == 8 and [s.prompt_index for s in out] == [0] * 4 + [1] * 4
    sampler.sample(model, [[1, 4, 8]], **kwargs)
    assert sampler.pushes == 1 and llm.resets == 1            # unchanged weights: no second push
    assert llm.model.loads[0] == list(model.state_dict())      # HF names; vLLM maps them itself

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(input_ids=torch.tensor([[1, 4, 8]]), labels=torch.tensor([[1, 4, 8]])).loss.backward()
    optimizer.step()
    sampler.sample(model, [[1, 4, 8]], **kwargs)
    assert sampler.pushes == 2 and llm.resets == 2

    other, _ = load_model(toy_model_dir)                         # the next cell's fresh model
    sampler.sample(other, [[1, 4, 8]], **kwargs)
    assert sampler.pushes == 3
    requests, params = llm.requests[0]
    assert requests == [{"prompt_token_ids": [1, 4, 8]}, {"prompt_token_ids": [1, 4, 9]}]
    assert params[0]["stop_token_ids"] == [EOS] and params[0]["logprobs"] == 0 and params[0]["n"] == 4


def test_request_seeds_come_from_the_callers_generator() -> None:
    model = torch.nn.Linear(2, 2)
    seeds = []
    for _ in range(2):
        llm = FakeLLM()
        fake_sampler(llm).sample(model, [[1], [2]], num_samples=2, max_new_tokens=2, eos_id=EOS, pad_id=0,
                                 generator=torch.Generator().manual_seed(5))
        seeds.append([p["seed"] for p in llm.requests[0][1]])
    assert seeds[0] == seeds[1] and seeds[0][0] != seeds[0][1]


def test_an_engine_without_the_in_process_model_gets_weights_by_collective_rpc() -> None:
    llm = FakeLLM(in_process=False)
    assert push_weights(llm, torch.nn.Linear(2, 3)) == "collective_rpc"
    assert llm.model.loads == [["weight", "bias"]] and llm.resets == 1


def test_training_and_evaluation_sample_through_vllm_and_sync_after_every_step(
        toy_task, toy_model_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sdbench.config import TrainingConfig
    from sdbench.core.model import load_model
    from sdbench.core.trainer import train
    from sdbench.eval.evaluate import evaluate_split
    from sdbench.strategy import STRATEGIES

    sampler = fake_sampler()
    monkeypatch.setattr(vllm_sampler, "engine_for", lambda path: sampler)
    model, tok = load_model(toy_model_dir)
    cfg = TrainingConfig(steps=3, prompts_per_step=2, rollouts_per_prompt=4, lr=1e-3, train_problems=8,
                         backend="vllm")
    strategy = STRATEGIES.get("single_sampled_demo")(STRATEGIES.get("single_sampled_demo").Params())
    result = train(model, tok, toy_task, strategy, cfg, seed=0)
    trained = [log.trained_rollouts > 0 for log in result.log]
    assert result.steps == 3 and trained[0]
    # the base weights, then after every optimizer step, before the next step's rollouts
    assert sampler.pushes == 1 + sum(trained[:-1])
    out = evaluate_split(model, tok, toy_task, toy_task.problems("test", 3), n=4, seed=0, backend="vllm")
    assert sampler.pushes == 1 + sum(trained) and len(out.samples) == 12     # the weights after the last step
    assert any(r.correct for r in out.samples)                  # the fake's letters decode and grade


def test_backends_and_missing_vllm_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdbench.core.sampling import sample

    assert select_sampler("hf") is sample
    with pytest.raises(UserError, match="unknown sampling backend"):
        select_sampler("jax")
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(UserError) as info:
        vllm_sampler.require_vllm()
    assert "sdbench[gpu]" in (info.value.hint or "")


def test_run_with_backend_vllm_but_no_vllm_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    from sdbench.cli import main

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(SystemExit) as info:
        main(["run", "--profile", "smoke", "--backend", "vllm", "--out", str(tmp_path / "r")])
    assert info.value.code == 2 and not (tmp_path / "r").exists()
    assert capsys.readouterr().err.startswith("error: the vllm backend needs vLLM")
