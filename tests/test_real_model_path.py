"""The real-model path's settings: stop strings in the sampler, the completion budget and the real-quick
profile in the run config, the prompt format's few-shot turns, the real-model gate thresholds.

Run: pytest tests/test_real_model_path.py   (the shipped arith_target model; no real model needed)
"""

from __future__ import annotations

from pathlib import Path

import torch

from sdbench.config import PROFILES, resolve_config
from sdbench.core.model import PromptFormat, encode_prompt, load_model, tokenizer_info
from sdbench.core.sampling import sample, stop_token_ids
from sdbench.gate import _checks

ARITH = str(Path(__file__).resolve().parents[1] / "tasks" / "assets" / "arith_target")


def test_stop_tokens_end_rows_at_the_same_tokens_as_without_them() -> None:
    model, tok = load_model(ARITH)
    info = tokenizer_info(tok)
    prompts = [tok("numbers 7 2 6 5 3 target 10 :", add_special_tokens=False)["input_ids"]]

    def draw(stop_ids=frozenset()):
        return sample(model, prompts, num_samples=32, max_new_tokens=12, eos_id=info.eos_id, pad_id=info.pad_id,
                      generator=torch.Generator().manual_seed(0), stop_ids=stop_ids)

    free = draw()
    plus = tok.convert_tokens_to_ids("+")
    assert plus in stop_token_ids(tok, ["+"]) and tok.convert_tokens_to_ids("*") not in stop_token_ids(tok, ["+"])
    stopped = draw(frozenset({plus}))
    cut = 0
    for a, b in zip(free, stopped, strict=True):
        ids = list(a.token_ids)
        if plus in ids:                          # ends at its first '+', which it keeps; not finished (no EOS)
            end = ids.index(plus) + 1
            assert list(b.token_ids) == ids[:end] and not b.finished
            cut += 1
        else:                                    # untouched: the random stream is the same (the entropy sums may
            assert (b.token_ids, b.finished) == (a.token_ids, a.finished)   # differ in rounding: other batches)
    assert cut >= 5                               # the check bites: '+' is in many arith_target answers
    assert stop_token_ids(tok, []) == frozenset()


def test_real_quick_profile_and_max_new_tokens_setting() -> None:
    config = resolve_config({"profile": "real-quick", "model": "smollm2-135m-instruct", "tasks": ["nl_multiples"]})
    t, e = config.training, config.evaluation
    assert t.max_new_tokens is not None and t.max_new_tokens <= 48
    assert t.steps <= 48 and t.prompts_per_step * t.rollouts_per_prompt <= 64
    assert e.problems >= 100 and e.samples >= 16 and e.every < t.steps
    # None (the task's budget) leaves the hash of configs from before the setting unchanged
    base = resolve_config({"profile": "quick"})
    assert "max_new_tokens" not in base.model_dump(mode="json")["training"] or base.training.max_new_tokens is None
    assert base.config_hash() != resolve_config({"profile": "quick", "training": {"max_new_tokens": 7}}).config_hash()
    assert "real-quick" in PROFILES


class _BytesTokenizer:
    """A stand-in tokenizer: ids are UTF-8 bytes; its chat template writes 'role: content' lines."""

    bos_token_id = None

    def __init__(self, chat: bool) -> None:
        self.chat_template = "yes" if chat else None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        return {"input_ids": list(text.encode())}

    def apply_chat_template(self, turns, tokenize: bool, add_generation_prompt: bool) -> str:
        prompt = "assistant:" if add_generation_prompt else ""
        return "".join(f"{t['role']}: {t['content']}\n" for t in turns) + prompt


def test_prompt_format_few_shot_turns() -> None:
    examples = (("Name a multiple of 3.", "12"), ("Name a multiple of 5.", "30"))
    plain = bytes(encode_prompt(_BytesTokenizer(False), "Q?", PromptFormat(chat=False, examples=examples))).decode()
    assert plain == "Name a multiple of 3.\n12\n\nName a multiple of 5.\n30\n\nQ?"
    chat = bytes(encode_prompt(_BytesTokenizer(True), "Q?", PromptFormat(system="S", examples=examples))).decode()
    assert chat == "system: S\nuser: Name a multiple of 3.\nassistant: 12\nuser: Name a multiple of 5.\n" \
                   "assistant: 30\nuser: Q?\nassistant:"
    assert bytes(encode_prompt(_BytesTokenizer(True), "Q?", PromptFormat(chat=False))).decode() == "Q?"
    assert PromptFormat(examples=[["a", "b"]]) == PromptFormat(examples=(("a", "b"),))     # a task's dict form
    assert PromptFormat(examples=[["a", "b"]]).to_json() == {"chat": None, "system": None, "examples": [["a", "b"]]}


def test_real_model_gate_thresholds() -> None:
    m = {"student_pass1": 0.18, "pass_gain": 0.4, "distinct_correct": 3.2, "teacher_noncopy_pass1": 0.2,
         "delta_auc": 0.65, "delta_noncopy_correct_mean": -1.0, "delta_incorrect_mean": 0.0, "copy_rate": 0.9,
         "positional_copy_share": None}
    notes = {"positional_copy_share": "none"}
    real = {c.name: c.passed for c in _checks(m, 0.18, notes, real_model=True)}
    assert real["student_pass1"] and real["delta_auc"]                 # [0.15, 0.60] and >= 0.60 on a real model
    assert real["copy_rate"] is None and real["delta_noncopy_correct_mean"] is None   # reported, not checked
    embedded = {c.name: c.passed for c in _checks(m, 0.18, notes)}
    assert embedded["student_pass1"] is False and embedded["delta_auc"] is False and embedded["copy_rate"] is False


def test_shared_prefix_log_likelihoods_equal_the_padded_route() -> None:
    from sdbench.gate import sequence_logprobs

    model, tok = load_model(ARITH)
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in ("numbers 7 2 6 5 3 target 10 :", "5 * 2", "3 + 7",
                                                                     "numbers 9 4 target 13 :", "9 + 4")]
    contexts = [ids[0], ids[0], ids[3], ids[0] + ids[1]]
    completions = [ids[1], ids[2], ids[4], ids[2]]
    padded = sequence_logprobs(model, contexts, completions, tokenizer_info(tok).pad_id, batch_size=3)
    shared = sequence_logprobs(model, contexts, completions, tokenizer_info(tok).pad_id, batch_size=3,
                               shared_prefix=True)
    assert padded.shape == shared.shape == (4,) and (padded < 0).all()
    # the same ops up to summation order in the shared prefix's keys/values: float rounding only
    assert abs(padded - shared).max() < 1e-4
