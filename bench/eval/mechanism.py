"""The mechanism meter (issue 29): does training amplify the base model's large correct modes, or keep their ratios?

    from sdbench.eval.mechanism import measure_arm
    out = measure_arm(cells)           # cells: one arm's records (any objects with .seed, .trajectory, .train)
    out["slope"], out["null_slope"], out["steps"][0]["dominant_share"]

The seed paper (arXiv 2606.26091) says the self-distillation fixed point tilts the base policy by the expected
pointwise mutual information between rollout and demo, pi*(y|x) ∝ pi(y|x)·exp(E_c[pmi(y; c | x)]), so modes
that are already large gain mass, while KL-regularized RL, pi*(y|x) ∝ pi(y|x)·exp(r(y)/beta), keeps the
ratios among equally correct answers. From the per-problem correct-class histograms of the val points
(`ProblemCounts.correct_classes`, step 0 = the base model) this module measures, per arm and step:

- dominant share: the share of the correct samples in the base's most frequent correct class. The dominant
  class of seed i's problem is chosen on the step-0 samples of the *other* seeds (all seeds hold the same
  base model, sampled independently), so the step-0 share has no winner's-curse bias; with one seed, its own.
  Problems without a correct sample at a step are left out of that step's mean.
- effective classes: exp of the entropy of the correct-class distribution (plug-in; 0 when no sample is
  correct). The same n at every step, so steps and arms compare at equal sample size.
- the amplification slope b: over the correct classes k of problem p that the base produces,
      log(s_t,k / s_0,k) = a_p + b · log s_0,k        (problem fixed effects a_p, pooled OLS)
  b > 0: large modes grow at the expense of small ones (compounding); b = 0: ratios kept (RL's optimum).

Unbiased under ratio preservation. A naive fit on one step-0 sample is biased (regression to the mean: the
noise of log ŝ_0 sits on both sides). Here the step-0 samples are split at random into two halves A and B
(a multivariate-hypergeometric split of the counts: the same law as splitting the samples themselves): A
alone gives the regressor x_k = log ŝ_A,k and the class set K_p (classes with a correct sample in A); B gives
the baseline. The step-t counts and B's, restricted to K_p, are thinned (hypergeometric, without
replacement) to the same total m = min(N_B, N_t). Under ratio preservation both are then Multinomial(m, s)
with the same s given m, independent of A: exchangeable, so E[y_k | A, m] = 0 for
y_k = log ŝ_t,k − log ŝ_B,k and the OLS slope has expectation exactly 0, whatever the smoothing. The fit
averages `splits` random splits (their sums of squares pooled), which lowers the split's own noise.
Smoothing / minimum counts (stated): ŝ_B and ŝ_t add 1/2 to each class of K_p (Jeffreys), ŝ_A is raw (every
class of K_p has a count >= 1 there); a problem enters a step's fit when |K_p| >= 2 and m >= 2, and a slope
is reported when at least MIN_PROBLEMS = 5 problems enter it (fewer: None; no interval from a handful).
Measurement error in x attenuates b toward 0 under amplification (a conservative test), never its sign.

Difference between two arms (`slope_difference`): arm a's last-step slope minus arm b's, from the same
per-(seed, problem) sums each arm's slope came from; its bootstrap resamples the problems jointly (the arms
share the val problems) and the seeds within each arm (independent training runs), as the paired deltas of
`sdbench.eval.intervals` do. Checked by simulation too: two ratio-keeping arms cover 0, SD against RL lies above.
Both intervals are conservative at a quick run's sizes: resampling the two crossed factors counts the
seed-by-problem noise twice (Owen 2007, the pigeonhole bootstrap); in the toy of tests/test_mechanism.py the
mean half-width is 1.48 x (one arm) and 1.67 x (a difference) the estimate's 1.96 sd over repetitions. Training
seeds differ in more than sampling noise in a real run, so the seed level is kept.

Base-vs-base null slope: the same estimator with the step-t sample replaced by another seed's step-0 sample
(seed i+1's base samples, an independent draw of the same policy at the same n), beside every arm.

CI: a hierarchical bootstrap: seeds resampled within the arm and problems resampled (the same draw for every
seed: the val problems are shared), each replicate weighting the per-(seed, problem) sums by the product of
their multiplicities; 95% percentile interval. Why not `sdbench.eval.intervals` (the t-interval over seed
means used for rows and deltas): the slope is a ratio of pooled sums (Sxy / Sxx over seeds x problems), not a
mean of per-seed values, and a per-seed slope from ~64 problems is too noisy to be averaged unweighted. The
bootstrap's coverage at a quick run's sizes is checked by simulation (tests/test_mechanism.py: >= 93% for the
SD update's sign, the RL update's 0 and the base-vs-base null).

Demo log (`demo_correlation`): over the train problems of the per-step log (`StepLog.demos`), the partial
correlation between a class's share of the demos drawn and its share gain (last appearance vs first),
controlling for its initial share (log) and the problem (fixed effects); and the share of conditioned
rollouts that share a class with their demo.

numpy only; tests: tests/test_mechanism.py (the analytic toy of the issue's Done-when).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Hist = Mapping[str, int]
B_DEFAULT, SPLITS_DEFAULT, LEVEL, MIN_PROBLEMS = 1000, 8, 0.95, 5


# ---------------------------------------------------------------- per-problem quantities
def effective_classes(hist: Hist) -> float:
    """exp(entropy) of a correct-class histogram; 0 for an empty one."""
    counts = np.array([v for v in hist.values() if v > 0], dtype=float)
    if counts.sum() == 0:
        return 0.0
    p = counts / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def dominant(hists: Sequence[Hist]) -> str | None:
    """The most frequent class of the pooled histograms (ties: the smallest id); None when all are empty."""
    pooled: dict[str, int] = {}
    for h in hists:
        for k, v in h.items():
            pooled[k] = pooled.get(k, 0) + v
    pooled = {k: v for k, v in pooled.items() if v > 0}
    return min(pooled, key=lambda k: (-pooled[k], k)) if pooled else None


def fe_sums(x: Sequence[np.ndarray], y: Sequence[np.ndarray]) -> tuple[float, float]:
    """(Sxx, Sxy) of one fixed-effect group (deviations from the group means): slope = sum Sxy / sum Sxx."""
    sxx = sxy = 0.0
    for xi, yi in zip(x, y, strict=True):
        dx = xi - xi.mean()
        sxx += float(dx @ dx)
        sxy += float(dx @ (yi - yi.mean()))
    return sxx, sxy


def exact_slope(initial: Sequence[np.ndarray], later: Sequence[np.ndarray]) -> float:
    """The slope with problem fixed effects from exact shares (no sampling): log(later/initial) on log initial."""
    x = [np.log(np.asarray(s0, float)) for s0 in initial]
    y = [np.log(np.asarray(st, float)) - xi for st, xi in zip(later, x, strict=True)]
    sxx, sxy = fe_sums(x, y)
    return sxy / sxx


def _thin(counts: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    return counts if counts.sum() == m else rng.multivariate_hypergeometric(counts, m)


def problem_sums(n0: int, step0: Hist, target: Hist, rng: np.random.Generator, splits: int) -> tuple[float, float]:
    """(Sxx, Sxy) of one (seed, problem) at one step, summed over `splits` random half-splits of step 0.

    step0: the base's correct-class histogram from n0 samples; target: the step-t (or another seed's
    step-0) correct-class histogram. (0, 0) where the minimum-count rule leaves the problem out."""
    ids = sorted(step0)
    c0 = np.array([step0[k] for k in ids] + [n0 - sum(step0.values())], dtype=np.int64)   # + incorrect bin
    ct_all = np.array([target.get(k, 0) for k in ids], dtype=np.int64)
    sxx = sxy = 0.0
    for _ in range(splits):
        a = rng.multivariate_hypergeometric(c0, n0 // 2)[:-1]
        b = c0[:-1] - a
        keep = a > 0
        if keep.sum() < 2:
            continue
        a, b, ct = a[keep], b[keep], ct_all[keep]
        m = int(min(b.sum(), ct.sum()))
        if m < 2:
            continue
        b, ct = _thin(b, m, rng), _thin(ct, m, rng)
        half = 0.5 * len(a)
        x = np.log(a / a.sum())
        y = np.log((ct + 0.5) / (m + half)) - np.log((b + 0.5) / (m + half))
        dx = x - x.mean()
        sxx += float(dx @ dx)
        sxy += float(dx @ (y - y.mean()))
    return sxx, sxy


# ---------------------------------------------------------------- hierarchical bootstrap
def _multiplicities(size: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, size, size=(draws, size))
    return np.stack([np.bincount(row, minlength=size) for row in idx]).astype(float)


def ratio_ci(num: np.ndarray, den: np.ndarray, *, draws: int = B_DEFAULT, seed: int = 0) -> dict[str, float] | None:
    """sum(num) / sum(den) over a [seeds x problems] table, with a seeds-and-problems bootstrap 95% interval.
    Means are ratios too (num = value x mask, den = mask). None when den sums to 0."""
    if den.sum() <= 0:
        return None
    rng = np.random.default_rng(seed)
    ms, mp = _multiplicities(num.shape[0], draws, rng), _multiplicities(num.shape[1], draws, rng)
    top, bottom = _replicate(num, ms, mp), _replicate(den, ms, mp)
    ok = bottom > 0
    return _stat(float(num.sum() / den.sum()), top[ok] / bottom[ok])


def _replicate(table: np.ndarray, ms: np.ndarray, mp: np.ndarray) -> np.ndarray:
    """The sum of a [seeds x problems] table in each bootstrap draw (seed and problem multiplicities)."""
    return np.einsum("bs,sp,bp->b", ms, table, mp)


def _stat(mean: float, reps: np.ndarray) -> dict[str, float]:
    lo, hi = np.quantile(reps, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]) if len(reps) else (math.nan, math.nan)
    return {"mean": mean, "ci_low": float(lo), "ci_high": float(hi)}


# ---------------------------------------------------------------- one arm
def _points(cell: Any) -> dict[int, dict[str, tuple[int, Hist]]]:
    """step -> problem id -> (n, correct-class histogram), for points that carry histograms."""
    out: dict[int, dict[str, tuple[int, Hist]]] = {}
    for point in getattr(cell, "trajectory", None) or []:
        problems = {p.id: (p.n, p.correct_classes) for p in point.problems if p.correct_classes is not None}
        if problems:
            out[point.step] = problems
    return out


def measure_arm(cells: Sequence[Any], *, draws: int = B_DEFAULT, splits: int = SPLITS_DEFAULT,
                seed: int = 0, keep_sums: bool = False) -> dict[str, Any] | None:
    """The mechanism of one (task, arm) over its seeds; None when no cell carries step-0 histograms.

    {"seeds", "problems", "steps": [{"step", "dominant_share", "effective_classes", "slope"}], "slope" (at
    the last step), "null_slope", "demo": demo_correlation(...)}; each statistic {mean, ci_low, ci_high}.
    keep_sums: also "sums", the last step's per-(seed, problem) table behind "slope" (None where the slope is
    None), for `slope_difference`; not JSON: drop it before writing."""
    cells = sorted((c for c in cells if 0 in _points(c)), key=lambda c: c.seed)
    if not cells:
        return None
    points = [_points(c) for c in cells]
    problems = sorted(set.intersection(*(set(p[0]) for p in points)))
    steps = sorted(set.intersection(*(set(p) for p in points)))
    S, P = len(cells), len(problems)
    base = [[p[0][q][1] for q in problems] for p in points]
    dom = [[dominant([base[j][i] for j in range(S) if j != s] or [base[s][i]]) for i in range(P)] for s in range(S)]
    rng = np.random.default_rng(seed)
    last: dict[str, Any] = {}

    def slope_table(target: list[list[Hist]]) -> dict[str, float] | None:
        sums = np.array([[problem_sums(points[s][0][q][0], base[s][i], target[s][i], rng, splits)
                          for i, q in enumerate(problems)] for s in range(S)])
        if int((sums[..., 0].sum(axis=0) > 0).sum()) < MIN_PROBLEMS:
            last.clear()
            return None
        last.update(problems=problems, num=sums[..., 1], den=sums[..., 0])
        return ratio_ci(sums[..., 1], sums[..., 0], draws=draws, seed=seed)

    rows = []
    for t in steps:
        hists = [[points[s][t][q][1] for q in problems] for s in range(S)]
        share = np.zeros((S, P))
        has = np.zeros((S, P))
        eff = np.zeros((S, P))
        for s in range(S):
            for i in range(P):
                h = hists[s][i]
                c = sum(h.values())
                eff[s, i] = effective_classes(h)
                if c > 0 and dom[s][i] is not None:
                    share[s, i], has[s, i] = h.get(dom[s][i], 0) / c, 1.0
        rows.append({"step": t, "dominant_share": ratio_ci(share * has, has, draws=draws, seed=seed),
                     "effective_classes": ratio_ci(eff, np.ones((S, P)), draws=draws, seed=seed),
                     "slope": slope_table(hists) if t > 0 else None})
    sums = dict(last) if len(rows) > 1 and rows[-1]["slope"] is not None else None
    null = slope_table([base[(s + 1) % S] for s in range(S)]) if S >= 2 else None
    logs = [getattr(getattr(c, "train", None), "log", None) or [] for c in cells]
    out = {"seeds": [c.seed for c in cells], "problems": P, "steps": rows,
           "slope": rows[-1]["slope"] if len(rows) > 1 else None, "null_slope": null,
           "demo": demo_correlation(logs)}
    return {**out, "sums": sums} if keep_sums else out


def slope_difference(a: Mapping[str, Any], b: Mapping[str, Any], *, draws: int = B_DEFAULT,
                     seed: int = 0) -> dict[str, float] | None:
    """Arm a's amplification slope minus arm b's, {mean, ci_low, ci_high}, from their `measure_arm(...,
    keep_sums=True)["sums"]`: over the problems both measured, problems resampled jointly and seeds within
    each arm. None where either arm has no slope or fewer than MIN_PROBLEMS problems enter both fits."""
    if not a or not b:
        return None
    common = sorted(set(a["problems"]) & set(b["problems"]))
    cols = [([list(arm["problems"]).index(q) for q in common]) for arm in (a, b)]
    (na, da), (nb, db) = ((arm["num"][:, c], arm["den"][:, c]) for arm, c in zip((a, b), cols, strict=True))
    if int(((da.sum(axis=0) > 0) & (db.sum(axis=0) > 0)).sum()) < MIN_PROBLEMS:
        return None
    rng = np.random.default_rng(seed)
    mp = _multiplicities(len(common), draws, rng)
    ms_a, ms_b = _multiplicities(na.shape[0], draws, rng), _multiplicities(nb.shape[0], draws, rng)
    ta, ba = _replicate(na, ms_a, mp), _replicate(da, ms_a, mp)
    tb, bb = _replicate(nb, ms_b, mp), _replicate(db, ms_b, mp)
    ok = (ba > 0) & (bb > 0)
    return _stat(float(na.sum() / da.sum() - nb.sum() / db.sum()), ta[ok] / ba[ok] - tb[ok] / bb[ok])


# ---------------------------------------------------------------- the demo log
def demo_correlation(logs: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, Any] | None:
    """From each seed's per-step log (entries with "demos": problem -> {demos, conditioned, correct, same}):
    the partial correlation of a class's demo share with its share gain given its log initial share and the
    problem, and the same-class rate. None when no step drew a demo."""
    same = conditioned = 0
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    zs: list[np.ndarray] = []
    for log in logs:
        seen: dict[str, list[Mapping[str, Any]]] = {}
        for entry in log:
            for problem, d in (entry.get("demos") or {}).items():
                seen.setdefault(problem, []).append(d)
                same += int(d["same"])
                conditioned += sum(d["conditioned"].values())
        for apps in seen.values():
            first, last = apps[0]["correct"], apps[-1]["correct"]
            ids = sorted(first)
            if len(apps) < 2 or len(ids) < 2 or not sum(last.values()):
                continue
            drawn: dict[str, int] = {}
            for d in apps[:-1]:
                for k, v in d["demos"].items():
                    drawn[k] = drawn.get(k, 0) + v
            total = sum(drawn.values()) or 1
            half = 0.5 * len(ids)
            f0 = np.array([first[k] for k in ids], float)
            f1 = np.array([last.get(k, 0) for k in ids], float)
            z = np.log(f0 / f0.sum())
            xs.append(np.array([drawn.get(k, 0) / total for k in ids]))
            ys.append(np.log((f1 + 0.5) / (f1.sum() + half)) - np.log((f0 + 0.5) / (f0.sum() + half)))
            zs.append(z)
    if not conditioned:
        return None
    out: dict[str, Any] = {"same_class_rate": same / conditioned, "partial_r": None, "classes": 0, "problems": len(xs)}
    if len(xs) >= 2:
        rx, ry = _residuals(xs, zs), _residuals(ys, zs)
        den = math.sqrt(float(rx @ rx) * float(ry @ ry))
        out.update(classes=len(rx), partial_r=float(rx @ ry) / den if den > 0 else None)
    return out


def _residuals(values: Sequence[np.ndarray], controls: Sequence[np.ndarray]) -> np.ndarray:
    """Residuals of `values` after problem fixed effects and a common slope on `controls` (within OLS)."""
    dv = [v - v.mean() for v in values]
    dz = [z - z.mean() for z in controls]
    zz = sum(float(z @ z) for z in dz)
    beta = sum(float(z @ v) for z, v in zip(dz, dv, strict=True)) / zz if zz > 0 else 0.0
    return np.concatenate([v - beta * z for v, z in zip(dv, dz, strict=True)])
