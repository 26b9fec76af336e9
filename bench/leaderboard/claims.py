"""The README's "What it shows" and the leaderboard's per-task summary, generated from the results.

    from sdbench.leaderboard.claims import claims, what_it_shows
    text = what_it_shows(load_all(Path("leaderboard/results")))     # markdown, one paragraph per task

Every sentence is a paired difference from the results' summary with its seed-aware 95% CI
(`sdbench.eval.intervals`): "higher" / "lower" only where the CI excludes 0, otherwise "no detectable
difference". The paper's method (`single_sampled_demo`) is compared with the base model and with RL (`grpo`),
at the final step (test, n = 64: pass@1, pass@16, distinct correct), at matched KL from the base (val:
distinct correct and pass@1 where each seed reaches the budget) and, where the results carry it, at matched
val pass@1 (iso-accuracy, `sdbench.runs.compare`: distinct correct and KL from the base where each seed's
val pass@1 reaches the level; every level both arms reach). tests/leaderboard/test_committed_leaderboard.py
holds the README to this text, so a quoted number cannot drift from the results. Where the results measured
the mechanism (issue 29), each task also gets every arm's amplification slope read against 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sdbench.config import DEFAULT_TASKS, PAPER_BASELINE
from sdbench.leaderboard.schema import Results, Stat
from sdbench.presentation.text import MAIN_SPLIT

SD, BASE, RL = PAPER_BASELINE, "base", "grpo"
FINAL_METRICS = (("pass@1", "pass@1"), ("pass@16", "pass@16"), ("distinct_correct", "distinct correct"))
KL_LEVELS = (0.1, 0.5)
KL_METRICS = (("distinct_correct", "distinct correct"), ("pass@1", "pass@1"))
# at equal accuracy: which arm keeps more distinct correct answers, and which moved further from the base
ISO_METRICS = (("distinct_correct", "distinct correct"), ("kl_from_base", "KL from base"))


@dataclass(frozen=True)
class Claim:
    task: str
    where: str           # "final step (test)" / "KL 0.1 (val; ...)" / "val pass@1 0.57 (iso-accuracy; ...)"
    metric: str
    other: str
    stat: Stat           # SD - other

    @property
    def direction(self) -> str:
        if self.stat.ci_low > 0:
            return "higher"
        if self.stat.ci_high < 0:
            return "lower"
        return "no detectable difference"

    def text(self) -> str:
        ci = f"{self.stat.mean:+.3f} [{self.stat.ci_low:+.3f}, {self.stat.ci_high:+.3f}]"
        if self.direction == "no detectable difference":
            return f"{self.metric}: no detectable difference from {self.other} ({ci})"
        return f"{self.metric} {self.direction} than {self.other} ({ci})"


def _newest(results: Sequence[Results]) -> dict[tuple[str, str | None], Results]:
    """(task, real model or None) -> the submission on its newest task version (the headline's choice)."""
    from sdbench.leaderboard.views import base_model, task_version, version_key

    out: dict[tuple[str, str | None], tuple[tuple[int, str], Results]] = {}
    for doc in results:
        for task in {r.task for r in doc.summary.rows}:
            key, where = version_key(task_version(doc, task)), (task, base_model(doc))
            if where not in out or key >= out[where][0]:
                out[where] = (key, doc)
    return {t: d for t, (_, d) in out.items()}


def claims(results: Sequence[Results]) -> list[Claim]:
    out = []
    for (task, model), doc in _ordered(results):
        label = task if model is None else f"{task} (real pretrained model {model})"
        # pass@16 at n = 64 on the testbeds; on a real model's n = 16, pass@8 (headline.REAL_MODEL_K)
        final_metrics = FINAL_METRICS if model is None else (
            (("pass@1", "pass@1"), ("pass@8", "pass@8"), ("distinct_correct", "distinct correct")))
        deltas = {(d.strategy, d.baseline): d for d in doc.summary.deltas
                  if d.task == task and d.split == MAIN_SPLIT and d.checkpoint == "final"}
        for other in (BASE, RL):
            d = deltas.get((SD, other)) or deltas.get((other, SD))
            if d is None:
                continue
            sign = 1 if d.strategy == SD else -1
            for key, name in final_metrics:
                if key in d.metrics:
                    out.append(Claim(label, "final step (test)", name, other, _signed(d.metrics[key], sign)))
        total = len(doc.provenance.seeds)
        matched = {(m.strategy, m.baseline, m.match, m.level): m for m in doc.summary.matched_deltas
                   if m.task == task}
        iso_levels = sorted({level for (s, b, match, level) in matched if (s, b, match) == (RL, SD, "pass@1")})
        for match, levels, metrics in (("kl_from_base", KL_LEVELS, KL_METRICS), ("pass@1", iso_levels, ISO_METRICS)):
            for level in levels:
                m = matched.get((RL, SD, match, level))
                if m is None:
                    continue
                reached = f"seeds reaching it: {SD} {m.n_seeds_baseline}/{total}, {RL} {m.n_seeds}/{total}"
                where = (f"KL {level:g} (val; {reached})" if match == "kl_from_base"
                         else f"val pass@1 {level:g} (iso-accuracy, val; {reached})")
                out += [Claim(label, where, name, RL, _signed(m.metrics[key], -1))
                        for key, name in metrics if key in m.metrics]
    return out


def _signed(stat: Stat, sign: int) -> Stat:
    if sign == 1:
        return stat
    return Stat(mean=-stat.mean, ci_low=-stat.ci_high, ci_high=-stat.ci_low)


def mechanism_claims(results: Sequence[Results]) -> dict[str, list[str]]:
    """task label -> one phrase per arm whose results measured mode amplification (`summary.mechanism`, schema 3
    records): the amplification slope at the last val step with its 95% CI, read against 0 (ratios kept, the
    KL-regularized RL fixed point) and beside the base-vs-base null, and the dominant class's share of correct
    val samples at step 0 and at the end; where measured, the slope minus the paper's baseline's (`slope_vs`:
    "lower" reads "amplifies less than student demos"). Results without the measurement give no phrase."""
    from sdbench.runs.mechanism_report import arms_of

    out: dict[str, list[str]] = {}
    for (task, model), doc in _ordered(results):
        label = task if model is None else f"{task} (real pretrained model {model})"
        for arm in arms_of(doc.summary, task):
            slope = arm.get("slope")
            if not slope:
                continue
            ci = f"{slope['mean']:+.3f} [{slope['ci_low']:+.3f}, {slope['ci_high']:+.3f}]"
            verdict = ("above 0" if slope["ci_low"] > 0 else "below 0" if slope["ci_high"] < 0
                       else "no detectable difference from 0")
            shares = [row["dominant_share"] for row in (arm["steps"][0], arm["steps"][-1]) if row.get("dominant_share")]
            moved = (f", dominant share {shares[0]['mean']:.2f} → {shares[1]['mean']:.2f}" if len(shares) == 2
                     else "")
            null = arm.get("null_slope")
            null_text = f"; null {null['mean']:+.3f}" if null else ""
            vs = arm.get("slope_vs")
            vs_text = ""
            if vs:
                word = ("higher" if vs["ci_low"] > 0 else "lower" if vs["ci_high"] < 0
                        else "no detectable difference")
                vs_text = (f"; against `{vs['strategy']}`'s slope: {word} ({vs['mean']:+.3f} "
                           f"[{vs['ci_low']:+.3f}, {vs['ci_high']:+.3f}])")
            out.setdefault(label, []).append(f"`{arm['strategy']}` {verdict} ({ci}{null_text}{moved}){vs_text}")
    return out


def winners(results: Sequence[Results]) -> dict[str, list[str]]:
    """task label -> the arms that win pass@1 without losing pass@k, against the base at the final step (test):
    a paired Δ pass@1 whose 95% CI lies above 0 and a Δ pass@k (k = 16 at the testbeds' n = 64, 8 at a real
    model's n = 16) whose CI does not lie below 0. An empty list: no arm does."""
    out: dict[str, list[str]] = {}
    for (task, model), doc in _ordered(results):
        label = task if model is None else f"{task} (real pretrained model {model})"
        k = 16 if model is None else 8
        found = []
        for d in doc.summary.deltas:
            if (d.task, d.baseline, d.split, d.checkpoint) != (task, BASE, MAIN_SPLIT, "final"):
                continue
            p1, pk = d.metrics.get("pass@1"), d.metrics.get(f"pass@{k}")
            if p1 is not None and pk is not None and p1.ci_low > 0 and pk.ci_high >= 0:
                found.append((-p1.mean, f"`{d.strategy}` (pass@1 {p1.mean:+.3f} [{p1.ci_low:+.3f}, {p1.ci_high:+.3f}],"
                                        f" pass@{k} {pk.mean:+.3f} [{pk.ci_low:+.3f}, {pk.ci_high:+.3f}])"))
        if any(d.task == task and d.baseline == BASE for d in doc.summary.deltas):
            out[label] = [text for _, text in sorted(found)]
    return out


def _ordered(results: Sequence[Results]) -> list[tuple[tuple[str, str | None], Results]]:
    order = {name: i for i, name in enumerate(DEFAULT_TASKS)}
    return sorted(_newest(results).items(),
                  key=lambda kv: (kv[0][1] is not None, kv[0][1] or "", order.get(kv[0][0], len(order)), kv[0][0]))


def what_it_shows(results: Sequence[Results]) -> str:
    """Markdown: per task, the SD arm against base and RL at the final step, at matched KL and at matched val
    pass@1."""
    lines = [f"Generated by `sdbench.leaderboard.claims` from the committed results: `{SD}` (EMA teacher) minus "
             "the other arm, paired on the same problems, mean and seed-aware 95% CI (seeds resampled per arm, "
             "problems jointly). \"Higher\" / \"lower\" only where the CI excludes 0."]
    by_task: dict[str, dict[str, list[Claim]]] = {}
    for c in claims(results):
        by_task.setdefault(c.task, {}).setdefault(c.where, []).append(c)
    mechanism, won = mechanism_claims(results), winners(results)
    for task in dict.fromkeys([*by_task, *mechanism, *won]):
        lines += ["", f"**{task}**:"]
        for where, items in by_task.get(task, {}).items():
            lines.append(f"- {where}: " + "; ".join(c.text() for c in items) + ".")
        if task in won:
            k = 16 if "(real pretrained model" not in task else 8
            lines.append(f"- win pass@1 without losing pass@{k} (against base, final step, test; Δ pass@1 CI above 0, "
                         f"Δ pass@{k} CI not below 0): " + ("; ".join(won[task]) or "none") + ".")
        if task in mechanism:
            lines.append("- mechanism (val, amplification slope at the last val step, 95% CI; > 0: large modes "
                         "grow, 0: ratios kept): " + "; ".join(mechanism[task]) + ".")
    return "\n".join(lines)
