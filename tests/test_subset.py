"""Stratified subsets: largest-remainder allocation, a draw fixed by (benchmark hash, N, seed), and `run --subset`."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.benchmarks import load_benchmark
from harness.run import RunError, RunRequest, run_sampling
from harness.store import RunStore
from harness.subset import allocate, describe_dict, draw_subset, strata_fields
from harness.types import Problem, SamplingSpec
from tests.fakes import fake_factory

MATH500 = load_benchmark("math500")
AIME = load_benchmark("aime24")


def test_largest_remainder_gives_the_extra_seats_to_the_largest_fractions() -> None:
    # quotas 10 x (5, 3, 2) / 10 = 5, 3, 2 exactly; for n = 4: 2.0, 1.2, 0.8 -> floors 2, 1, 0, extra to c (0.8)
    assert allocate({"a": 5, "b": 3, "c": 2}, 4, {"a": "1", "b": "2", "c": "3"}) == {"a": 2, "b": 1, "c": 1}
    # n = 5: 2.5, 1.5, 1.0 -> floors 2, 1, 1 and one extra seat; a and b tie, the tie key decides
    assert allocate({"a": 5, "b": 3, "c": 2}, 5, {"a": "2", "b": "1", "c": "0"}) == {"a": 2, "b": 2, "c": 1}
    assert allocate({"a": 5, "b": 3, "c": 2}, 5, {"a": "1", "b": "2", "c": "0"}) == {"a": 3, "b": 1, "c": 1}
    with pytest.raises(ValueError):
        allocate({"a": 1}, 2, {"a": ""})


@given(st.lists(st.integers(1, 40), min_size=1, max_size=12), st.data())
def test_allocation_is_proportional_within_one(sizes: list[int], data: st.DataObject) -> None:
    total = sum(sizes)
    n = data.draw(st.integers(0, total))
    names = {f"s{i}": size for i, size in enumerate(sizes)}
    got = allocate(names, n, {s: s for s in names})
    assert sum(got.values()) == n
    for s, size in names.items():
        quota = n * size / total
        assert int(quota) <= got[s] <= min(size, int(quota) + 1)


def test_strata_are_subject_x_level_for_math500_and_contest_for_aime() -> None:
    assert strata_fields(MATH500.problems) == ("subject", "level")
    assert strata_fields(AIME.problems) == ("contest",)
    assert strata_fields([Problem("a", "x", "q", "1")]) == ()


def test_math500_subset_is_proportional_by_subject_and_level() -> None:
    picked, spec = draw_subset(MATH500.problems, 50, 1, MATH500.sha256)
    assert len(picked) == 50 and spec.n == 50 and spec.total == 500
    strata = Counter((p.metadata["subject"], p.metadata["level"]) for p in MATH500.problems)
    got = Counter((p.metadata["subject"], p.metadata["level"]) for p in picked)
    for key, size in strata.items():
        assert int(50 * size / 500) <= got[key] <= int(50 * size / 500) + 1
    order = {p.id: i for i, p in enumerate(MATH500.problems)}
    assert [order[p.id] for p in picked] == sorted(order[p.id] for p in picked)  # benchmark order kept


def test_subset_is_a_pure_function_of_hash_n_and_seed() -> None:
    ids = lambda *args: [p.id for p in draw_subset(*args)[0]]
    assert ids(MATH500.problems, 50, 1, MATH500.sha256) == ids(list(MATH500.problems), 50, 1, MATH500.sha256)
    assert ids(MATH500.problems, 50, 1, MATH500.sha256) != ids(MATH500.problems, 50, 2, MATH500.sha256)
    assert ids(MATH500.problems, 50, 1, MATH500.sha256) != ids(MATH500.problems, 50, 1, "0" * 64)
    # The exact draw is part of the contract: a committed baseline made with it must stay comparable.
    assert ids(AIME.problems, 6, 0, AIME.sha256) == ["2024-I-9", "2024-I-10", "2024-I-13", "2024-II-1",
                                                     "2024-II-7", "2024-II-11"]


def test_aime_subset_splits_contests_evenly() -> None:
    picked, spec = draw_subset(AIME.problems, 10, 3, AIME.sha256)
    assert Counter(p.metadata["contest"] for p in picked) == {"I": 5, "II": 5}
    assert spec.describe() == "subset 10 of 30 problems, seed 3, by contest"
    assert describe_dict(spec.to_dict()) == spec.describe() and describe_dict(None) == "no subset"


@pytest.mark.parametrize("n, seed, message", [(0, 0, r"--subset must be in \[1, 30\]"), (31, 0, "got 31"),
                                              (5, -1, "--subset-seed must be >= 0")])
def test_bad_subset_arguments(n: int, seed: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draw_subset(AIME.problems, n, seed, AIME.sha256)


# ------------------------------------------------------------------------------------------- run --subset


def _req(tmp_path: Path, **over: object) -> RunRequest:
    values: dict[str, object] = {"bench": "aime24", "backend": "fake", "model": "fake", "samples": 2,
                                     "spec": SamplingSpec(max_tokens=32), "out": tmp_path / "run", "subset": 6, "subset_seed": 0}
    values.update(over)
    return RunRequest(**values)  # type: ignore[arg-type]


def test_run_samples_the_subset_and_records_it(tmp_path: Path) -> None:
    run_sampling(_req(tmp_path), fake_factory(), progress=False)
    expected, spec = draw_subset(AIME.problems, 6, 0, AIME.sha256)
    with RunStore.open(tmp_path / "run") as store:
        assert [p.id for p in store.problems()] == [p.id for p in expected]
        assert store.info("subset") == spec.to_dict()
        assert store.manifest().notes == (spec.describe(),)
        assert store.count_completions() == 12


def test_run_subset_refuses_limit_and_a_changed_subset_on_resume(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="--subset draws its own problems"):
        run_sampling(_req(tmp_path, limit=3), fake_factory(), progress=False)
    run_sampling(_req(tmp_path), fake_factory(), progress=False)
    with pytest.raises(RunError, match="cannot resume: the run has subset 6 of 30 problems, seed 0"):
        run_sampling(_req(tmp_path, resume=True, subset_seed=1), fake_factory(), progress=False)
    with pytest.raises(RunError, match="the command asks for no subset"):
        run_sampling(_req(tmp_path, resume=True, subset=None), fake_factory(), progress=False)
    summary = run_sampling(_req(tmp_path, resume=True, samples=3), fake_factory(), progress=False)
    assert summary.added == 6 and summary.total == 18
    with RunStore.open(tmp_path / "run") as store:
        assert store.manifest().notes[0] == "subset 6 of 30 problems, seed 0, by contest"


def test_subset_spec_is_frozen() -> None:
    _, spec = draw_subset(AIME.problems, 2, 0, AIME.sha256)
    assert replace(spec, seed=1) != spec
