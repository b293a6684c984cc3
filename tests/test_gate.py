"""The gate library: per-problem values at a budget, paired comparison, verdicts, MDE, gate inputs, outputs.

Runs are built from ProblemCounts directly, so every expected delta is computed exactly from the definitions.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.gate import (
    MDE_FACTOR,
    GateSettings,
    compare,
    find_mismatches,
    mde_factor,
    paired_bootstrap_means,
)
from harness.gate_input import GateInput, read_gate_input, write_gate_input
from harness.gate_report import junit_xml, markdown, result_json, result_to_dict, terminal_table
from harness.scaling import ProblemCounts, accuracy_at_budgets, maj_curve, per_problem_at_budget

# ------------------------------------------------------------------------------------------------ helpers


def pc(pid: str, sizes: tuple[int, ...], correct: int | None, *, abstain: int = 0,
       tokens: float | None = 100.0) -> ProblemCounts:
    """One problem: answer clusters of ``sizes``, cluster ``correct`` right (None: none), ``abstain`` no-answers."""
    n_correct = 0 if correct is None else sizes[correct]
    return ProblemCounts(pid, sum(sizes) + abstain, sizes, correct, abstain, n_correct, tokens, 0)


def gi(counts: list[ProblemCounts], **over: object) -> GateInput:
    values: dict[str, object] = {
        "source": "run", "model": "m", "benchmark": "aime24", "benchmark_version": "aime24-v1",
        "benchmark_hash": "ab" * 32, "prompt_name": "default", "prompt_hash": "cd" * 32, "grader_version": "0.1.0",
        "counts": tuple(counts)}
    values.update(over)
    return GateInput(**values)  # type: ignore[arg-type]


def settings(**over: object) -> GateSettings:
    values: dict[str, object] = {"budgets": (100.0,), "n_boot": 2000, "seed": 0}
    values.update(over)
    return GateSettings(**values)  # type: ignore[arg-type]


def random_counts(rng: np.random.Generator, problems: int, n: int) -> list[ProblemCounts]:
    out = []
    for i in range(problems):
        keys = rng.integers(0, 4, size=n)  # 0..2 answers, 3 = no answer
        sizes = tuple(int(s) for s in np.bincount(keys[keys < 3], minlength=3) if s > 0)
        correct = None if not sizes or rng.random() < 0.2 else int(rng.integers(0, len(sizes)))
        out.append(pc(f"p{i}", sizes, correct, abstain=int(np.sum(keys == 3)), tokens=float(rng.integers(50, 150))))
    return out


# ------------------------------------------------------------------------------- scaling.per_problem_at_budget


@pytest.mark.parametrize("method", ["maj", "pass", "mean"])
def test_per_problem_values_average_to_the_runs_budget_accuracy(method: str) -> None:
    counts = random_counts(np.random.default_rng(3), problems=25, n=6)
    mean_tokens = float(np.mean([c.mean_tokens for c in counts]))
    budgets = [mean_tokens * k for k in (1, 2.5, 4, 6)] + [0.5 * mean_tokens, 6.2 * mean_tokens]
    points = accuracy_at_budgets(counts, budgets, method, n_boot=10)
    for budget, point in zip(budgets, points):
        values = per_problem_at_budget(counts, budget, method)
        if not point.reached:
            assert values is None
            continue
        assert values is not None and values.shape == (25,)
        assert values.mean() == pytest.approx(point.accuracy, abs=1e-12)


def test_per_problem_value_is_the_k_mix_of_each_problem() -> None:
    counts = [pc("a", (4, 1, 1, 1, 1), 0), pc("b", (4, 4), 1)]
    values = per_problem_at_budget(counts, 250.0)  # k* = 2.5: half Maj@2, half Maj@3
    assert values is not None
    for row, c in zip(values, counts):
        assert row == pytest.approx(0.5 * maj_curve(c)[1] + 0.5 * maj_curve(c)[2], abs=1e-15)


def test_per_problem_not_reached_without_tokens_or_outside_the_curve() -> None:
    assert per_problem_at_budget([pc("a", (2,), 0, tokens=None)], 100.0) is None
    assert per_problem_at_budget([pc("a", (2,), 0)], 99.0) is None
    assert per_problem_at_budget([pc("a", (2,), 0)], 201.0) is None
    with pytest.raises(ValueError, match="method"):
        per_problem_at_budget([pc("a", (2,), 0)], 100.0, "best")


# ------------------------------------------------------------------------------------------------ verdicts


def test_identical_runs_pass_with_zero_delta() -> None:
    counts = random_counts(np.random.default_rng(0), problems=30, n=8)
    m = float(np.mean([c.mean_tokens for c in counts]))
    result = compare(gi(counts), gi(counts, model="other"), settings(budgets=(1.5 * m, 4 * m), ks=(1, 8)))
    assert result.status == "pass" and result.exit_code == 0 and result.passed
    for row in result.rows:
        assert row.verdict == "pass" and row.delta == 0 and row.ci_low == 0 and row.ci_high == 0
        assert row.baseline == row.candidate and row.mde is None and "agree on every problem" in row.note


def test_candidate_worse_on_some_problems_fails_with_the_exact_delta() -> None:
    base = [replace(c, mean_tokens=100.0) for c in random_counts(np.random.default_rng(1), problems=40, n=8)]
    base = [pc(c.problem_id, (6, 2), 0) if i < 8 else c for i, c in enumerate(base)]  # 8 problems solved well
    worse = [replace(c, correct_cluster=None, n_correct=0) if i < 8 else c for i, c in enumerate(base)]
    budgets = (100.0, 350.0, 800.0)
    result = compare(gi(base), gi(worse), settings(budgets=budgets))
    assert result.status == "fail" and result.exit_code == 1 and "regression" in result.reason
    for row, budget in zip(result.rows, budgets):
        before = per_problem_at_budget(base, budget)
        assert before is not None
        assert row.delta == pytest.approx(-before[:8].sum() / 40, abs=1e-12)
        assert row.verdict == "fail" and row.ci_high is not None and row.ci_high < 0


def test_only_the_affected_budgets_fail() -> None:
    # Same Maj@1 (4 of 8 correct), but the candidate's wrong answers agree with each other: its majority vote
    # ties at k = 8 where the baseline's wins. Ten of thirty problems change.
    base = [pc(f"p{i}", (4, 1, 1, 1, 1), 0) for i in range(30)]
    cand = [pc(f"p{i}", (4, 4), 0) if i < 10 else base[i] for i in range(30)]
    result = compare(gi(base), gi(cand), settings(budgets=(100.0, 800.0)))
    at_1, at_8 = result.rows
    assert at_1.verdict == "pass" and at_1.delta == 0
    assert at_8.verdict == "fail" and at_8.delta == pytest.approx(10 * (0.5 - 1.0) / 30, abs=1e-12)
    assert result.exit_code == 1 and "800 tokens" in result.reason and "100 tokens" not in result.reason


def test_same_answers_at_twice_the_tokens_fail_at_matched_budgets() -> None:
    # Identical answers, but each candidate sample costs 200 tokens: at 800 tokens/problem the baseline votes
    # over 8 samples and the candidate over 4. Maj@2 = Maj@1, so at 200 tokens nothing changes.
    base = [pc(f"p{i}", (4, 1, 1, 1, 1), 0) for i in range(30)]
    cand = [replace(c, mean_tokens=200.0) for c in base]
    result = compare(gi(base), gi(cand), settings(budgets=(200.0, 800.0), ks=(8,)))
    at_200, at_800, at_k8 = result.rows
    assert at_200.verdict == "pass" and at_200.delta == pytest.approx(0, abs=1e-12)
    assert (at_800.baseline_k, at_800.candidate_k) == (8.0, 4.0)
    assert at_800.delta == pytest.approx(maj_curve(base[0])[3] - 1.0, abs=1e-12) and at_800.verdict == "fail"
    assert at_k8.verdict == "pass" and at_k8.delta == 0  # at equal k they are the same run


def _small_drop_runs() -> tuple[list[ProblemCounts], list[ProblemCounts]]:
    # 200 problems at Maj@1 = 0.5; on 20 of them the candidate has 9 of 20 correct: delta = -0.5 pp exactly.
    base = [pc(f"p{i}", (10, 10), 0) for i in range(200)]
    cand = [pc(f"p{i}", (9, 11), 0) if i % 10 == 0 else base[i] for i in range(200)]
    return base, cand


def test_small_drop_inside_the_tolerance_passes_even_with_a_ci_below_zero() -> None:
    base, cand = _small_drop_runs()
    (row,) = compare(gi(base), gi(cand), settings(budgets=(), ks=(1,), tolerance_pp=1.0)).rows
    assert row.delta == pytest.approx(-0.005, abs=1e-12)
    assert row.ci_high is not None and row.ci_high < 0  # a real drop, but inside the tolerance
    assert row.verdict == "pass"
    tight = compare(gi(base), gi(cand), settings(budgets=(), ks=(1,), tolerance_pp=0.25))
    assert tight.rows[0].verdict == "fail" and tight.exit_code == 1


def test_drop_beyond_the_tolerance_with_a_ci_touching_zero_passes() -> None:
    base = [pc(f"p{i}", (1,), 0 if i < 10 else None) for i in range(30)]
    cand = [pc("p0", (1,), None)] + base[1:]  # one problem lost: -3.3 pp, but one problem is noise
    (row,) = compare(gi(base), gi(cand), settings(budgets=(), ks=(1,))).rows
    assert row.delta == pytest.approx(-1 / 30) and row.ci_high == 0 and row.verdict == "pass"


def test_exact_tolerance_boundary_passes() -> None:
    base = [pc(f"p{i}", (1,), 0) for i in range(100)]
    cand = [pc("p0", (1,), None)] + base[1:]
    row = compare(gi(base), gi(cand), settings(budgets=(), ks=(1,), tolerance_pp=1.0)).rows[0]
    assert row.delta == pytest.approx(-0.01) and row.verdict == "pass"  # a drop of exactly 1 pp is allowed


# ----------------------------------------------------------------------------------------- comparability


@pytest.mark.parametrize("field, value, name, text", [
    ("benchmark_version", "aime24-v2", "benchmark", "benchmark differs: baseline aime24 aime24-v1"),
    ("benchmark_hash", "ef" * 32, "benchmark", "(sha256 efefefefefef)"),
    ("grader_version", "0.2.0", "grader", "grader version differs: baseline 0.1.0, candidate 0.2.0"),
    ("prompt_hash", "00" * 32, "prompt", "prompt differs: baseline default (hash cdcdcdcdcdcd)"),
])
def test_mismatched_settings_are_not_comparable(field: str, value: str, name: str, text: str) -> None:
    counts = random_counts(np.random.default_rng(2), problems=10, n=4)
    result = compare(gi(counts), gi(counts, **{field: value}), settings())
    assert result.status == "not comparable" and result.exit_code == 2 and result.rows == ()
    assert text in result.reason and f"--allow-mismatch {name}" in result.reason
    assert "\n" not in result.reason
    allowed = compare(gi(counts), gi(counts, **{field: value}), settings(allow_mismatch=frozenset({name})))
    assert allowed.status == "pass" and allowed.allowed == (name,)


def test_different_subsets_are_refused_and_allowed_ones_use_common_problems() -> None:
    counts = random_counts(np.random.default_rng(4), problems=12, n=4)
    sub_a = {"n": 8, "seed": 1, "benchmark_hash": "ab" * 32, "total": 12, "strata_fields": ["contest"]}
    a, b = gi(counts[:8], subset=sub_a), gi(counts[4:], subset={**sub_a, "seed": 2})
    result = compare(a, b, settings())
    assert result.exit_code == 2
    assert "problem set differs: baseline 8 problems (4 not in the other; subset 8 of 12 problems, seed 1" in result.reason
    allowed = compare(a, b, settings(budgets=(), ks=(1, 4), allow_mismatch=frozenset({"problems"})))
    assert allowed.status == "pass" and allowed.problems == 4
    disjoint = compare(gi(counts[:6]), gi(counts[6:]), settings(allow_mismatch=frozenset({"problems"})))
    assert disjoint.exit_code == 2 and "no problems in common" in disjoint.reason


def test_all_mismatches_are_listed_in_order() -> None:
    counts = [pc("a", (1,), 0)]
    other = gi(counts[:0] + [pc("b", (1,), 0)], benchmark="math500", grader_version="9", prompt_hash="")
    assert [m.name for m in find_mismatches(gi(counts), other)] == ["benchmark", "prompt", "grader", "problems"]


def test_not_reached_is_exit_2_unless_another_point_regresses() -> None:
    base = [pc(f"p{i}", (2,), 0) for i in range(30)]
    worse = [pc(f"p{i}", (2,), None) for i in range(30)]
    only_missing = compare(gi(base), gi(base), settings(budgets=(100.0, 10_000.0)))
    assert only_missing.exit_code == 2 and "reaches only 200 tokens (2 samples x 100)" in only_missing.reason
    assert compare(gi(base), gi(worse), settings(budgets=(100.0, 10_000.0))).exit_code == 1
    below = compare(gi(base), gi(base), settings(budgets=(50.0,)))
    assert "spends 100 tokens on one sample" in below.rows[0].note
    no_axis = compare(gi(base), gi([replace(c, mean_tokens=None) for c in base]), settings(ks=(1, 3)))
    budget_row, k1, k3 = no_axis.rows
    assert "candidate has no token axis" in budget_row.note and "--k" in budget_row.note
    assert k1.verdict == "pass" and k3.verdict == "not reached" and "only 2 samples" in k3.note


def test_settings_are_validated() -> None:
    for bad, message in [({"budgets": (), "ks": ()}, "--budgets"), ({"tolerance_pp": -1.0}, "--tolerance"),
                         ({"allow_mismatch": frozenset({"model"})}, "--allow-mismatch takes"),
                         ({"method": "best"}, "--method"), ({"ks": (0,)}, "--k"), ({"n_boot": 10}, "--n-boot")]:
        with pytest.raises(ValueError, match=message):
            settings(**bad)


# ---------------------------------------------------------------------------------------- bootstrap, MDE


def test_bootstrap_is_seeded_joint_and_gives_the_standard_error() -> None:
    rng = np.random.default_rng(5)
    diffs = np.column_stack([rng.normal(0, 0.3, 400), np.zeros(400)])
    boot = paired_bootstrap_means(diffs, 4000, seed=9)
    assert boot.shape == (4000, 2) and np.array_equal(boot, paired_bootstrap_means(diffs, 4000, seed=9))
    assert not np.array_equal(boot, paired_bootstrap_means(diffs, 4000, seed=10))
    assert np.all(boot[:, 1] == 0)
    assert boot[:, 0].std() == pytest.approx(diffs[:, 0].std() / math.sqrt(400), rel=0.06)


def test_mde_is_2_8_standard_errors() -> None:
    assert mde_factor(0.95) == pytest.approx(2.8016, abs=1e-4) == MDE_FACTOR
    assert mde_factor(0.90) == pytest.approx(1.6449 + 0.8416, abs=1e-4)
    base = [pc(f"p{i}", (1,), 0 if i % 2 else None) for i in range(60)]
    cand = [pc(f"p{i}", (1,), 0 if i % 3 else None) for i in range(60)]
    (row,) = compare(gi(base), gi(cand), settings(budgets=(), ks=(1,))).rows
    assert row.se is not None and row.mde == pytest.approx(MDE_FACTOR * row.se)
    d = np.array([(i % 3 != 0) - (i % 2 != 0) for i in range(60)], dtype=float)
    assert row.se == pytest.approx(d.std() / math.sqrt(60), rel=0.05)


# ---------------------------------------------------------------------------------------- inputs, outputs


def test_gate_input_round_trips_exactly(tmp_path: Path) -> None:
    counts = random_counts(np.random.default_rng(6), problems=7, n=5) + [pc("none", (), None, abstain=3)]
    original = gi(counts, subset={"n": 8, "seed": 0, "benchmark_hash": "x", "total": 30, "strata_fields": []},
                  token_note=None)
    path = write_gate_input(original, tmp_path / "deep" / "gate-input.json")
    back = read_gate_input(path)
    assert back.counts == original.counts and back.source == str(path)
    assert replace(back, source="run") == original
    assert json.loads(path.read_text())["exported_from"] == "run"


def test_gate_input_rejects_reports_and_broken_files(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"points": [], "manifest": {}}))
    with pytest.raises(ValueError, match="is a report.json: it has no per-problem counts"):
        read_gate_input(report)
    path = write_gate_input(gi([pc("a", (2, 1), 0)]), tmp_path / "g.json")
    data = json.loads(path.read_text())
    data["problems"][0]["n_correct"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="malformed gate input: problem 'a': n_correct 1"):
        read_gate_input(path)
    del data["problems"][0]["abstain"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="missing field 'abstain'"):
        read_gate_input(path)


def test_outputs_carry_the_numbers_and_escape_names() -> None:
    base = [pc(f"p{i}", (2,), 0) for i in range(20)]
    worse = [pc(f"p{i}", (2,), None if i < 10 else 0) for i in range(20)]
    result = compare(gi(base, model="a|b <x>"), gi(worse), settings(budgets=(100.0, 1000.0)))
    data = result_to_dict(result)
    assert data["passed"] is False and data["exit_code"] == 1 and data["status"] == "fail"
    row = data["budgets"][0]
    assert {"budget", "baseline", "candidate", "delta", "ci_low", "ci_high", "verdict"} <= set(row)
    assert (row["budget"], row["baseline"], row["candidate"], row["delta"]) == (100.0, 1.0, 0.5, -0.5)
    assert data["budgets"][1]["verdict"] == "not reached" and data["mde"] == row["mde"]
    assert data["settings"]["tolerance_pp"] == 1.0 and "2.80 x SE" in data["settings"]["mde_rule"]
    assert json.loads(result_json(result)) == json.loads(json.dumps(data))
    md = markdown(result)
    assert "a\\|b &lt;x&gt;" in md and "| 100 tokens | 100.0% | 50.0% |" in md
    assert "-50.0 [" in terminal_table(result)
    suite = ET.fromstring(junit_xml(result)).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "1")
    refused = compare(gi(base), gi(base, grader_version="2"), settings())
    root = ET.fromstring(junit_xml(refused))
    assert root.get("errors") == "1" and "grader version differs" in (root.findtext(".//error") or "")
