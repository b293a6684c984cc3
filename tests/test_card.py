"""``tts-eval card``: one run, two runs with a differences table, the evaluation questions, errors."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.analysis import report_run
from harness.baselines import Baseline
from harness.card import CardRun, key_points, load_runs
from harness.card_conditions import RECORD_ONLY, UNSTATED, conditions, differences
from harness.card_questions import Compared, answer_questions
from harness.cli import cli
from harness.importer import import_run
from harness.provenance import model_fingerprint
from harness.run import RunRequest, run_sampling
from harness.transparency import load_checklist
from harness.types import SamplingSpec
from tests.fakes import fake_factory

EVAL_IDS = ["eval.benchmarks", "eval.granularity", "eval.metrics", "eval.custom_metrics", "eval.consistency",
            "eval.conditions"]


def _sampled(tmp_path: Path, name: str, temperature: float = 0.6, model: str = "fake-model") -> Path:
    out = tmp_path / name
    req = RunRequest(bench="aime24", backend="fake", model=model, samples=3, limit=4, out=out,
                     spec=SamplingSpec(max_tokens=64, temperature=temperature, seed=7), command=f"make {name}")
    run_sampling(req, fake_factory(), progress=False)
    return out


def _imported(tmp_path: Path) -> Path:
    # Three AIME problems x 2 samples: both right; one right and one other answer (a tie); both wrong.
    rows = [("2024-I-1", "204"), ("2024-I-1", "204"), ("2024-I-2", "25"), ("2024-I-2", "7"),
            ("2024-I-3", "1"), ("2024-I-3", "2")]
    src = tmp_path / "outputs.jsonl"
    src.write_text("".join(json.dumps({"problem_id": p, "response": f"so \\boxed{{{a}}}"}) + "\n" for p, a in rows))
    out = tmp_path / "imported"
    import_run(src, "native", "aime24", out, model="someone's model")
    return out


def _card(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["card", *args, "--no-progress"])
    return result.exit_code, result.output


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _row(section: str, first_cell: str) -> list[str] | None:
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    return None


def test_card_of_an_imported_run_matches_its_report(tmp_path):
    run = _imported(tmp_path)
    report, _ = report_run(run, progress=False)
    data = json.loads((run / "report.json").read_text())
    code, output = _card(str(run), "--out", str(tmp_path / "card.md"))
    assert code == 0, output
    card = (tmp_path / "card.md").read_text()
    measured = _section(card, "What was measured")
    one = _row(measured, "imported")
    assert one is not None and one[1] == "one sample (Maj@1 = pass@1 = mean)"
    # By hand: Maj@1 = (1 + 1/2 + 0)/3, Maj@2 = (1 + 1/2 (a tie) + 0)/3, pass@2 = (1 + 1 + 0)/3.
    points = {(p["method"], p["k"]): p for p in data["points"]}
    assert points[("maj", 1)]["accuracy"] == pytest.approx(0.5)
    assert points[("maj", 2)]["accuracy"] == pytest.approx(0.5)
    assert points[("pass", 2)]["accuracy"] == pytest.approx(2 / 3)
    for label, key in (("one sample (Maj@1 = pass@1 = mean)", ("maj", 1)), ("Maj@2", ("maj", 2)),
                       ("pass@2", ("pass", 2))):
        p = points[key]
        expected = f"{100 * p['accuracy']:.1f}% [{100 * p['ci_low']:.1f}, {100 * p['ci_high']:.1f}]"
        assert f"| imported | {label} | \u2013 | {expected} |" in measured
    assert "Where conditions differ" not in card  # one run: nothing to compare
    table = _section(card, "Conditions")
    assert _row(table, "sampling: temperature") == ["sampling: temperature", UNSTATED]
    assert _row(table, "model") == ["model", "someone's model"]
    assert _row(table, "engine: format") == ["engine: format", "native"]
    questions = _section(card, "Evaluation questions of the Technical Transparency Index")
    verdicts = {cells[0]: cells[2] for line in questions.splitlines()
                if (cells := [c.strip() for c in line.strip().strip("|").split("|")])[0].startswith("eval")}
    assert list(verdicts) == [i.replace("_", "\\_") for i in EVAL_IDS]
    assert verdicts["eval.conditions"] == "**cannot tell**"
    assert "imported (imported; the source does not state its sampling)" in _row(questions, "eval.conditions")[3]
    assert verdicts["eval.granularity"] == verdicts["eval.metrics"] == "**yes**"
    assert report.n_problems == 3


def test_card_of_two_runs_shows_the_setting_that_differs(tmp_path):
    a, b = _sampled(tmp_path, "warm", 0.6), _sampled(tmp_path, "hot", 1.0)
    code, output = _card(str(a), str(b), "--out", str(tmp_path / "cards" / "two.md"))
    assert code == 0, output
    card = (tmp_path / "cards" / "two.md").read_text()
    assert card.startswith("# Evaluation card: 2 runs on aime24\n")
    diff = _section(card, "Where conditions differ")
    assert _row(diff, "Setting") == ["Setting", "warm", "hot"]
    assert _row(diff, "sampling: temperature") == ["sampling: temperature", "0.6", "1.0"]
    # settings the runs share, and the ones that only identify an execution, are not in the differences table
    for same in ("model", "benchmark", "sampling: top\\_p", "grader version", "started", "command"):
        assert _row(diff, same) is None, same
    assert _row(_section(card, "Conditions"), "command") == ["command", "make warm", "make hot"]
    assert "are not recorded" not in diff  # both runs state their sampling
    questions = _section(card, "Evaluation questions of the Technical Transparency Index")
    assert _row(questions, "eval.conditions")[2] == "**yes**"
    assert "warm: temperature 0.6, top\\_p 0.95" in _row(questions, "eval.conditions")[3]
    assert _row(questions, "eval.consistency")[2] == "**yes**"


def test_differences_of_imported_runs_say_that_sampling_is_not_recorded(tmp_path):
    code, output = _card(str(_imported(tmp_path)), str(_sampled(tmp_path, "sampled")), "--out", str(tmp_path / "c.md"))
    assert code == 0, output
    diff = _section((tmp_path / "c.md").read_text(), "Where conditions differ")
    assert _row(diff, "sampling: temperature") == ["sampling: temperature", UNSTATED, "0.6"]
    assert _row(diff, "backend") == ["backend", "replay", "fake"]
    assert "The sampling settings of imported are not recorded" in diff


def test_card_shows_a_local_model_fingerprint_and_what_it_covers(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "qwen2"}')
    run = _sampled(tmp_path, "local", model=str(folder))
    code, output = _card(str(run), "--out", str(tmp_path / "c.md"))
    assert code == 0, output
    card = (tmp_path / "c.md").read_text()
    fingerprint = model_fingerprint(str(folder))
    row = _row(_section(card, "Conditions"), "model revision")
    assert row == ["model revision", f"{fingerprint[:20]} (local files fingerprint)"]
    assert "A local model's revision is its files fingerprint, fp1: sha256 over" in card


def test_differences_leave_out_record_only_settings(tmp_path):
    runs = load_runs([_sampled(tmp_path, "a"), _sampled(tmp_path, "b")])
    reports = [r.report for r in runs]
    assert differences(reports) == []  # same conditions; only times and commands differ
    assert conditions(runs[0].report)["command"] != conditions(runs[1].report)["command"]
    assert set(RECORD_ONLY) <= set(conditions(runs[0].report))


def test_key_points_of_a_capped_run(tmp_path):
    run = _sampled(tmp_path, "capped")
    report, _ = report_run(run, caps=[32], progress=False)
    labels = [label for label, _ in key_points(report)]
    assert labels == ["one sample (Maj@1 = pass@1 = mean)", "Maj@3", "pass@3", "truncated at cap 32, one sample",
                      "truncated at cap 32, Maj@3"]
    by_label = dict(key_points(report))
    top = max((p for p in report.points if p.method == "truncated"), key=lambda p: p.k)
    assert by_label["truncated at cap 32, Maj@3"] == top


def _answers(runs, published=()):
    return {a.id: a for a in answer_questions(Compared(runs, published), load_checklist())}


def test_answers_follow_the_records(tmp_path):
    report = load_runs([_sampled(tmp_path, "a")])[0].report
    answers = _answers([("a", report)])
    assert list(answers) == EVAL_IDS
    assert {k: a.verdict for k, a in answers.items()} == {
        "eval.benchmarks": "cannot tell", "eval.granularity": "yes", "eval.metrics": "yes",
        "eval.custom_metrics": "yes", "eval.consistency": "yes", "eval.conditions": "yes"}
    unstated = replace(report, manifest=replace(report.manifest, sampling=None))
    assert _answers([("a", report), ("b", unstated)])["eval.conditions"].verdict == "cannot tell"
    older = replace(report, manifest=replace(report.manifest, grader_version="0.1.0"))
    consistency = _answers([("a", report), ("old", older)])["eval.consistency"]
    assert consistency.verdict == "no" and "grader version differs (0.1.0, 0.2.0)" in consistency.evidence
    o1 = Baseline("o1-mini (API)", "o1-mini", "aime24", "accuracy", 0.7, 9903.0, 1, "not stated", "report", "primary")
    with_o1 = _answers([("a", report)], [o1])
    assert with_o1["eval.consistency"].verdict == "cannot tell"
    assert "o1-mini (API) (1 point: accuracy)" in with_o1["eval.consistency"].evidence
    assert with_o1["eval.conditions"].verdict == "cannot tell"
    stated = replace(o1, sampling="T=0.6, top_p=0.95")
    assert _answers([("a", report)], [stated])["eval.conditions"].verdict == "yes"


@pytest.mark.parametrize("case", ["not a run", "twice"])
def test_user_errors_are_one_line_and_nonzero(tmp_path, case):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "card.md"
    if case == "not a run":
        code, output = _card(str(empty), "--out", str(out))
        assert "no run here" in output
    else:
        run = _imported(tmp_path)
        code, output = _card(str(run), str(tmp_path / "." / "imported"), "--out", str(out))
        assert "given twice" in output
    assert code == 1 and len(output.strip().splitlines()) == 1 and output.startswith("Error: ")
    assert not out.exists()


def test_card_run_labels_are_unique(tmp_path):
    for parent in ("x", "y"):
        (tmp_path / parent).mkdir()
        _sampled(tmp_path / parent, "run")
    runs = load_runs([tmp_path / "x" / "run", tmp_path / "y" / "run"])
    assert [r.label for r in runs] == [str(tmp_path / "x" / "run"), str(tmp_path / "y" / "run")]
    assert all(isinstance(r, CardRun) for r in runs)
    assert runs[0].report.manifest.model == "fake-model"
