"""A toy task and a tiny random-init model for unit tests of the core (no shipped assets needed).

ToyPick: the prompt lists a few letters; any listed letter is a correct answer. Functional class
= the letter, semantic class = vowel or consonant. The model is a 2-layer Llama with a word-level
tokenizer built by `tokenizers`, saved to a directory like every sdbench base model.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from sdbench.task import Problem, Verdict, stable_rng

LETTERS = list("abcdefghij")
VOWELS = set("aei")


class ToyPick:
    name: ClassVar[str] = "toy_pick"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test", "ood")
    max_new_tokens: ClassVar[int] = 3
    model_dir: ClassVar[str] = ""

    def problems(self, split: str, count: int, seed: int = 0) -> list[Problem]:
        out = []
        for i in range(count):
            rng = stable_rng("toy", split, seed, i)
            letters = sorted(rng.sample(LETTERS, 3))
            out.append(Problem(id=f"{split}-{i}", prompt="pick " + " ".join(letters) + " :",
                               reference=letters[0], data={"letters": letters}))
        return out

    def verify(self, problem: Problem, completions: Sequence[str]) -> list[Verdict]:
        verdicts = []
        for text in completions:
            ok = text.strip() in problem.data["letters"]
            cls = text.strip() if ok else None
            verdicts.append(Verdict(ok, cls, ("vowel" if cls in VOWELS else "consonant") if ok else None))
        return verdicts

    def teacher_prompt(self, problem: Problem, demos: Sequence[str]) -> str:
        return " ".join(f"demo {d} ;" for d in demos) + " " + problem.prompt

    def demo_only_prompt(self, problem: Problem, demos: Sequence[str]) -> str:
        return " ".join(f"demo {d} ;" for d in demos) + " :"

    def base_model(self) -> str:
        # a cell's worker process imports this module afresh: the fixture's path reaches it through the environment
        return self.model_dir or os.environ.get("TOY_MODEL_DIR", "")

    def pretraining_texts(self, rng: random.Random, count: int) -> list[str]:
        return []


def build_tiny_model(path: Path, seed: int = 0, fit_steps: int = 0) -> Path:
    """A 2-layer Llama + word-level tokenizer over the toy vocabulary, saved to path.

    With fit_steps > 0 it is first fitted briefly on toy problems (answers biased toward the first
    listed letter), so that it solves some of them and a group has correct rollouts to train on.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = ["<pad>", "<bos>", "<eos>", "<unk>", "pick", "demo", ";", ":", *LETTERS]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    if fit_steps:
        _fit(model, fast, fit_steps, seed)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def _fit(model, tokenizer, steps: int, seed: int) -> None:
    import torch

    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        texts = []
        for _ in range(32):
            letters = sorted(rng.sample(LETTERS, 3))
            answer = letters[0] if rng.random() < 0.6 else rng.choice(letters)
            texts.append("<bos> pick " + " ".join(letters) + " : " + answer + " <eos>")
        ids = torch.tensor([tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts])
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
