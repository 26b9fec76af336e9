"""lm-eval bridge: export sdbench tasks as lm-evaluation-harness tasks, run them, regrade with sdbench.

    sdbench export lm-eval --tasks graph_paths --out lm_tasks/ --samples 16 --problems 100
    lm-eval run --model hf --model_args pretrained=MODEL_DIR --include_path lm_tasks/ \
        --tasks sdbench_graph_paths --limit 10 --log_samples --output_path out/
    sdbench eval --model MODEL_DIR --harness lm-eval --tasks graph_paths      # the same, from sdbench

An export writes, per task, `sdbench_<task>.yaml` (`sdbench_<task>_<split>` for other splits) and
`sdbench_<task>.jsonl` (the problems: id, rendered prompt text, reference, and which sdbench task,
split and list they come from), plus one `utils.py` whose `process_results` grades a document's
completions with the sdbench task's own verifier and returns sdbench's pass@k (k = 1, 2, 4, ... n),
distinct correct solutions and semantic classes. The YAML asks lm-eval for `repeats = n` sampled
completions per problem (do_sample, temperature 1, no top-k/top-p truncation, until EOS or the
task's max_new_tokens) and keeps all of them (`take_first_k` with k = n, filter name `keep-all`).

The folder is relocatable: no path in it is absolute. lm-eval hands `dataset_kwargs: data_files`
to `datasets.load_dataset`, which resolves a relative path against the working directory, not the
YAML; so the YAML names its documents with `custom_dataset: !function utils.docs` (lm-eval imports
utils.py from the YAML's own folder) and `dataset_kwargs: {sdbench_docs: <file name>}`, and
`utils.docs` opens that file beside itself.

lm-eval's `--log_samples` writes `samples_<lm task>_<time>.jsonl`, one JSON record per document
(and filter): doc_id, doc, target, arguments, resps, filtered_resps, filter, metrics, doc_hash,
prompt_hash, target_hash and the metric values (built in lm_eval/evaluator.py, written by
`save_results_samples` in lm_eval/loggers/evaluation_tracker.py). `sdbench.eval.verify.logged_sample`
reads one: the doc is ours (its `id` is the sdbench problem id) and every completion in
`filtered_resps` is one sample; `sdbench verify` grades such files (with that reader) as well as its
own format.

Grading looks the problem up by id in the sdbench task's own (split, count, seed 0) list, so
verifier data never round-trips through JSON. Prompts: when a tokenizer is at hand (--model, else
the task's shipped base model), the text is sdbench's exact encoding decoded back (BOS or chat
template included; lm-eval then adds no BOS of its own) — checked to re-encode to the same ids,
else the plain prompt is written and lm-eval's own BOS handling applies.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sdbench.errors import UserError
from sdbench.eval.verify import FILTER, completions_of, logged_sample
from sdbench.task import load_task

UTILS = '''"""Hooks of sdbench tasks exported to lm-eval (written by `sdbench export lm-eval`).

`docs` loads a task's documents from the JSONL beside this file (so the folder can be moved);
`process_results` grades each document's completions with the sdbench task's verifier. Needs
sdbench importable.
"""

from pathlib import Path

from sdbench.lmeval_bridge import load_docs, process_results  # noqa: F401

HERE = Path(__file__).resolve().parent


def docs(sdbench_docs: str, **metadata):
    """lm-eval's custom_dataset hook (called with the task's metadata too): the documents beside this file."""
    return load_docs(HERE / sdbench_docs)
'''


def task_name(task: str, split: str) -> str:
    """The lm-eval task name of an exported sdbench task (prefixed: lm-eval has its own gsm8k)."""
    return f"sdbench_{task}" if split == "test" else f"sdbench_{task}_{split}"


def metric_names(n: int) -> list[str]:
    from sdbench.eval.passk import k_values

    return [f"pass@{k}" for k in k_values(n)] + ["distinct_correct", "semantic_classes"]


@functools.cache
def _problems(task: str, split: str, count: int, data_path: str | None) -> tuple[Any, dict[str, Any]]:
    """(task instance, problems by id): the list an export was made from, rebuilt in the grader."""
    instance = load_task(task, data_path or None)
    return instance, {p.id: p for p in instance.problems(split, count, seed=0)}


def grade(doc: dict[str, Any], completions: Sequence[str]) -> dict[str, float]:
    """sdbench's per-problem metrics for one exported document and its n completions."""
    from sdbench.eval.passk import k_values, pass_at_k
    from sdbench.results.counts import counts_from_verdicts

    task, problems = _problems(doc["sdbench_task"], doc["sdbench_split"], int(doc["sdbench_count"]),
                               doc["sdbench_data_path"] or None)
    counts = counts_from_verdicts(doc["id"], task.verify(problems[doc["id"]], list(completions)))
    out = {f"pass@{k}": float(pass_at_k(counts.n, counts.c, k)) for k in k_values(counts.n)}
    out["distinct_correct"] = float(counts.distinct_correct)
    out["semantic_classes"] = float(counts.semantic_classes)
    return out


def load_docs(path: Path) -> Any:
    """An export's documents as the {"test": Dataset} lm-eval's custom_dataset hook returns.

    Built in memory, not through load_dataset("json"): nothing is cached or fetched.
    """
    import datasets

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, float]:
    """lm-eval's per-document hook (the exported utils.py re-exports it)."""
    return grade(doc, completions_of(results))


def _render(tokenizer: Any, prompt: str) -> str | None:
    """sdbench's prompt encoding as text lm-eval re-encodes to the same ids, or None."""
    from sdbench.core.model import encode_prompt

    ids = encode_prompt(tokenizer, prompt)
    text = tokenizer.decode(ids, skip_special_tokens=False)
    bos = getattr(tokenizer, "bos_token", None)
    # lm-eval encodes without special tokens when the text starts with BOS, else with the defaults
    again = tokenizer(text, add_special_tokens=False)["input_ids"] if bos and text.startswith(bos) \
        else tokenizer(text)["input_ids"]
    return text if list(again) == list(ids) else None


def _tokenizer_for(task: Any, model: str | None) -> Any:
    from sdbench.core.model import load_tokenizer

    if model is not None:
        return load_tokenizer(model)
    base = task.base_model()
    # a shipped base model renders prompts; a hub id (real-data tasks) is not fetched for an export
    return load_tokenizer(base) if base and (Path(base) / "config.json").is_file() else None


def export(tasks: Sequence[str], out: Path, *, samples: int = 16, problems: int = 100, split: str = "test",
           model: str | None = None, data_path: str | None = None) -> list[str]:
    """Write lm-eval task YAMLs + JSONL data + utils.py for `tasks` into `out`; returns the task names."""
    import yaml

    from sdbench.task import check_split

    if samples < 1 or samples & (samples - 1):
        raise UserError(f"--samples {samples} is not a power of two", "pass 8, 16, 32, ... (pass@k up to k = n)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "utils.py").write_text(UTILS)
    names = []
    for name in tasks:
        task = load_task(name, data_path or None)
        check_split(task, split)
        tokenizer = _tokenizer_for(task, model)
        lm_name = task_name(name, split)
        data = out / f"{lm_name}.jsonl"
        rendered = 0
        with data.open("w") as fh:
            for p in task.problems(split, problems, seed=0):
                text = _render(tokenizer, p.prompt) if tokenizer is not None else None
                rendered += text is not None
                fh.write(json.dumps({"id": p.id, "text": text if text is not None else p.prompt,
                                     "prompt": p.prompt, "reference": p.reference, "sdbench_task": name,
                                     "sdbench_split": split, "sdbench_count": problems,
                                     "sdbench_data_path": data_path or ""}) + "\n")
        config = {
            # the documents by file name, relative to the YAML: see the module docstring
            "task": lm_name, "custom_dataset": "@DOCS@", "dataset_kwargs": {"sdbench_docs": data.name},
            "test_split": "test",
            "output_type": "generate_until", "doc_to_text": "text", "doc_to_target": "reference",
            "process_results": "@PROCESS_RESULTS@", "repeats": samples, "num_fewshot": 0,
            "generation_kwargs": {"until": [], "do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0,
                                  "max_gen_toks": int(task.max_new_tokens)},
            "filter_list": [{"name": FILTER, "filter": [{"function": "take_first_k", "k": samples}]}],
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                            for m in metric_names(samples)],
            "metadata": {"version": 1.0, "sdbench_task": name, "split": split, "problems": problems,
                         "prompts": "sdbench-encoded" if rendered else "plain"},
        }
        text = yaml.safe_dump(config, sort_keys=False)
        text = text.replace("'@PROCESS_RESULTS@'", "!function utils.process_results")
        text = text.replace("'@DOCS@'", "!function utils.docs")
        (out / f"{lm_name}.yaml").write_text(f"# sdbench task {name!r} ({split}) for lm-eval; "
                                             "written by `sdbench export lm-eval`\n" + text)
        names.append(lm_name)
    return names


def regrade(logged: Sequence[dict[str, Any]]) -> dict[str, float]:
    """sdbench's metrics (sdbench.eval) over lm-eval's logged samples: the cross-check of its numbers."""
    from sdbench.eval.metrics import problem_metrics
    from sdbench.results.counts import counts_from_verdicts

    results = []
    for entry in logged:
        doc, completions = logged_sample(entry)
        task, problems = _problems(doc["sdbench_task"], doc["sdbench_split"], int(doc["sdbench_count"]),
                                   doc["sdbench_data_path"] or None)
        # entropy None: no policy scored lm-eval's samples (the metrics below leave it out)
        results.append(counts_from_verdicts(doc["id"], task.verify(problems[doc["id"]], completions)))
    metrics = problem_metrics(results)
    wanted = metric_names(min(r.n for r in results))
    return {k: float(metrics[k].mean()) for k in wanted}


def _no_custom_kwargs_warning(record: Any) -> bool:
    """Drops lm-eval's per-load warning that a custom_dataset task takes --metadata kwargs (ours take none)."""
    return "Custom kwargs can be passed" not in record.getMessage()


def run_lm_eval(model: str, tasks: Sequence[str], workdir: Path, *, samples: int = 16, problems: int = 20,
                split: str = "test", seed: int = 0, device: str = "cpu", batch_size: int = 64,
                data_path: str | None = None) -> dict[str, dict[str, Any]]:
    """Export, run lm-eval's `hf` model in-process, and regrade its samples with sdbench.

    Returns {sdbench task: {"lm_eval": {metric: value}, "sdbench": {metric: value}, "problems": count}}.
    """
    import logging

    try:
        from lm_eval import simple_evaluate
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise UserError("the lm-eval harness is not installed", "pip install 'lm-eval>=0.4.5'") from exc
    names = export(tasks, workdir, samples=samples, problems=problems, split=split, model=model,
                   data_path=data_path)
    for logger in ("lm-eval", "lm_eval"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    logging.getLogger("lm_eval.api.task").addFilter(_no_custom_kwargs_warning)   # once: addFilter dedups
    manager = TaskManager(include_path=str(workdir), include_defaults=False)
    out = simple_evaluate(model="hf", model_args={"pretrained": model, "dtype": "float32"}, tasks=names,
                          task_manager=manager, device=device, batch_size=batch_size, log_samples=True,
                          random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)
    report: dict[str, dict[str, Any]] = {}
    for sd_name, lm_name in zip(tasks, names, strict=True):
        raw = out["results"][lm_name]
        lm = {m: float(raw[f"{m},{FILTER}"]) for m in metric_names(samples)}
        report[sd_name] = {"lm_eval_task": lm_name, "problems": len(out["samples"][lm_name]),
                           "lm_eval": lm, "sdbench": regrade(out["samples"][lm_name])}
    return report
