"""The checkpoint regression gate: a paired comparison of two runs at matched budgets -> GateResult.

Method (docs/ci-gate.md says the same for users):

* Comparability. Baseline and candidate must share the benchmark (name, version, file sha256), the prompt
  (template hash), the grader version and the problem set (the ids actually scored, so two different
  ``--subset`` draws are refused). Anything else (model, sampling, max_tokens, samples per problem) may differ:
  that is what is being compared. A difference named in ``allow_mismatch`` is reported but not refused; with
  ``problems`` allowed, the comparison uses the problems both runs have.
* Per-problem values. At a budget B (average output tokens per problem) each run's value for problem i is the
  per-problem form of its own budget curve (``scaling.per_problem_at_budget``): k* = B / (the run's mean tokens
  per sample over the compared problems), and V_i = p*Maj_i@k + (1-p)*Maj_i@(k+1) with the same mix p for
  every problem. Its mean over problems is exactly the run's accuracy at B. At a sample count k (``ks``, for
  runs without a token axis) it is Maj_i@k itself.
* Paired difference. d_i = candidate_i - baseline_i over the same problems; delta = mean(d). The CI is a seeded
  percentile bootstrap that resamples problems jointly (one index draw serves both runs and every row). The k
  mix is held at the full data's value, so the CI covers which problems were drawn, not the noise in the runs'
  mean token counts.
* Verdict per row: "fail" when delta < -tolerance (percentage points) and the CI excludes 0 (its upper end is
  below 0); "not reached" when either run does not reach the budget (or has fewer than k samples); else "pass".
* Overall: refused (exit 2) on a blocking mismatch; else "fail" (exit 1) when any row fails; else exit 2 when
  any row is not reached; else "pass" (exit 0).
* Minimal detectable drop: MDE = (z_0.975 + z_0.80) x SE ~= 2.80 x SE (for the 95% CI; ``mde_factor``), SE
  the bootstrap standard error of delta. A true drop of that size is flagged (CI excluding 0) in about 80% of repeated evaluations with this
  many problems and samples, if the SE stays as measured; a drop below max(MDE, tolerance) will usually pass.
  When the runs agree on every problem the SE is 0 and no MDE can be measured (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

import numpy as np

from harness.gate_input import GateInput
from harness.scaling import CURVE_METHODS, ProblemCounts, per_problem_at_budget, per_problem_matrix
from harness.subset import describe_dict

MISMATCH_NAMES: tuple[str, ...] = ("benchmark", "prompt", "grader", "problems")
_LABELS = {"grader": "grader version", "problems": "problem set"}
POWER = 0.80
# (z_0.975 + z_0.80) for the default 95% CI; mde_factor() gives it for other confidence levels.
MDE_FACTOR = 1.959963984540054 + 0.8416212335729143
_BOOT_CHUNK = 1000  # resamples drawn per chunk, so memory stays (chunk x problems) for any n_boot

Verdict = Literal["pass", "fail", "not reached"]
Status = Literal["pass", "fail", "not comparable"]
EXIT_CODES: dict[str, int] = {"pass": 0, "fail": 1, "not comparable": 2}


@dataclass(frozen=True)
class GateSettings:
    """What to compare and how. ``budgets``: average output tokens per problem; ``ks``: sample counts (for runs
    without a token axis); at least one of the two. ``tolerance_pp``: allowed drop in percentage points (>= 0).
    ``allow_mismatch``: names from MISMATCH_NAMES that may differ. ``n_boot`` resamples from seed ``seed``."""

    budgets: tuple[float, ...] = ()
    ks: tuple[int, ...] = ()
    tolerance_pp: float = 1.0
    method: str = "maj"
    allow_mismatch: frozenset[str] = frozenset()
    n_boot: int = 10000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not self.budgets and not self.ks:
            raise ValueError("give --budgets (average output tokens per problem) or --k (samples per problem)")
        if any(not b > 0 for b in self.budgets):
            raise ValueError(f"budgets must be > 0 tokens, got {list(self.budgets)}")
        if any(k < 1 for k in self.ks):
            raise ValueError(f"--k values must be >= 1, got {list(self.ks)}")
        if not self.tolerance_pp >= 0:
            raise ValueError(f"--tolerance must be >= 0 percentage points, got {self.tolerance_pp}")
        if self.method not in CURVE_METHODS:
            raise ValueError(f"--method must be one of {', '.join(CURVE_METHODS)}, got {self.method!r}")
        unknown = sorted(set(self.allow_mismatch) - set(MISMATCH_NAMES))
        if unknown:
            raise ValueError(f"--allow-mismatch takes {', '.join(MISMATCH_NAMES)}; got {', '.join(unknown)}")
        if self.n_boot < 100:
            raise ValueError(f"--n-boot must be >= 100 for a usable CI, got {self.n_boot}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"--confidence must be in (0, 1), got {self.confidence}")


@dataclass(frozen=True)
class Mismatch:
    """A comparability setting that differs: ``name`` from MISMATCH_NAMES and both sides' values."""

    name: str
    baseline: str
    candidate: str

    def line(self) -> str:
        """'grader version differs: baseline 0.1.0, candidate 0.2.0'."""
        return f"{_LABELS.get(self.name, self.name)} differs: baseline {self.baseline}, candidate {self.candidate}"


@dataclass(frozen=True)
class GateRow:
    """One compared point. Exactly one of ``budget`` (tokens per problem) and ``k`` is set. Accuracies, delta
    (candidate - baseline), its CI, SE and MDE are fractions; None when not reached (or MDE unmeasurable).
    ``baseline_k``/``candidate_k``: where each run sits on its k axis (k* = budget / mean tokens, or k)."""

    budget: float | None
    k: int | None
    verdict: Verdict
    baseline: float | None = None
    candidate: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    se: float | None = None
    mde: float | None = None
    baseline_k: float | None = None
    candidate_k: float | None = None
    note: str = ""

    @property
    def label(self) -> str:
        """'2000 tokens' or 'k=4'."""
        return f"{self.budget:.0f} tokens" if self.budget is not None else f"k={self.k}"


@dataclass(frozen=True)
class GateResult:
    """The outcome. ``status`` and ``exit_code`` (0 pass, 1 fail, 2 not comparable); ``reason`` one line;
    ``mismatches`` every difference found, allowed ones included (``allowed`` names those); ``problems`` the
    number of problems compared (0 when refused)."""

    status: Status
    reason: str
    rows: tuple[GateRow, ...]
    mismatches: tuple[Mismatch, ...]
    allowed: tuple[str, ...]
    problems: int
    settings: GateSettings
    baseline: GateInput = field(repr=False)
    candidate: GateInput = field(repr=False)

    @property
    def exit_code(self) -> int:
        """0 when it passes, 1 on a regression, 2 when the comparison was not possible."""
        return EXIT_CODES[self.status]

    @property
    def passed(self) -> bool:
        """True only for status "pass"."""
        return self.status == "pass"


def find_mismatches(baseline: GateInput, candidate: GateInput) -> list[Mismatch]:
    """Every comparability setting (MISMATCH_NAMES) on which the two inputs differ, in that order."""
    out = []
    bench = [(gi.benchmark, gi.benchmark_version, gi.benchmark_hash) for gi in (baseline, candidate)]
    if bench[0] != bench[1]:
        out.append(Mismatch("benchmark", *(f"{n} {v} (sha256 {h[:12]})" for n, v, h in bench)))
    if baseline.prompt_hash != candidate.prompt_hash:
        out.append(Mismatch("prompt", *(f"{gi.prompt_name} (hash {gi.prompt_hash[:12] or 'none'})"
                                        for gi in (baseline, candidate))))
    if baseline.grader_version != candidate.grader_version:
        out.append(Mismatch("grader", baseline.grader_version, candidate.grader_version))
    b_ids, c_ids = set(baseline.problem_ids), set(candidate.problem_ids)
    if b_ids != c_ids:
        common = len(b_ids & c_ids)
        out.append(Mismatch("problems", *(f"{len(ids)} problems ({len(ids) - common} not in the other;"
                                          f" {describe_dict(gi.subset)})"
                                          for ids, gi in ((b_ids, baseline), (c_ids, candidate)))))
    return out


def compare(baseline: GateInput, candidate: GateInput, settings: GateSettings) -> GateResult:
    """Compare ``candidate`` with ``baseline`` as the module docstring says. Raises ValueError only through
    bad counts (the settings are validated when made)."""
    mismatches = find_mismatches(baseline, candidate)
    allowed = tuple(m.name for m in mismatches if m.name in settings.allow_mismatch)
    blocking = [m for m in mismatches if m.name not in settings.allow_mismatch]

    def refuse(reason: str) -> GateResult:
        return GateResult("not comparable", reason, (), tuple(mismatches), allowed, 0, settings, baseline, candidate)

    if blocking:
        names = ",".join(m.name for m in blocking)
        return refuse("not comparable: " + "; ".join(m.line() for m in blocking)
                      + f" (pass --allow-mismatch {names} if that is intended)")
    c_ids = set(candidate.problem_ids)
    common = [pid for pid in baseline.problem_ids if pid in c_ids]
    if not common:
        return refuse("not comparable: the runs have no problems in common")
    b_counts, c_counts = _restrict(baseline.counts, common), _restrict(candidate.counts, common)
    pairs: list[tuple[GateRow, np.ndarray | None, np.ndarray | None]] = []
    for budget in settings.budgets:
        pairs.append(_budget_pair(b_counts, c_counts, float(budget), settings.method))
    for k in settings.ks:
        pairs.append(_k_pair(b_counts, c_counts, k, settings.method))
    rows = _paired_rows(pairs, settings)
    return GateResult(_status(rows), _reason(rows, settings), tuple(rows), tuple(mismatches), allowed,
                      len(common), settings, baseline, candidate)


def _restrict(counts: Sequence[ProblemCounts], ids: Sequence[str]) -> list[ProblemCounts]:
    by_id = {pc.problem_id: pc for pc in counts}
    return [by_id[pid] for pid in ids]


def _mean_tokens(counts: Sequence[ProblemCounts]) -> float | None:
    tokens = [pc.mean_tokens for pc in counts]
    return None if any(t is None for t in tokens) else float(np.mean(np.array(tokens, dtype=np.float64)))


def _budget_pair(b_counts: list[ProblemCounts], c_counts: list[ProblemCounts], budget: float,
                 method: str) -> tuple[GateRow, np.ndarray | None, np.ndarray | None]:
    values: list[np.ndarray | None] = []
    positions: list[float | None] = []
    notes: list[str] = []
    for side, counts in (("baseline", b_counts), ("candidate", c_counts)):
        v = per_problem_at_budget(counts, budget, method)
        tokens = _mean_tokens(counts)
        values.append(v)
        positions.append(None if not tokens else budget / tokens)
        if v is None:
            notes.append(f"{side} {_why_not_reached(counts, budget, tokens)}")
    if any("no token axis" in note for note in notes):
        notes.append("compare at a sample count with --k (the token notes are in gate.json)")
    row = GateRow(budget=budget, k=None, verdict="not reached" if notes else "pass", baseline_k=positions[0],
                  candidate_k=positions[1], note="; ".join(notes))
    return row, values[0], values[1]


def _why_not_reached(counts: Sequence[ProblemCounts], budget: float, tokens: float | None) -> str:
    if tokens is None or tokens <= 0:
        return "has no token axis (samples without output token counts)"
    n = min(pc.n for pc in counts)
    if budget < tokens:
        return f"spends {tokens:.0f} tokens on one sample, more than the budget"
    return f"reaches only {n * tokens:.0f} tokens ({n} samples x {tokens:.0f}); sample more or lower the budget"


def _k_pair(b_counts: list[ProblemCounts], c_counts: list[ProblemCounts], k: int,
            method: str) -> tuple[GateRow, np.ndarray | None, np.ndarray | None]:
    values: list[np.ndarray | None] = []
    notes: list[str] = []
    for side, counts in (("baseline", b_counts), ("candidate", c_counts)):
        n = min(pc.n for pc in counts)
        if k > n:
            values.append(None)
            notes.append(f"{side} has only {n} samples per problem")
        else:
            values.append(per_problem_matrix(counts, method, k)[:, k - 1])
    row = GateRow(budget=None, k=k, verdict="not reached" if notes else "pass", baseline_k=float(k),
                  candidate_k=float(k), note="; ".join(notes))
    return row, values[0], values[1]


def _paired_rows(pairs: list[tuple[GateRow, np.ndarray | None, np.ndarray | None]],
                 settings: GateSettings) -> list[GateRow]:
    """Fill accuracy, delta, CI, SE, MDE and verdict of every reached row, from one shared bootstrap."""
    reached = [(i, b, c) for i, (_, b, c) in enumerate(pairs) if b is not None and c is not None]
    rows = [row for row, _, _ in pairs]
    if not reached:
        return rows
    base = np.column_stack([b for _, b, _ in reached])  # (problems, rows)
    cand = np.column_stack([c for _, _, c in reached])
    diffs = cand - base
    boot = paired_bootstrap_means(diffs, settings.n_boot, settings.seed)
    alpha = 1.0 - settings.confidence
    lows, highs = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    ses = boot.std(axis=0, ddof=1)
    factor = mde_factor(settings.confidence)
    for col, (i, _, _) in enumerate(reached):
        delta, low, high, se = (float(x[col]) for x in (diffs.mean(axis=0), lows, highs, ses))
        # 1e-12 absorbs float rounding, so that "no change" never counts as a drop or as a CI below 0.
        fails = -delta * 100 > settings.tolerance_pp + 1e-9 and high < -1e-12
        rows[i] = GateRow(
            budget=rows[i].budget, k=rows[i].k, verdict="fail" if fails else "pass",
            baseline=float(base[:, col].mean()), candidate=float(cand[:, col].mean()), delta=delta,
            ci_low=low, ci_high=high, se=se, mde=factor * se if se > 1e-12 else None,
            baseline_k=rows[i].baseline_k, candidate_k=rows[i].candidate_k,
            note="" if se > 1e-12 else "the runs agree on every problem here; no noise to measure an MDE from")
    return rows


def mde_factor(confidence: float, power: float = POWER) -> float:
    """z_(1 - alpha/2) + z_power with alpha = 1 - confidence: 2.80 for a 95% CI and 80% power."""
    normal = NormalDist()
    return normal.inv_cdf(1 - (1 - confidence) / 2) + normal.inv_cdf(power)


def paired_bootstrap_means(diffs: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap means of paired differences: ``diffs`` (problems, columns) -> (n_boot, columns).

    Each resample draws problems with replacement from ``default_rng(seed)`` and applies the same draw to
    every column, so all rows of one gate see the same resampled problem sets. Raises ValueError on no rows.
    """
    if diffs.ndim != 2 or diffs.shape[0] == 0:
        raise ValueError("need a (problems, columns) array with at least one problem")
    rng = np.random.default_rng(seed)
    n = diffs.shape[0]
    out = np.empty((n_boot, diffs.shape[1]))
    for start in range(0, n_boot, _BOOT_CHUNK):
        stop = min(n_boot, start + _BOOT_CHUNK)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = diffs[idx].mean(axis=1)
    return out


def _status(rows: Sequence[GateRow]) -> Status:
    if any(r.verdict == "fail" for r in rows):
        return "fail"
    if any(r.verdict == "not reached" for r in rows):
        return "not comparable"
    return "pass"


def _reason(rows: Sequence[GateRow], settings: GateSettings) -> str:
    failed = [r for r in rows if r.verdict == "fail"]
    if failed:
        parts = [f"{r.label}: {100 * (r.delta or 0):+.1f} pp [{100 * (r.ci_low or 0):+.1f}, "
                 f"{100 * (r.ci_high or 0):+.1f}]" for r in failed]
        return (f"regression beyond the {settings.tolerance_pp:g} pp tolerance with the CI excluding 0 at "
                + "; ".join(parts))
    missing = [r for r in rows if r.verdict == "not reached"]
    if missing:
        return "not comparable: " + "; ".join(f"{r.label}: {r.note}" for r in missing)
    return f"no drop beyond {settings.tolerance_pp:g} pp with the CI excluding 0 at {len(rows)} point(s)"
