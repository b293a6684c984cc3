"""The run layer with a fake engine: resume, extend, interruption, contradictory flags."""

import pytest

from harness.run import RunError, RunRequest, run_sampling
from harness.samplers.base import sample_seed
from harness.store import RunStore
from harness.types import SamplingSpec
from tests.fakes import fake_factory


def _req(tmp_path, **over):
    values = dict(bench="aime24", backend="fake", model="fake-model", samples=3,
                  spec=SamplingSpec(max_tokens=64, seed=7), out=tmp_path / "run", limit=4, commit_every=2)
    values.update(over)
    return RunRequest(**values)


def _rows(run_dir):
    with RunStore.open(run_dir) as store:
        return [(c.problem_id, c.sample_index, c.seed, c.text, c.output_tokens) for c in store.completions()]


def test_run_stores_every_sample_with_its_seed(tmp_path):
    factory = fake_factory()
    summary = run_sampling(_req(tmp_path), factory, progress=False)
    assert (summary.requested, summary.added, summary.total) == (12, 12, 12)
    rows = _rows(tmp_path / "run")
    assert len(rows) == 12
    assert all(seed == sample_seed(7, pid, i) for pid, i, seed, _, _ in rows)
    assert factory.made[0].closed
    with RunStore.open(tmp_path / "run") as store:
        manifest = store.manifest()
    assert manifest.samples_per_problem == 3 and manifest.finished_at and manifest.benchmark_version == "aime24-v1"
    assert manifest.engine_settings == {"engine": "fake", "answers": ["1", "2", "3"]}


def test_interrupted_run_resumes_to_the_same_samples(tmp_path):
    full = tmp_path / "full"
    run_sampling(_req(tmp_path, out=full), fake_factory(), progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_sampling(_req(tmp_path), fake_factory(fail_after=5), progress=False)
    assert len(_rows(tmp_path / "run")) == 5  # everything finished before the interrupt was committed
    factory = fake_factory()
    summary = run_sampling(_req(tmp_path, resume=True), factory, progress=False)
    assert summary.added == 7
    # only the missing samples were requested
    assert sum(len(ix) for _, ix in factory.made[0].requested) == 7
    assert _rows(tmp_path / "run") == _rows(full)


def test_extending_keeps_the_first_samples(tmp_path):
    run_sampling(_req(tmp_path, samples=2), fake_factory(), progress=False)
    before = _rows(tmp_path / "run")
    factory = fake_factory()
    run_sampling(_req(tmp_path, samples=4, resume=True), factory, progress=False)
    after = _rows(tmp_path / "run")
    assert [r for r in after if r[1] < 2] == before and len(after) == 16
    assert all(ix == (2, 3) for _, ix in factory.made[0].requested)
    with RunStore.open(tmp_path / "run") as store:
        assert store.manifest().samples_per_problem == 4


def test_existing_run_needs_resume_and_same_conditions(tmp_path):
    run_sampling(_req(tmp_path), fake_factory(), progress=False)
    with pytest.raises(RunError, match="--resume"):
        run_sampling(_req(tmp_path), fake_factory(), progress=False)
    with pytest.raises(RunError, match="cannot resume: sampling"):
        run_sampling(_req(tmp_path, resume=True, spec=SamplingSpec(max_tokens=64, seed=8)), fake_factory(), progress=False)
    with pytest.raises(RunError, match="cannot resume: model"):
        run_sampling(_req(tmp_path, resume=True, model="other"), fake_factory(), progress=False)


def test_greedy_with_many_samples_is_refused(tmp_path):
    with pytest.raises(RunError, match="temperature 0 is greedy"):
        run_sampling(_req(tmp_path, spec=SamplingSpec(max_tokens=8, temperature=0.0)), fake_factory(), progress=False)


def test_resume_mismatch_is_refused_before_the_engine_starts(tmp_path):
    run_sampling(_req(tmp_path), fake_factory(), progress=False)
    factory = fake_factory()
    with pytest.raises(RunError, match="cannot resume: model"):
        run_sampling(_req(tmp_path, resume=True, model="other"), factory, progress=False)
    assert factory.made == []  # loading a large model takes minutes: refuse first


def test_a_run_that_fails_before_any_sample_leaves_no_store(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_sampling(_req(tmp_path), fake_factory(fail_after=0), progress=False)
    assert not (tmp_path / "run" / "run.sqlite").exists()
    # so the same command can simply be repeated, without --resume
    assert run_sampling(_req(tmp_path), fake_factory(), progress=False).total == 12
