"""Tests of the real-data tasks (gsm8k, math500, humaneval, mbpp) on their shipped fixtures, offline.

Grading, classes and data loading per task; code runs only through the sandbox (fake pass lines and
`sys.exit(0)` fail); and `sdbench run --model PATH --tasks gsm8k --data-path FIXTURE --profile smoke`
end to end with a tiny random Llama whose byte-level BPE tokenizer and chat template are built here.
Run: pytest tests/test_real_tasks.py   (about a minute on 2 cores; nothing is downloaded)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdbench.errors import UserError
from sdbench.task import Task, load_task
from sdbench.tasks._realdata import FIXTURES

REAL = ("gsm8k", "math500", "humaneval", "mbpp")
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def task_of(name: str, path: Path | None = None):
    return load_task(name, data_path=str(path or FIXTURES / name))


@pytest.mark.parametrize("name", REAL)
def test_fixture_references_pass_and_wrong_answers_fail(name: str) -> None:
    task = task_of(name)
    assert isinstance(task, Task)
    for split in task.splits:
        problems = task.problems(split, 100)
        assert problems and len({p.id for p in problems}) == len(problems)
        wrong = "def f(:\n" if name in ("humaneval", "mbpp") else "The answer is 987654321."
        for problem in problems:
            ok, bad = task.verify(problem, [problem.reference, wrong])
            assert ok.correct and ok.status == "ok" and ok.functional_class and ok.semantic_class, (problem.id, ok)
            assert not bad.correct and bad.functional_class is None


# Seeded prefixes, disjoint splits and teacher-ready prompts are the Task contract: tests/test_task.py.
@pytest.mark.parametrize("name", REAL)
def test_every_demo_is_shown_and_the_base_model_is_a_hub_id(name: str) -> None:
    task = task_of(name)
    problem = task.problems(task.splits[0], 1)[0]
    demo_only = task.demo_only_prompt(problem, [problem.reference, problem.reference])
    assert demo_only.count(problem.reference.strip()) == 2
    assert "/" in task.base_model()   # a hub id, used only when the user has network


def test_gsm8k_answers_and_classes() -> None:
    from sdbench.tasks.gsm8k import final_answer

    assert final_answer("so 3 + 4 = 7\n#### 1,234.50 dollars") == "1234.5"
    assert final_answer("The answer is $\\boxed{42}$.") == "42" and final_answer("I get 5, then 6.") == "6"
    assert final_answer("no idea") is None
    task = task_of("gsm8k")
    problem = next(p for p in task.all_problems("test") if p.data["answer"] == "72")
    a, b, c, d, e = task.verify(problem, ["48/2 = 24 clips in May, 48 + 24 = 72 in all.\n#### 72",
                                          "In May: 48 / 2 = 24. Total: 24 + 48 = 72. The answer is 72.",
                                          "Twice 48 is 96, minus 24 = 72 \n#### 72.0",
                                          "#### 71", "I don't know"])
    assert a.correct and b.correct and c.correct and not d.correct and not e.correct
    assert a.functional_class == b.functional_class == "72|24,72"   # same computed quantities
    assert c.functional_class != a.functional_class                  # another route to 72
    assert e.status == "no_answer"


def test_math500_equivalence_and_answer_form() -> None:
    from sdbench.tasks.math500 import answer_form, last_boxed

    task = task_of("math500")
    problem = next(p for p in task.all_problems("test") if p.data["answer"] == "\\frac{5}{6}")
    verdicts = task.verify(problem, ["$\\frac36+\\frac26 = \\boxed{\\dfrac{5}{6}}$", "so it is \\boxed{5/6}",
                                     "\\boxed{0.8333333333}", "\\boxed{\\frac{6}{5}}", "no answer"])
    assert [v.correct for v in verdicts] == [True, True, True, False, False]
    assert verdicts[0].semantic_class == "fraction" and verdicts[2].semantic_class == "decimal"
    assert verdicts[4].status == "no_answer"
    assert last_boxed("a \\boxed{\\frac{1}{2}} b \\boxed{x^{2}}") == "x^{2}"
    assert answer_form("\\left( 3, \\frac{\\pi}{2} \\right)") == "tuple/interval"
    assert answer_form("5\\sqrt{2}") == "radical"


def test_code_tasks_grade_only_through_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    from collections import OrderedDict

    from sdbench.sandbox import grading

    calls: list[str] = []
    real = grading.run_tests   # what the tasks' run_tests_remembered runs for a program it has not seen
    monkeypatch.setattr(grading, "_REMEMBERED", OrderedDict())
    monkeypatch.setattr(grading, "run_tests", lambda program, tests, **kw: calls.append(program) or real(
        program, tests, **kw))
    task = task_of("humaneval")
    problem = next(p for p in task.all_problems("test") if p.data["entry_point"] == "sum_of_squares")
    cheats = ["    print('All tests passed')\n    return 0\n",
              "    import sys\n    print('PASSED')\n    sys.exit(0)\n",
              "    import os\n    os._exit(0)\n",
              "import sys\nprint('ok')\nsys.exit(0)\n",
              "    class A:\n        def __eq__(self, o):\n            return True\n    return A()\n"]
    good = ["```python\ndef sum_of_squares(n: int) -> int:\n    return n * (n + 1) * (2 * n + 1) // 6\n```",
            "    total = 0\n    for i in range(n + 1):\n        total += i ** 2\n    return total\n"]
    verdicts = task.verify(problem, [*cheats, problem.reference, *good])
    assert [v.correct for v in verdicts] == [False] * len(cheats) + [True] * 3
    assert len(calls) == len(cheats) + 3     # every completion went to the sandbox, none ran here
    ref, closed_form, loop = verdicts[len(cheats):]
    assert closed_form.functional_class != ref.functional_class   # n < 0 probes: 0 vs the formula's value
    assert loop.functional_class == ref.functional_class          # same behaviour, other code
    assert loop.semantic_class == "for" and ref.semantic_class == "comprehension+sum"


def test_code_extraction_from_chat_and_raw_completions() -> None:
    from sdbench.tasks._code import extract_code, truncate_body

    assert extract_code("Sure:\n```python\ndef f(x):\n    return x\n```\nDone.") == "def f(x):\n    return x"
    assert extract_code("Here it is:\ndef f(x):\n    return x\n\nIt returns x.") == "def f(x):\n    return x\n"
    assert extract_code("[BEGIN]\ndef f(x):\n    return x\n[DONE]").strip() == "def f(x):\n    return x"
    assert truncate_body("    return 1\n\ndef check(c):\n    pass\n") == "    return 1\n"
    task = task_of("humaneval")
    problem = next(p for p in task.all_problems("test") if p.data["entry_point"] == "is_palindrome")
    chat = "The idea: compare with the reverse.\ndef is_palindrome(text: str) -> bool:\n    return text == text[::-1]\n"
    raw = "    return text == text[::-1]\n\n\nif __name__ == '__main__':\n    print(is_palindrome(input()))\n"
    assert [v.correct for v in task.verify(problem, [chat, raw])] == [True, True]


def test_mbpp_prompt_entry_point_and_classes() -> None:
    from sdbench.tasks._code import ast_hash, parses

    task = task_of("mbpp")
    problem = next(p for p in task.all_problems("test") if p.data["entry_point"] == "square_perimeter")
    assert "assert square_perimeter(10)==40" in problem.prompt and problem.data["probes"]
    v = task.verify(problem, ["[BEGIN]\ndef square_perimeter(a):\n  return a + a + a + a\n[DONE]",
                              "def square_perimeter(a):\n  return 40", "import sys\nsys.exit(0)"])
    assert [x.correct for x in v] == [True, False, False]
    a = parses("def f(x):\n    '''doc'''\n    y = x + 1\n    return y")
    b = parses("def f(value: int) -> int:\n    result = value + 1\n    return result")
    c = parses("def f(x):\n    return x + 1")
    assert a and b and c and ast_hash(a, "f") == ast_hash(b, "f") != ast_hash(c, "f")


def test_data_paths_files_directories_and_errors(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (FIXTURES / "gsm8k" / "test.jsonl").read_text().splitlines()]
    clone = tmp_path / "clone" / "main"   # the layout of a git clone of openai/gsm8k
    clone.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), clone / "test-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(rows[:2]), clone / "train-00000-of-00001.parquet")
    task = task_of("gsm8k", tmp_path / "clone")
    assert len(task.all_problems("test")) == len(rows) and len(task.all_problems("train")) == 2
    single = tmp_path / "mine.json"   # a file not named for a split serves `test` only
    single.write_text(json.dumps({k: [r[k] for r in rows] for k in rows[0]}))
    assert len(task_of("gsm8k", single).all_problems("test")) == len(rows)
    with pytest.raises(UserError, match="no data for split 'train'"):
        task_of("gsm8k", single).problems("train", 1)
    bad = tmp_path / "test.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(UserError, match="lack column"):
        task_of("gsm8k", bad).problems("test", 1)
    with pytest.raises(UserError, match="does not exist"):
        task_of("math500", tmp_path / "missing").problems("test", 1)
    with pytest.raises(UserError, match="unknown split"):
        task_of("math500").problems("train", 1)


def test_importing_tasks_does_no_work() -> None:
    code = ("import sys, sdbench.tasks.gsm8k, sdbench.tasks.math500, sdbench.tasks.humaneval, sdbench.tasks.mbpp;"
            "print(sorted(m for m in ('datasets', 'math_verify', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- end to end with a local chat model
def build_chat_model(path: Path) -> Path:
    """A byte-level BPE tokenizer trained on the fixture text, with a chat template, and a tiny Llama."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [line for f in sorted(FIXTURES.rglob("*.jsonl")) for line in f.read_text().splitlines()]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None)
    LlamaForCausalLM(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chat_model(tmp_path_factory.mktemp("chat_model"))


def test_encode_prompt_renders_the_chat_template(chat_model: Path) -> None:
    from sdbench.core.model import encode_prompt, load_tokenizer

    tok = load_tokenizer(str(chat_model))
    text = tok.decode(encode_prompt(tok, "How many clips?"))
    assert text == "<|im_start|>user\nHow many clips?<|im_end|>\n<|im_start|>assistant\n"


def test_teacher_prompts_render_through_the_chat_template_too(chat_model: Path) -> None:
    """Student and teacher contexts go through one encoder (a template mismatch is a known OPSD pitfall)."""
    from sdbench.core.model import encode_prompt, load_tokenizer
    from sdbench.task import load_task

    tok = load_tokenizer(str(chat_model))
    task = load_task("gsm8k", data_path=str(FIXTURES / "gsm8k"))
    problem = task.problems("test", 1)[0]
    teacher = tok.decode(encode_prompt(tok, task.teacher_prompt(problem, [problem.reference])))
    assert teacher.startswith("<|im_start|>user\nHere is a correct solution") and "####" in teacher
    assert teacher.endswith("<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.slow
def test_run_gsm8k_end_to_end_with_a_local_model(chat_model: Path, tmp_path: Path) -> None:
    """The whole command on a local chat model and the shipped fixture. Cells run in worker processes
    (sdbench.runs.contain), so everything they need is in the config: the completion budget is the run's
    `training.max_new_tokens` (a random model never stops: keep rollouts short), the data comes from
    --data-path (nothing reaches the hub)."""
    from sdbench.cli import main
    from sdbench.runs.store import RunStore

    config = tmp_path / "run.yaml"
    config.write_text("evaluation: {splits: [test]}\nstrategies: [base, ground_truth_demo]\n"
                      "training: {steps: 2, max_new_tokens: 12}\nworkers: 1\n")
    out = tmp_path / "run"
    args = ["run", "--model", str(chat_model), "--tasks", "gsm8k", "--data-path", str(FIXTURES / "gsm8k"),
            "--profile", "smoke", "--config", str(config), "--out", str(out)]
    main(args)
    records = list(RunStore(out).records())
    assert sorted(r.strategy.name for r in records) == ["base", "ground_truth_demo"]
    for record in records:
        assert record.status == "ok" and record.model.path == str(chat_model)
        assert (record.train is not None) == (record.strategy.name != "base")
        # gsm8k has no val split: no trajectory, no best-val checkpoint, only the final one
        assert record.trajectory == [] and record.best_val_step is None and list(record.eval) == ["final"]
        problems = record.eval["final"]["test"].problems
        assert len(problems) == 5 and all(p.n == 8 and p.id.startswith("gsm8k/test/") for p in problems)
    summary = json.loads((out / "summary.json").read_text())
    assert {(r["strategy"], r["task"], r["split"], r["checkpoint"]) for r in summary["rows"]} == {
        ("base", "gsm8k", "test", "final"), ("ground_truth_demo", "gsm8k", "test", "final")}
    assert summary["trajectories"] == [] and summary["frontier"] == []
