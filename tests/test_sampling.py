"""Tests of the fast sampler (sdbench.core.sampling.sample and the decoders in sdbench.core._decode).

Run: pytest tests/test_sampling.py   (~10 s on one CPU thread)

The fast sampler must draw from the same distributions as the previous one: its per-step logits are
checked against transformers' full-sequence logits on fixed prompts and fixed generated prefixes
(both decoders, left padding, rows dropped mid-way, GQA and biased q/k/v variants), its entropy and
position counts against a recomputation from full-sequence logits, and its samples against
`_reference_sample` (the previous implementation) for the same seed: the random stream is kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sdbench.core import sampling
from sdbench.core._decode import HFDecoder, LlamaDecoder, make_decoder
from sdbench.core.model import encode_prompt, load_model, tokenizer_info
from sdbench.core.sampling import _reference_sample, sample
from sdbench.task import load_task

GRAPH_MODEL = Path(__file__).resolve().parents[1] / "tasks" / "assets" / "graph_paths"


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # timed and compared on one thread (conftest)


@pytest.fixture(scope="module")
def graph():
    model, tok = load_model(str(GRAPH_MODEL), native=False)   # the reference sampler runs transformers' cache
    task = load_task("graph_paths")
    prompts = [encode_prompt(tok, p.prompt) for p in task.problems("train", 5, seed=0)]
    prompts.append(prompts[0][:9])          # a short prompt: heavy left padding in its chunk
    return model, tokenizer_info(tok), prompts, task.max_new_tokens


def _tiny(kind: str):
    """A random Llama-family model: GQA (llama) or q/k/v biases (qwen2), neither in the shipped models."""
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    torch.manual_seed(0)
    common = dict(vocab_size=40, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=128)
    cfg = (LlamaConfig(num_key_value_heads=2, **common) if kind == "llama_gqa"
           else Qwen2Config(num_key_value_heads=4, **common))
    model = AutoModelForCausalLM.from_config(cfg).eval()
    for p in model.parameters():           # larger weights: logits far from uniform, a sharper check
        p.data.normal_(0, 0.3)
    return model


def _full_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


def _check_decoder(decoder, model, prompts: list[list[int]], pad_id: int, vocab: int) -> None:
    rows = torch.tensor([0, 0, 1, 2, 2, 2, 3])            # ragged groups: 2, 1, 3, 1 rows per prompt
    rows = rows[rows < len(prompts)]
    n_steps = 4
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id)
    valid = torch.zeros((len(prompts), width), dtype=torch.bool)
    for j, p in enumerate(prompts):
        ids[j, width - len(p):] = torch.tensor(p)
        valid[j, width - len(p):] = True
    gen = torch.Generator().manual_seed(1)
    prefix = torch.randint(3, vocab, (len(rows), n_steps), generator=gen)
    full = [_full_logits(model, prompts[int(r)] + prefix[i].tolist()) for i, r in enumerate(rows)]
    with torch.no_grad():
        logits = decoder.start(ids, valid, rows, n_steps + 1)
        live = torch.arange(len(rows))
        for t in range(n_steps + 1):
            for k, i in enumerate(live.tolist()):
                want = full[i][len(prompts[int(rows[i])]) - 1 + t]
                torch.testing.assert_close(logits[k].float(), want, atol=1e-5, rtol=1e-5,
                                           msg=lambda m, i=i, t=t: f"row {i} step {t}: {m}")
            if t == n_steps:
                break
            keep = torch.tensor([k for k in range(len(live)) if k % 3 != 1]) if t == 1 else None  # drop rows mid-way
            if keep is not None:
                live = live[keep]
            logits = decoder.step(prefix[live, t], keep)


@pytest.mark.parametrize("backend", ["llama", "hf"])
def test_decoder_logits_equal_full_sequence_logits(graph, backend: str) -> None:
    """Prefill-once + cache expansion + steps (and dropped rows) = transformers on each unpadded sequence."""
    model, info, prompts, _ = graph
    decoder = LlamaDecoder(model) if backend == "llama" else HFDecoder(model)
    _check_decoder(decoder, model, [prompts[0], prompts[-1], prompts[2], prompts[3]], info.pad_id,
                   model.config.vocab_size)


@pytest.mark.parametrize("kind", ["llama_gqa", "qwen2_bias"])
def test_llama_decoder_variants(kind: str) -> None:
    model = _tiny(kind)
    assert LlamaDecoder.supports(model)
    prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]
    _check_decoder(make_decoder(model), model, prompts, pad_id=0, vocab=40)


def test_unsupported_architecture_falls_back_to_transformers(graph, monkeypatch) -> None:
    model = graph[0]
    assert isinstance(make_decoder(model), LlamaDecoder)
    monkeypatch.setattr(model.config, "model_type", "gpt2")
    assert isinstance(make_decoder(model), HFDecoder)


def test_multinomial_is_argmax_over_exponential_noise() -> None:
    """The identity the sampler relies on to keep torch.multinomial's random stream while dropping rows."""
    probs = torch.randn(37, 53).mul(2).softmax(-1)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for _ in range(3):
        a = torch.multinomial(probs, 1, generator=g1).squeeze(1)
        b = (probs / torch.empty_like(probs).exponential_(generator=g2)).argmax(-1)
        assert torch.equal(a, b)


@pytest.mark.parametrize("shape", [(1, 53), (7, 53), (512, 53), (3, 151936)])
def test_exponential_noise_is_torchs_exponential_bit_for_bit(shape: tuple[int, int]) -> None:
    """The sampler's fast Exp(1) draw = torch's exponential_ (values and the generator's state after)."""
    for seed in (0, 1, 2**62 + 12345):
        g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        for _ in range(2):                  # the second draw checks that both leave the same state
            assert torch.equal(sampling.exponential_noise(shape, g1), torch.empty(shape).exponential_(generator=g2))


def _assert_same(new: list, old: list) -> None:
    assert [(s.prompt_index, s.token_ids, s.finished, s.num_positions) for s in new] == \
           [(s.prompt_index, s.token_ids, s.finished, s.num_positions) for s in old]
    # Entropies agree to float rounding of the logits: the decoder's logits equal transformers' to 1e-5
    # (test above), and a logit change of e moves a position's entropy by at most about e (|dH/dz| summed
    # over the vocabulary is Σ p_i |log p_i + H| ≈ 1 here), so 1e-5 per position. Measured: ≤ 2.8e-6 per
    # position (temperature 1.6, where the truncated prompt's rows are near uniform), ≤ 4.2e-7 at 0.7 and 1.0.
    for a, b in zip(new, old, strict=True):
        assert a.entropy_sum == pytest.approx(b.entropy_sum, abs=1e-5 * max(a.num_positions, 1))


@pytest.mark.parametrize("temperature,batch_size,fallback", [(1.0, 512, False), (0.7, 7, False), (1.6, 512, False),
                                                             (1.0, 7, True)])
def test_samples_equal_reference_for_the_same_seed(graph, monkeypatch, temperature: float, batch_size: int,
                                                   fallback: bool) -> None:
    """Same seed -> the previous implementation's samples (chunks of 7 rows split prompts' groups)."""
    model, info, prompts, max_new = graph
    if fallback:
        monkeypatch.setattr(LlamaDecoder, "supports", staticmethod(lambda m: False))
    kw = dict(num_samples=5, max_new_tokens=max_new, eos_id=info.eos_id, pad_id=info.pad_id,
              temperature=temperature, batch_size=batch_size)
    new = sample(model, prompts, generator=torch.Generator().manual_seed(11), **kw)
    old = _reference_sample(model, prompts, generator=torch.Generator().manual_seed(11), **kw)
    assert [s.prompt_index for s in new] == [i for i in range(len(prompts)) for _ in range(5)]
    _assert_same(new, old)
    if temperature > 1.5:                   # hot sampling: some rows run to the cut, and rows got dropped
        assert any(not s.finished for s in new) and any(s.finished for s in new)


def test_frequent_token_as_eos_stops_rows_early_like_reference(graph, monkeypatch) -> None:
    """EOS mid-completion: rows finish at different steps and finished rows leave the batch."""
    model, info, prompts, max_new = graph
    calls = []
    real_step = LlamaDecoder.step

    def spy(self, tokens, keep=None):
        calls.append(keep is not None)
        return real_step(self, tokens, keep)

    monkeypatch.setattr(LlamaDecoder, "step", spy)
    monkeypatch.setattr(sampling, "COMPACT_MIN_ROWS", 2)
    monkeypatch.setattr(sampling, "COMPACT_FRACTION", 0.99)   # drop rows whenever one finishes
    first = sample(model, prompts, num_samples=4, max_new_tokens=max_new, eos_id=info.eos_id, pad_id=info.pad_id,
                   generator=torch.Generator().manual_seed(0))
    # The token seen at the most different positions: rows then finish at different steps.
    seen = {(tok, i) for s in first for i, tok in enumerate(s.token_ids)}
    eos = max({tok for tok, _ in seen}, key=lambda tok: sum(t == tok for t, _ in seen))
    kw = dict(num_samples=6, max_new_tokens=max_new, eos_id=eos, pad_id=info.pad_id, temperature=1.3)
    new = sample(model, prompts, generator=torch.Generator().manual_seed(5), **kw)
    old = _reference_sample(model, prompts, generator=torch.Generator().manual_seed(5), **kw)
    _assert_same(new, old)
    assert any(calls), "no compaction happened"
    for s in new:
        assert eos not in s.token_ids
        assert s.num_positions == len(s.token_ids) + s.finished
        assert s.finished or len(s.token_ids) == max_new
    assert len({s.num_positions for s in new if s.finished}) > 1


def test_entropy_and_positions_match_full_sequence_recomputation(graph) -> None:
    model, info, prompts, _ = graph
    temperature, max_new = 1.3, 6
    # the last prompts include the truncated one: on it rows run past the 5-word path to max_new (unfinished),
    # on the whole prompts they stop after the path (finished); both kinds must be checked
    last = prompts[-3:]
    out = sample(model, last, num_samples=4, max_new_tokens=max_new, eos_id=info.eos_id, pad_id=info.pad_id,
                 generator=torch.Generator().manual_seed(2), temperature=temperature)
    assert any(s.finished for s in out) and any(not s.finished for s in out)
    for s in out:
        assert info.eos_id not in s.token_ids
        assert s.num_positions == len(s.token_ids) + s.finished <= max_new
        assert s.finished or len(s.token_ids) == max_new          # unfinished = cut at max_new_tokens
        prompt = last[s.prompt_index]
        emitted = list(s.token_ids) + [info.eos_id] * s.finished
        logp = torch.log_softmax(_full_logits(model, prompt + emitted) / temperature, dim=-1)
        steps = logp[len(prompt) - 1: len(prompt) - 1 + s.num_positions]
        entropy = float(-(steps.exp() * steps).sum())
        assert s.entropy_sum == pytest.approx(entropy, abs=1e-4)


def test_max_new_tokens_cut(graph) -> None:
    model, info, prompts, _ = graph
    out = sample(model, prompts, num_samples=3, max_new_tokens=2, eos_id=info.eos_id, pad_id=info.pad_id,
                 generator=torch.Generator().manual_seed(0))
    assert len(out) == 3 * len(prompts)
    assert all(len(s.token_ids) <= 2 and s.num_positions <= 2 for s in out)
    assert all(len(s.token_ids) == 2 for s in out if not s.finished)
    assert sum(not s.finished for s in out) > len(out) // 2     # graph_paths answers are longer than 2 tokens


def test_seeded_and_deterministic(graph) -> None:
    model, info, prompts, max_new = graph
    kw = dict(num_samples=8, max_new_tokens=max_new, eos_id=info.eos_id, pad_id=info.pad_id)
    a = sample(model, prompts, generator=torch.Generator().manual_seed(7), **kw)
    b = sample(model, prompts, generator=torch.Generator().manual_seed(7), **kw)
    c = sample(model, prompts, generator=torch.Generator().manual_seed(8), **kw)
    assert a == b
    assert [s.token_ids for s in a] != [s.token_ids for s in c]
