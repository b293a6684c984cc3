"""``tts-eval force`` end to end on CPU: the real transformers backend on the tiny model, continuations stored,
counted, graded and reproducible, curves and frontier in report.json; refusals for what cannot be forced."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.forcing import FORCE_PROMPTS, force_seed, forced_text
from harness.grading import extract_answer

CAPS = (12, 24)
FORCE_MAX = 6


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def forced_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("force") / "run"
    result = _invoke("run", "--model", str(tiny_model_dir), "--bench", "aime24", "--samples", "3", "--max-tokens", "40",
                     "--temperature", "0.9", "--seed", "11", "--limit", "3", "--batch-size", "4", "--no-progress",
                     "--no-report", "--out", str(out))
    assert result.exit_code == 0, result.output
    result = _invoke("force", str(out), "--caps", ",".join(map(str, CAPS)), "--max-tokens", str(FORCE_MAX),
                     "--batch-size", "4", "--no-progress")
    assert result.exit_code == 0, result.output
    return out, result.output


def _db(run: Path) -> sqlite3.Connection:
    return sqlite3.connect(run / "run.sqlite")


@pytest.mark.slow
def test_continuations_are_stored_counted_and_seeded(forced_run: tuple[Path, str]) -> None:
    run, output = forced_run
    with _db(run) as db:
        samples = {(p, i): (seed, tokens, finish) for p, i, seed, tokens, finish in db.execute(
            "SELECT problem_id, sample_index, seed, output_tokens, finish_reason FROM completions")}
        forced = db.execute("SELECT problem_id, sample_index, cap, prefix_tokens, prompt_name, seed, text, output_tokens,"
                            " finish_reason, token_ids FROM forced").fetchall()
    assert len(samples) == 9
    for cap in CAPS:
        cut = {key for key, (_, tokens, finish) in samples.items() if tokens > cap or finish == "length"}
        assert {(p, i) for p, i, c, *_ in forced if c == cap} == cut  # exactly the samples cut at the cap
        assert f"cap {cap}: {len(cut)} of 9 samples cut, {len(cut)} continuations generated" in output
    for pid, index, cap, prefix, prompt, seed, _, tokens, finish, ids in forced:
        assert prefix == min(samples[(pid, index)][1], cap) and prompt == "boxed-v1"
        assert seed == force_seed(samples[(pid, index)][0], cap)
        assert tokens == len(json.loads(ids)) and 1 <= tokens <= FORCE_MAX
        assert finish == "stop" or tokens == FORCE_MAX


@pytest.mark.slow
def test_report_counts_continuation_tokens(forced_run: tuple[Path, str]) -> None:
    run, _ = forced_run
    report = json.loads((run / "report.json").read_text())
    with _db(run) as db:
        lengths = {(p, i): (t, f) for p, i, t, f in db.execute(
            "SELECT problem_id, sample_index, output_tokens, finish_reason FROM completions")}
        extra = {(p, i, c): t for p, i, c, t in db.execute(
            "SELECT problem_id, sample_index, cap, output_tokens FROM forced")}
    points = {(p["method"], p["cap"], p["k"]): p for p in report["points"]}
    for cap in CAPS:
        for method, cost in (("truncated", lambda key, t, cap=cap: min(t, cap)),
                             ("forced", lambda key, t, cap=cap: min(t, cap) + extra.get((*key, cap), 0))):
            per_problem: dict[str, list[int]] = {}
            for key, (tokens, _) in lengths.items():
                per_problem.setdefault(key[0], []).append(cost(key, tokens))
            mean = sum(sum(v) / len(v) for v in per_problem.values()) / len(per_problem)
            for k in (1, 2, 3):
                assert points[(method, cap, k)]["tokens_per_problem"] == pytest.approx(k * mean)
        cut = sum(t > cap or f == "length" for t, f in lengths.values()) / 9
        assert points[("forced", cap, 1)]["truncation_rate"] == pytest.approx(cut)
        assert points[("truncated", cap, 1)]["no_answer_rate"] >= cut  # a cut sample never answers unforced
    assert report["frontier"] and set(report["frontier"][0]) >= {"cap", "k", "tokens_per_problem", "accuracy"}
    for row in report["matched"]:
        assert set(row) >= {"baseline", "baseline_tokens", "baseline_accuracy", "accuracy", "ci_low", "ci_high", "reached"}
    assert (run / "report.html").stat().st_size > 10_000 and (run / "frontier.png").is_file()


@pytest.mark.slow
def test_capped_grades_read_the_forced_answer(forced_run: tuple[Path, str]) -> None:
    run, _ = forced_run
    with _db(run) as db:
        graded = {(p, i, c): ex for p, i, c, ex in db.execute(
            "SELECT problem_id, sample_index, cap, extracted FROM capped_grades")}
        forced = db.execute("SELECT problem_id, sample_index, cap, text FROM forced").fetchall()
    assert len(graded) == 9 * len(CAPS)
    for pid, index, cap, text in forced:
        assert graded[(pid, index, cap)] == extract_answer(forced_text("boxed-v1", text)).answer
    assert FORCE_PROMPTS["boxed-v1"].endswith("\\boxed{")


@pytest.mark.slow
def test_continuation_is_reproducible_and_forcing_resumes(forced_run: tuple[Path, str], tiny_model_dir: Path) -> None:
    from harness.samplers.transformers import TransformersSampler
    from harness.store import RunStore
    from harness.types import SamplingSpec

    run, _ = forced_run
    with RunStore.open(run) as store:
        sample = next(c for c in store.completions(with_token_ids=True) if c.output_tokens and c.output_tokens > CAPS[0])
        stored = next(f for f in store.forced(CAPS[0]) if (f.completion.problem_id, f.completion.sample_index)
                      == (sample.problem_id, sample.sample_index))
        problem = next(p for p in store.problems() if p.id == sample.problem_id)
        manifest = store.manifest()
    from harness.forcing import _template

    engine = TransformersSampler(str(tiny_model_dir), batch_size=1)
    try:
        prompt = engine.prompt_token_ids(_template(manifest).messages(problem.question))
        ids = prompt + list(sample.token_ids or ())[: CAPS[0]] + engine.encode(FORCE_PROMPTS["boxed-v1"])
        spec = SamplingSpec(max_tokens=FORCE_MAX, temperature=0.9, top_p=0.95, seed=11)
        (again,) = engine.continue_token_ids([(sample.problem_id, sample.sample_index, stored.completion.seed or 0, ids)],
                                             spec)
    finally:
        engine.close()
    assert again.token_ids == stored.completion.token_ids and again.text == stored.completion.text
    result = _invoke("force", str(run), "--caps", ",".join(map(str, CAPS)), "--max-tokens", str(FORCE_MAX),
                     "--no-progress", "--no-report")
    assert result.exit_code == 0 and "0 continuations generated" in result.output
    mixed = _invoke("force", str(run), "--caps", "30", "--max-tokens", "9", "--no-progress", "--no-report")
    assert mixed.exit_code != 0 and "use the same settings" in mixed.output


def test_imported_runs_cannot_be_forced(tmp_path: Path) -> None:
    data = tmp_path / "outputs.jsonl"
    data.write_text(json.dumps({"problem_id": "2024-I-1", "response": "\\boxed{204}", "output_tokens": 9}) + "\n")
    out = tmp_path / "imported"
    assert _invoke("import", str(data), "--bench", "aime24", "--out", str(out), "--no-report").exit_code == 0
    result = _invoke("force", str(out), "--caps", "4", "--no-progress")
    assert result.exit_code != 0 and "was imported" in result.output
    bad = _invoke("force", str(out), "--caps", "4k,x", "--no-progress")
    assert bad.exit_code != 0 and "--caps" in bad.output


def test_a_forced_answer_is_graded_with_the_continuations_finish_reason(tmp_path: Path) -> None:
    # The grader reads only a closed box from a "length" text, and a later "final answer is" phrase from a text
    # that stopped on its own; so the same continuation grades differently by its own finish reason, whatever
    # the cut sample's was (a sample cut at the cap may have ended "stop" later, or "length").
    from harness.forcing import capped_set, grade_capped
    from harness.grading import Grader
    from harness.store import ForcedAnswer, RunStore
    from harness.types import Completion, Problem, RunManifest, SamplingSpec

    manifest = RunManifest(model="m", backend="transformers", sampling=SamplingSpec(max_tokens=40),
                           samples_per_problem=4, benchmark="b", benchmark_version="v", benchmark_hash="h",
                           prompt_name="p", prompt_version="1", prompt_template="t", prompt_hash="ph",
                           grader_version="g")
    cont = "204}$\n\nThe final answer is 7."
    with RunStore.create(tmp_path / "run", manifest, [Problem("p", "b", "q", "7")]) as store:
        store.add_completions([Completion("p", 0, 1, "long, ended later", 30, "stop"),
                               Completion("p", 1, 2, "cut by max_tokens", 40, "length"),
                               Completion("p", 2, 3, "cut, never forced", 40, "length"),
                               Completion("p", 3, 4, "The answer is $7$.", 5, "stop")])
        store.add_forced([ForcedAnswer(10, 10, "boxed-v1", Completion("p", 0, 5, cont, 8, "length")),
                          ForcedAnswer(10, 10, "boxed-v1", Completion("p", 1, 6, cont, 8, "stop"))])
        rows = capped_set(store, 10)
        assert [(c.text, c.finish_reason) for c in rows] == [
            (forced_text("boxed-v1", cont), "length"), (forced_text("boxed-v1", cont), "stop"), ("", "length"),
            ("The answer is $7$.", "stop")]
        with Grader(workers=1) as grader:
            grades = grade_capped(store, 10, grader)
    assert [(g.extracted, g.correct) for g in grades] == [("204", False), ("7", True), (None, False), ("7", True)]


def test_force_starts_the_engine_with_the_runs_own_backend_options(forced_run: tuple[Path, str], monkeypatch) -> None:
    # A 72B run sampled with --tensor-parallel-size 8 must be forced on the same engine settings, not defaults.
    import harness.samplers.registry as registry

    seen: list[dict] = []

    def fake_make_sampler(name: str, **options):
        seen.append({"backend": name, **options})
        raise registry.SamplerError("stop here")

    monkeypatch.setattr(registry, "make_sampler", fake_make_sampler)
    run, _ = forced_run
    result = CliRunner().invoke(cli, ["force", str(run), "--caps", "8", "--max-tokens", str(FORCE_MAX), "--dtype", "float32",
                                      "-o", "device=cpu",
                                      "--no-progress"])
    assert result.exit_code != 0 and "stop here" in result.output
    assert seen == [{"backend": "transformers", "model": seen[0]["model"], "batch_size": 4, "dtype": "float32",
                     "device": "cpu"}]
