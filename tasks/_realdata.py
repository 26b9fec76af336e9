"""Shared machinery of the real-data tasks (gsm8k, math500, humaneval, mbpp): loading rows and prompts.

Rows come from the Hugging Face hub through `datasets.load_dataset(<canonical id>)` when no local
path is given (that needs network), or from a local copy in the dataset's exact schema
(`--data-path` → the task's `data_path=` argument):

- a JSON / JSONL / parquet file: its split is the one its name starts with (`train.jsonl`,
  `test-00000-of-00001.parquet`); a file named otherwise serves the task's `test` split only;
- a directory: per split, the files whose names start with the split name, searched recursively
  (a `git clone` of the hub repository works: `main/train-00000-of-00001.parquet`, preferring the
  task's hub config folder), or a `datasets.save_to_disk` directory (`dataset_dict.json`).

Nothing is read at import or construction time; rows load on first use and are cached per split.
Problems are a seeded permutation of a split's rows, so `problems(split, k)` is a prefix of
`problems(split, n)` for k < n, and asking for more problems than the split has returns them all.
Run the tests with `pytest tests/test_real_tasks.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

from sdbench.errors import UserError
from sdbench.task import Problem, check_split, stable_rng

FIXTURES = Path(__file__).parent / "fixtures"
FILE_TYPES = (".jsonl", ".json", ".parquet")
Row = dict[str, Any]


class RealDataTask:
    """Base of the real-data tasks: rows per split from the hub or a local copy, prompts with demos.

    Subclasses set the hub coordinates, the columns a row must have, `make_problem` (row → Problem)
    and `verify`; teacher prompts are shared so every real-data task conditions its teacher alike.
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    max_new_tokens: ClassVar[int]
    hub_id: ClassVar[str]
    hub_config: ClassVar[str | None] = None
    columns: ClassVar[tuple[str, ...]]
    default_model: ClassVar[str] = "Qwen/Qwen2.5-0.5B-Instruct"
    solution_word: ClassVar[str] = "solution"
    reads_data: ClassVar[bool] = True   # `load_task(name, data_path=...)` passes a local copy

    def __init__(self, data_path: str | Path | None = None) -> None:
        self.data_path = None if data_path is None else Path(data_path).expanduser()
        self._rows: dict[str, list[Row]] = {}

    # ---------------------------------------------------------------- data
    def rows(self, split: str) -> list[Row]:
        """Every row of `split`, in the dataset's order (cached)."""
        check_split(self, split)  # type: ignore[arg-type]
        if split not in self._rows:
            rows = self._load_local(split) if self.data_path is not None else self._load_hub(split)
            self._check_schema(rows, split)
            self._rows[split] = rows
        return self._rows[split]

    def _load_hub(self, split: str) -> list[Row]:
        import datasets

        try:
            data = datasets.load_dataset(self.hub_id, self.hub_config, split=split)
        except Exception as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise UserError(f"task {self.name}: cannot load {self.hub_id!r} split {split!r} from the hub: {first}",
                            "pass --data-path to a local copy (JSON/JSONL/parquet file or directory in the "
                            "dataset's schema)") from exc
        return [dict(r) for r in data]

    def _load_local(self, split: str) -> list[Row]:
        path = self.data_path
        assert path is not None
        if not path.exists():
            raise UserError(f"task {self.name}: data path {str(path)!r} does not exist",
                            "pass a JSON/JSONL/parquet file or a directory to --data-path")
        if path.is_dir() and (path / "dataset_dict.json").is_file():
            import datasets

            saved = datasets.load_from_disk(str(path))
            if split not in saved:
                raise UserError(f"task {self.name}: {str(path)!r} has no split {split!r}",
                                f"it holds: {', '.join(saved)}")
            return [dict(r) for r in saved[split]]
        files = self._files_for(path, split)
        if not files:
            where = f"no file under {str(path)!r} named {split}.jsonl/.json/.parquet or {split}-*"
            if path.is_file():
                where = f"{path.name!r} is not named for split {split!r} (a file serves its name's split, else test)"
            raise UserError(f"task {self.name}: no data for split {split!r}: {where}",
                            "name files by split (train.jsonl, test.jsonl, ...) or drop that split from the run")
        return [row for file in files for row in read_rows(file)]

    def _files_for(self, path: Path, split: str) -> list[Path]:
        if path.is_file():
            named = split_of(path.name, self.splits)
            return [path] if named == split or (named is None and split == _unnamed_split(self.splits)) else []
        found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix in FILE_TYPES
                       and split_of(f.name, self.splits) == split)
        if self.hub_config:   # a clone of the hub repo holds one folder per config: prefer ours
            preferred = [f for f in found if self.hub_config in f.relative_to(path).parts[:-1]]
            found = preferred or found
        return found

    def _check_schema(self, rows: list[Row], split: str) -> None:
        if not rows:
            raise UserError(f"task {self.name}: split {split!r} is empty", "check the data path")
        missing = [c for c in self.columns if c not in rows[0]]
        if missing:
            raise UserError(f"task {self.name}: rows of split {split!r} lack column(s) {', '.join(missing)}",
                            f"expected the schema of {self.hub_id}: {', '.join(self.columns)}")

    # ---------------------------------------------------------------- problems
    def problems(self, split: str, count: int, seed: int = 0) -> list[Problem]:
        rows = self.rows(split)
        order = list(range(len(rows)))
        stable_rng(self.name, split, seed).shuffle(order)
        return [self.make_problem(split, i, rows[i]) for i in order[:count]]

    def all_problems(self, split: str) -> list[Problem]:
        """Every problem of `split`, in dataset order (for grading generations made elsewhere)."""
        return [self.make_problem(split, i, row) for i, row in enumerate(self.rows(split))]

    def make_problem(self, split: str, index: int, row: Row) -> Problem:
        raise NotImplementedError

    # ---------------------------------------------------------------- teacher contexts
    def teacher_prompt(self, problem: Problem, demos: Sequence[str]) -> str:
        """Demonstrations first, then the question exactly as the student sees it."""
        return self._demo_block(demos) + f"Now solve the following problem yourself.\n\n{problem.prompt}"

    def demo_only_prompt(self, problem: Problem, demos: Sequence[str]) -> str:
        """The demonstrations without the question (the reference-only context)."""
        return self._demo_block(demos) + f"Write a {self.solution_word} in the same way."

    def _demo_block(self, demos: Sequence[str]) -> str:
        if not demos:
            return ""
        if len(demos) == 1:
            return f"Here is a correct {self.solution_word} to a problem:\n\n{_clean(demos[0])}\n\n"
        body = "\n\n".join(f"{self.solution_word.capitalize()} {i}:\n{_clean(d)}" for i, d in enumerate(demos, 1))
        return f"Here are correct {self.solution_word}s to a problem:\n\n{body}\n\n"

    def base_model(self) -> str:
        """A hub id (only usable with network); tests and offline users pass --model PATH."""
        return self.default_model


def _clean(demo: str) -> str:
    """A demonstration without surrounding blank lines; indentation kept (code bodies need it)."""
    return demo.strip("\n").rstrip()


def split_of(filename: str, splits: Iterable[str]) -> str | None:
    """The split a data file's name declares: `test.jsonl`, `train-00000-of-00001.parquet`, else None."""
    for split in sorted(splits, key=len, reverse=True):
        if re.match(rf"{re.escape(split)}(?:[.\-_]|$)", filename):
            return split
    return None


def _unnamed_split(splits: tuple[str, ...]) -> str:
    return "test" if "test" in splits else splits[0]


def read_rows(path: Path) -> list[Row]:
    """Rows of one JSON (list of rows, or columns → lists), JSONL or parquet file."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        text = path.read_text()
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        data = json.loads(text)
    except (OSError, ValueError) as exc:  # json.JSONDecodeError and pyarrow's errors are ValueErrors
        raise UserError(f"cannot read data file {str(path)!r}: {exc}".splitlines()[0],
                        "pass a JSON, JSONL or parquet file in the dataset's schema") from exc
    if isinstance(data, Mapping) and data and all(isinstance(v, list) for v in data.values()):
        keys = list(data)
        return [dict(zip(keys, values, strict=True)) for values in zip(*data.values(), strict=True)]
    if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
        return [dict(r) for r in data]
    raise UserError(f"data file {str(path)!r} holds neither a list of rows nor columns",
                    "write one JSON object per row (JSONL) in the dataset's schema")


# ---------------------------------------------------------------- numbers (math tasks)
NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+")


def normalize_number(text: str) -> str | None:
    """'1,234.50' → '1234.5', '-3.0' → '-3', '$7' → '7'; None when `text` is no number."""
    match = NUMBER.search(text.replace("$", ""))
    if match is None:
        return None
    try:
        value = Decimal(match.group().replace(",", ""))
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def numbers_in(text: str) -> list[str]:
    """Every number in `text`, normalized, in order."""
    return [n for n in (normalize_number(m.group()) for m in NUMBER.finditer(text)) if n is not None]


def computed_quantities(solution: str, question: str) -> list[str]:
    """The quantities a worked solution computes, as a sorted set: a canonical form of its method.

    The numbers right after '=' (results of steps, including GSM8K's <<a*b=c>> annotations); a
    solution without '=' falls back to its numbers that the question does not state. Sorted, so
    the same steps in another order are the same solution."""
    after_eq = [n for m in re.finditer(r"=\s*\\?\$?\s*(-?[\d.,]*\d)", solution)
                if (n := normalize_number(m.group(1))) is not None]
    if not after_eq:
        given = set(numbers_in(question))
        after_eq = [n for n in numbers_in(solution) if n not in given]
    return sorted(set(after_eq), key=lambda n: (Decimal(n), n))
