"""Run store: unique samples, batches committed, grades per grader version, manifest round trip."""

import sqlite3

import pytest

from harness.store import RunStore, StoreError
from harness.types import Completion, Grade, Problem, RunManifest, SamplingSpec


def _manifest(**over):
    values = dict(model="m", backend="fake", sampling=SamplingSpec(max_tokens=32, stop=("</s>",)),
                  samples_per_problem=2, benchmark="b", benchmark_version="v", benchmark_hash="h", prompt_name="p",
                  prompt_version="1", prompt_template="t", prompt_hash="ph", grader_version="g",
                  engine_settings={"batch": 4}, package_versions={"x": "1"}, notes=("n",))
    values.update(over)
    return RunManifest(**values)


PROBLEMS = [Problem("p1", "b", "q1", "1", "integer", {"level": 2}), Problem("p2", "b", "q2", "x+1")]


def test_manifest_and_problems_round_trip(tmp_path):
    with RunStore.create(tmp_path, _manifest(), PROBLEMS) as store:
        pass
    with RunStore.open(tmp_path) as store:
        assert store.manifest() == _manifest()
        assert store.manifest().sampling.stop == ("</s>",)
        assert store.problems() == PROBLEMS
        assert store.problems()[0].metadata == {"level": 2}


def test_imported_manifest_without_sampling(tmp_path):
    with RunStore.create(tmp_path, _manifest(sampling=None), PROBLEMS) as store:
        assert store.manifest().sampling is None


def test_completions_are_append_only_and_unique(tmp_path):
    with RunStore.create(tmp_path, _manifest(), PROBLEMS) as store:
        first = Completion("p2", 1, 11, "a", 5, "stop", (1, 2, 3, 4, 5))
        assert store.add_completions([first, Completion("p1", 0, 10, "b", 3, "length")]) == 2
        # the same (problem, index) again is ignored, and the stored text is kept
        assert store.add_completions([Completion("p2", 1, 99, "changed", 1, "stop")]) == 0
        assert store.existing_indices() == {"p1": {0}, "p2": {1}}
        rows = store.completions(with_token_ids=True)
        assert [(c.problem_id, c.sample_index, c.text) for c in rows] == [("p1", 0, "b"), ("p2", 1, "a")]
        assert rows[1] == first
        assert store.completions()[1].token_ids is None


def test_completion_for_unknown_problem_is_rejected(tmp_path):
    with RunStore.create(tmp_path, _manifest(), PROBLEMS) as store:
        with pytest.raises(sqlite3.IntegrityError):
            store.add_completions([Completion("nope", 0, 1, "a", 1, "stop")])
        assert store.count_completions() == 0  # the failed batch was rolled back whole


def test_grades_are_kept_per_grader_version(tmp_path):
    with RunStore.create(tmp_path, _manifest(), PROBLEMS) as store:
        store.add_completions([Completion("p1", 0, 1, "a", 1, "stop")])
        old = [Grade("p1", 0, "1", "1", True, "ok", "equal")]
        new = [Grade("p1", 0, "1", "1", False, "unparsable", "why")]
        store.write_grades(old, "0.1")
        store.write_grades(new, "0.2")
        store.write_grades(new, "0.2")  # replacing a version's grades does not duplicate them
        assert store.grades("0.1") == old and store.grades("0.2") == new and store.grades("9") == []


def test_create_refuses_existing_and_open_refuses_missing(tmp_path):
    RunStore.create(tmp_path / "r", _manifest(), PROBLEMS).close()
    with pytest.raises(StoreError, match="--resume"):
        RunStore.create(tmp_path / "r", _manifest(), PROBLEMS)
    with pytest.raises(StoreError, match="no run here"):
        RunStore.open(tmp_path / "empty")


def test_changed_problem_is_refused(tmp_path):
    with RunStore.create(tmp_path, _manifest(), PROBLEMS) as store:
        store.add_problems([Problem("p3", "b", "q3", "3")])
        assert [p.id for p in store.problems()] == ["p1", "p2", "p3"]
        with pytest.raises(StoreError, match="differs"):
            store.add_problems([Problem("p1", "b", "q1", "2", "integer")])


def test_info_values(tmp_path):
    with RunStore.create(tmp_path, _manifest(), PROBLEMS) as store:
        store.set_info("budgets", [1000, 2000])
        assert store.info("budgets") == [1000, 2000] and store.info("nothing") is None
