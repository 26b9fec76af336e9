"""vLLM sampler on a real GPU: records agree with the HF model, weight pushes take effect, and a
training + evaluation pass runs on the vLLM backend. Skipped without CUDA or without vLLM.

    bash tests/gpu/run_gpu_checks.sh          # on a CUDA machine with `pip install -e .[gpu]`
    pytest tests/gpu -rs                      # the same tests; says why they skip elsewhere

The model is a 2-layer Llama over the toy vocabulary (tests/toy.py) with head size 64, which every
vLLM attention backend supports (the CPU tests' model has head size 8). One engine serves all tests.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: vLLM runs only on GPUs")


@pytest.fixture(scope="module")
def vllm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install -e '.[gpu]')")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from toy import LETTERS, _fit
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("vllm_model")
    vocab = ["<pad>", "<bos>", "<eos>", "<unk>", "pick", "demo", ";", ":", *LETTERS]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    _fit(model, fast, 60, 0)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def loaded(vllm_model_dir: str):
    from sdbench.core.model import load_model

    return load_model(vllm_model_dir)


def _prompts(tok, count: int = 6) -> list[list[int]]:
    from toy import ToyPick

    from sdbench.core.model import encode_prompt

    return [encode_prompt(tok, p.prompt) for p in ToyPick().problems("test", count)]


@torch.no_grad()
def _hf_logprob(model, prompt: list[int], completion: list[int]) -> float:
    ids = torch.tensor([prompt + completion])
    logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return sum(float(logp[len(prompt) - 1 + t, tok]) for t, tok in enumerate(completion))


def test_vllm_samples_match_the_hf_model(loaded) -> None:
    from sdbench.core.vllm_sampler import vllm_sample

    model, tok = loaded
    prompts = _prompts(tok)
    samples = vllm_sample(model, prompts, num_samples=8, max_new_tokens=3, eos_id=tok.eos_token_id,
                          pad_id=tok.pad_token_id, generator=torch.Generator().manual_seed(0))
    assert len(samples) == 48 and [s.prompt_index for s in samples] == [i for i in range(6) for _ in range(8)]
    assert any(s.finished for s in samples)
    for s in samples:
        assert tok.eos_token_id not in s.token_ids and 1 <= s.num_positions <= 3
        completion = [*s.token_ids, tok.eos_token_id] if s.finished else list(s.token_ids)
        assert s.num_positions == len(completion)
        # vLLM ran in bf16 ("auto" for an fp32 checkpoint): log-probs agree to bf16 precision
        want = _hf_logprob(model, prompts[s.prompt_index], completion)
        assert -s.entropy_sum == pytest.approx(want, abs=0.05 + 0.05 * len(completion))


def test_a_weight_push_changes_what_vllm_samples(vllm_model_dir: str) -> None:
    from sdbench.core.model import load_model
    from sdbench.core.vllm_sampler import engine_for, vllm_sample

    model, tok = load_model(vllm_model_dir)
    with torch.no_grad():
        model.lm_head.weight.zero_()           # uniform next-token distribution over the vocabulary
    before = engine_for(vllm_model_dir).pushes
    samples = vllm_sample(model, _prompts(tok, 4), num_samples=8, max_new_tokens=3, eos_id=tok.eos_token_id,
                          pad_id=tok.pad_token_id, generator=torch.Generator().manual_seed(1))
    assert engine_for(vllm_model_dir).pushes == before + 1
    uniform = math.log(len(tok))
    for s in samples:
        assert s.entropy_sum / s.num_positions == pytest.approx(uniform, abs=0.02)


def test_training_and_evaluation_on_the_vllm_backend(vllm_model_dir: str) -> None:
    from toy import ToyPick

    from sdbench.config import TrainingConfig
    from sdbench.core.model import load_model
    from sdbench.core.trainer import train
    from sdbench.core.vllm_sampler import engine_for
    from sdbench.eval.evaluate import evaluate_split
    from sdbench.strategy import STRATEGIES

    model, tok = load_model(vllm_model_dir)
    task = ToyPick()
    cls = STRATEGIES.get("single_sampled_demo")
    cfg = TrainingConfig(steps=2, prompts_per_step=4, rollouts_per_prompt=4, lr=1e-3, train_problems=16,
                         backend="vllm")
    before = engine_for(vllm_model_dir).pushes
    result = train(model, tok, task, cls(cls.Params()), cfg, seed=0)
    out = evaluate_split(model, tok, task, task.problems("test", 4), n=8, seed=0, backend="vllm")
    # a push for the fresh model, then one after every step that changed the weights
    trained = sum(1 for log in result.log if log.trained_rollouts)
    assert result.steps == 2 and engine_for(vllm_model_dir).pushes == before + 1 + trained
    assert len(out.problems) == 4 and all(0 <= p.c <= 8 and p.entropy > 0 for p in out.problems)
    assert Path(vllm_model_dir).is_dir()
