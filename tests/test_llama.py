"""sdbench.core.llama against transformers: the same modules, weights, RoPE tables, logits, gradients,
tokenization, and the same trained cell; and what falls back to transformers.

Run: pytest tests/test_llama.py
Exact equality (torch.equal) where the two run the same ops in the same order on the same weights;
a tolerance only where transformers takes another kernel path (see each assert).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import smoke_config

from sdbench.core.llama import NativeCausalLM, NativeTokenizer, load_native
from sdbench.core.model import load_model
from sdbench.task import load_task, problem_set

ASSETS = Path(__file__).resolve().parents[1] / "tasks" / "assets"
SHIPPED = ("graph_paths", "arith_target", "code_synth")


@pytest.fixture(scope="module", params=SHIPPED)
def pair(request):
    path = str(ASSETS / request.param)
    (hf, hf_tok), (native, native_tok) = load_model(path, native=False), load_model(path)
    return request.param, hf, hf_tok, native, native_tok


def _batch(vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (5, 23), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0        # right padding, two lengths
    mask[3, 7:] = 0
    return ids, mask


def test_shipped_models_load_natively_with_transformers_layout(pair) -> None:
    _, hf, _, native, native_tok = pair
    assert isinstance(native, NativeCausalLM) and isinstance(native_tok, NativeTokenizer)
    # names and order: the optimizer's and the gradient norm's parameter order, checkpoints' keys
    assert [n for n, _ in native.named_parameters()] == [n for n, _ in hf.named_parameters()]
    assert list(native.state_dict()) == list(hf.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(native.state_dict().values(), hf.state_dict().values(), strict=True))
    assert [n for n, _ in native.named_buffers()] == [n for n, _ in hf.named_buffers()]
    assert all(torch.equal(a, b) for a, b in zip(native.buffers(), hf.buffers(), strict=True))
    assert native.lm_head.weight is native.model.embed_tokens.weight      # tied, as the config says
    assert native.model.embed_tokens.padding_idx == hf.model.embed_tokens.padding_idx
    assert not native.training


def test_rope_tables_equal_transformers(pair) -> None:
    _, hf, _, native, _ = pair
    pos = torch.arange(1000).unsqueeze(0)
    x = hf.model.embed_tokens.weight[:1]
    for a, b in zip(native.model.rotary_emb(x, pos), hf.model.rotary_emb(x, pos), strict=True):
        assert torch.equal(a, b)


def test_padded_logits_and_gradients_equal_transformers(pair) -> None:
    _, hf, _, native, _ = pair
    ids, mask = _batch(hf.config.vocab_size)
    valid = mask.bool()
    outs = []
    for model in (hf, native):
        model.zero_grad(set_to_none=True)
        logits = model(input_ids=ids, attention_mask=mask).logits
        logits[valid].log_softmax(-1)[:, 5].sum().backward()
        outs.append((logits.detach(), [p.grad for p in model.parameters()]))
        model.zero_grad(set_to_none=True)
    (l_hf, g_hf), (l_nat, g_nat) = outs
    # pad positions hold anything (no valid query attends to them); the valid ones are the same ops
    assert torch.equal(l_nat[valid], l_hf[valid])
    for a, b in zip(g_nat, g_hf, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)   # backward kernels may sum in another order


def test_labels_give_transformers_causal_lm_loss(pair) -> None:
    _, hf, _, native, _ = pair
    ids, mask = _batch(hf.config.vocab_size)
    labels = ids.masked_fill(mask == 0, -100)
    a = native(input_ids=ids, attention_mask=mask, labels=labels).loss
    b = hf(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.equal(a, b)


def test_tokenizer_encodes_and_decodes_as_transformers(pair) -> None:
    name, hf, hf_tok, _, tok = pair
    for attr in ("bos_token", "eos_token", "pad_token", "bos_token_id", "eos_token_id", "pad_token_id",
                 "chat_template"):
        assert getattr(tok, attr) == getattr(hf_tok, attr), attr
    assert len(tok) == len(hf_tok)
    task = load_task(name)
    for problem in problem_set(task, "val", 30):
        for text in (problem.prompt, problem.prompt + " 3 x\n"):
            for special in (False, True):
                assert tok(text, add_special_tokens=special)["input_ids"] == \
                    hf_tok(text, add_special_tokens=special)["input_ids"]
    texts = [p.prompt for p in problem_set(task, "test", 20)]
    assert tok(texts, add_special_tokens=False) == dict(hf_tok(texts, add_special_tokens=False))
    vocab = list(json.loads((ASSETS / name / "tokenizer.json").read_text())["model"]["vocab"])[:40]
    assert tok.convert_tokens_to_ids(vocab) == hf_tok.convert_tokens_to_ids(vocab)
    assert tok.convert_tokens_to_ids(vocab[5]) == hf_tok.convert_tokens_to_ids(vocab[5])
    rng = random.Random(0)
    for _ in range(300):
        ids = [rng.randrange(hf.config.vocab_size) for _ in range(rng.randrange(0, 24))]
        for skip in (True, False):
            assert tok.decode(ids, skip_special_tokens=skip) == hf_tok.decode(ids, skip_special_tokens=skip)


def _variant(tmp_path: Path, model_type: str, **config) -> Path:
    """A random transformers checkpoint of another layout (GQA, biases, untied head), graph_paths' tokenizer."""
    import transformers

    cls = {"llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
           "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM)}[model_type]
    torch.manual_seed(0)
    cfg = cls[0](vocab_size=308, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=256, pad_token_id=2, bos_token_id=0, eos_token_id=1,
                 **config)
    model = cls[1](cfg)
    with torch.no_grad():     # non-zero biases, so a missing bias would show
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_()
    out = tmp_path / model_type
    model.save_pretrained(out)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(ASSETS / "graph_paths" / f, out / f)
    return out


@pytest.mark.parametrize(("model_type", "config"), [
    ("llama", {"attention_bias": True, "tie_word_embeddings": False}),
    ("qwen2", {"tie_word_embeddings": True}),
])
def test_other_llama_family_layouts_match_transformers(tmp_path: Path, model_type: str, config: dict) -> None:
    path = str(_variant(tmp_path, model_type, **config))
    hf, _ = load_model(path, native=False)
    native, _ = load_model(path)
    assert isinstance(native, NativeCausalLM)
    assert [n for n, _ in native.named_parameters()] == [n for n, _ in hf.named_parameters()]
    assert (native.lm_head.weight is native.model.embed_tokens.weight) == config["tie_word_embeddings"]
    ids, mask = _batch(308)
    valid = mask.bool()
    a, b = native(input_ids=ids, attention_mask=mask).logits, hf(input_ids=ids, attention_mask=mask).logits
    # GQA: transformers' SDPA call repeats the keys itself, ours passes enable_gqa: fp32 rounding apart
    torch.testing.assert_close(a[valid], b[valid], rtol=1e-5, atol=1e-5)


def test_what_it_does_not_implement_goes_to_transformers(tmp_path: Path) -> None:
    path = _variant(tmp_path, "llama")
    config = json.loads((path / "config.json").read_text())
    config["rope_parameters"] = {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}
    (path / "config.json").write_text(json.dumps(config))
    assert load_native(str(path)) is None
    model, _ = load_model(str(path))
    assert type(model).__name__ == "LlamaForCausalLM"
    with pytest.raises(TypeError, match="no KV cache"):
        load_model(str(ASSETS / "graph_paths"))[0](input_ids=torch.tensor([[3, 4]]), use_cache=True)


def test_loading_a_shipped_model_imports_no_transformers() -> None:
    code = ("import sys; from sdbench.core.model import load_model; "
            f"load_model({str(ASSETS / 'graph_paths')!r}); "
            "print(sorted(m for m in ('transformers', 'torch._dynamo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_trained_cell_is_the_same_with_either_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdbench.core import model as model_mod
    from sdbench.eval import along
    from sdbench.runs.cell import plan_cells, run_cell

    config = smoke_config(tasks=["graph_paths"], strategies=["single_sampled_demo"])
    cell = plan_cells(config)[0]
    records = []
    real = model_mod.load_model
    for native in (True, False):
        along.STEP0_CACHE.clear()
        monkeypatch.setattr(model_mod, "load_model", lambda path, dtype=torch.float32, n=native: real(path, dtype,
                                                                                                   native=n))
        cell_record, samples = run_cell(cell, config)
        record = cell_record.model_dump(mode="json", exclude_none=True)
        assert record["status"] == "ok"
        for volatile in ("timing", "wall_s"):
            record.pop(volatile)
        record["train"].pop("wall_s")
        records.append((record, samples))
    assert records[0] == records[1]
