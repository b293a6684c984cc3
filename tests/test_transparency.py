"""Technical Transparency Index: the checklist's points, the report's leaderboard, scoring, one-line errors.

Expected scores are computed here from the raw CSV with the csv module, never through harness.transparency.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import tomllib
from itertools import combinations
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.transparency import (
    DEFAULT_CHECKLIST,
    DEFAULT_LEADERBOARD,
    REPORT_SOURCE,
    TEMPLATE,
    TransparencyError,
    TTIScore,
    load_checklist,
    load_leaderboard,
    parse_answers,
    rank,
    render_template,
    score_answers,
)
from harness.transparency_cli import transparency

SHARED = Path(__file__).parents[2] / "shared" / "data"
DIMS = ("data", "methodology", "evaluation", "open_source")

with DEFAULT_CHECKLIST.open(newline="", encoding="utf-8") as _f:
    RAW = list(csv.DictReader(_f))
IDS = [r["id"] for r in RAW]
POINTS = {r["id"]: int(r["points"]) for r in RAW}
DIM_OF = {r["id"]: r["dimension"] for r in RAW}

# Table 4 of the O1-Journey Part 2 report (arXiv 2411.16489), typed in from the report, in its row order.
REPORT_TABLE_4 = [
    ("Open O1", 0, 8, 20, 5, 33),
    ("O1-Journey (Part 1)", 10, 33, 24, 9, 76),
    ("LLaMA-O1", 0, 6, 0, 5, 11),
    ("K0Math", 0, 0, 16, 0, 16),
    ("Skywork O1", 0, 0, 0, 0, 0),
    ("DeepSeek-R1-Lite", 0, 0, 20, 0, 20),
    ("O1-Journey (Part 2)", 10, 33, 24, 12, 79),
]
# The leaderboard's order: highest total first (no ties among the seven).
BY_TOTAL = [
    ("O1-Journey (Part 2)", 10, 33, 24, 12, 79),
    ("O1-Journey (Part 1)", 10, 33, 24, 9, 76),
    ("Open O1", 0, 8, 20, 5, 33),
    ("DeepSeek-R1-Lite", 0, 0, 20, 0, 20),
    ("K0Math", 0, 0, 16, 0, 16),
    ("LLaMA-O1", 0, 6, 0, 5, 11),
    ("Skywork O1", 0, 0, 0, 0, 0),
]
ROW = re.compile(r"^\s*(\d+)\s{2}(.+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s{2}(\S.*)$")


def filled(name: str | None, yes: set[str], *, ids: list[str] = IDS) -> str:
    """The template's text with ``name`` set and ``yes`` answered true (ids not in ``ids`` removed)."""
    text = TEMPLATE.read_text(encoding="utf-8")
    if name is not None:
        text = text.replace('name = ""', f"name = {json.dumps(name)}", 1)
    for qid in IDS:
        block = f'[answers."{qid}"]\nanswer = false\n'
        assert block in text, qid
        if qid not in ids:
            text = text.replace(block + 'evidence = ""\n', "")
        elif qid in yes:
            text = text.replace(block, block.replace("false", "true"))
    return text


def run(tmp_path: Path, *args: str, text: str | None = None, name: str = "mine.toml") -> Result:
    """Invoke ``transparency ARGS``; with ``text``, write it to tmp_path/name and append that path."""
    argv = list(args)
    if text is not None:
        (tmp_path / name).write_text(text, encoding="utf-8")
        argv.append(str(tmp_path / name))
    return CliRunner().invoke(transparency, argv)


def expected(yes: set[str]) -> dict[str, int]:
    """Points per dimension and total of ``yes``, from the raw CSV."""
    out = {d: sum(POINTS[i] for i in yes if DIM_OF[i] == d) for d in DIMS}
    return {**out, "total": sum(POINTS[i] for i in yes)}


# ---- the data files ----------------------------------------------------------------------------------------


def test_copies_are_byte_identical_to_the_shared_data() -> None:
    for ours in (DEFAULT_CHECKLIST, DEFAULT_LEADERBOARD):
        shared = SHARED / ours.name
        if shared.is_file():
            assert ours.read_bytes() == shared.read_bytes(), ours.name


def test_checklist_points_add_up_to_14_33_24_29_and_100() -> None:
    assert len(RAW) == 25 and len(set(IDS)) == 25
    by_dim = {d: sum(int(r["points"]) for r in RAW if r["dimension"] == d) for d in DIMS}
    assert by_dim == {"data": 14, "methodology": 33, "evaluation": 24, "open_source": 29}
    assert sum(by_dim.values()) == 100
    assert [(q.id, q.dimension, q.points) for q in load_checklist()] == [
        (r["id"], r["dimension"], int(r["points"])) for r in RAW
    ]


def test_leaderboard_csv_rows_are_consistent_sums_and_reachable_by_the_checklist() -> None:
    with DEFAULT_LEADERBOARD.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["work"], *(int(r[c]) for c in (*DIMS, "total"))) for r in rows] == REPORT_TABLE_4
    for work, *values in REPORT_TABLE_4:
        # Every row's dimensions add up to its total (all seven do in the report's Table 4).
        assert sum(values[:4]) == values[4], work
        # Each dimension's score is a sum of some of that dimension's question points (binary scoring).
        for dim, value in zip(DIMS, values[:4], strict=True):
            pts = [POINTS[i] for i in IDS if DIM_OF[i] == dim]
            sums = {sum(c) for n in range(len(pts) + 1) for c in combinations(pts, n)}
            assert value in sums, (work, dim, value)


def test_leaderboard_loader_reports_a_row_whose_dimensions_do_not_add_up(tmp_path: Path) -> None:
    bad = tmp_path / "board.csv"
    bad.write_text("work,data,methodology,evaluation,open_source,total\nA,1,2,3,4,10\nB,0,8,20,5,34\n")
    with pytest.raises(
        TransparencyError, match=r"board\.csv:3: 'B': dimensions add up to 33 but total is 34"
    ):
        load_leaderboard(bad)
    bad.write_text("work,data,methodology,evaluation,open_source,total\nA,15,0,0,0,15\n")
    with pytest.raises(TransparencyError, match=r"board\.csv:2: 'A' has data = 15, outside 0\.\.14"):
        load_leaderboard(bad)


def test_template_lists_every_id_with_answer_false_and_its_question_above() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text == render_template(load_checklist())  # regenerate with render_template if the CSV changes
    doc = tomllib.loads(text)
    assert doc["name"] == ""
    assert list(doc["answers"]) == IDS
    assert all(doc["answers"][i] == {"answer": False, "evidence": ""} for i in IDS)
    lines = text.splitlines()
    for row in RAW:
        header = lines.index(f'[answers."{row["id"]}"]')
        assert lines[header - 1].startswith(f"# {row['question']} ({row['points']} point"), row["id"]


# ---- score -------------------------------------------------------------------------------------------------


def test_all_yes_scores_100_with_14_33_24_29(tmp_path: Path) -> None:
    result = run(tmp_path, "score", text=filled("Everything", set(IDS)))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "data          14/14",
        "methodology   33/33",
        "evaluation    24/24",
        "open_source   29/29",
        "total        100/100",
    ]
    data = json.loads(run(tmp_path, "score", "--json", text=filled("Everything", set(IDS))).stdout)
    assert {d: v["points"] for d, v in data["dimensions"].items()} == {
        "data": 14,
        "methodology": 33,
        "evaluation": 24,
        "open_source": 29,
    }
    assert (data["total"], data["max_total"], data["name"]) == (100, 100, "Everything")


def test_all_no_scores_0(tmp_path: Path) -> None:
    data = json.loads(run(tmp_path, "score", "--json", text=filled("Nothing", set())).stdout)
    assert data["total"] == 0
    assert all(v["points"] == 0 for v in data["dimensions"].values())
    assert [q["answer"] for q in data["questions"]] == [False] * 25


def test_mixed_scores_the_sum_of_its_yes_points(tmp_path: Path) -> None:
    yes = {
        "data.sources",
        "data.synthesis",
        "method.search",
        "method.compute",
        "eval.metrics",
        "open.weights",
        "open.paper",
    }
    want = expected(yes)  # 3+4, 6+2, 4, 5+4 = 7, 8, 4, 9 = 28
    assert want == {"data": 7, "methodology": 8, "evaluation": 4, "open_source": 9, "total": 28}
    result = run(tmp_path, "score", text=filled("Mixed", yes))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Mixed  ({tmp_path / 'mine.toml'})",
        "data           7/14",
        "methodology    8/33",
        "evaluation     4/24",
        "open_source    9/29",
        "total         28/100",
    ]
    data = json.loads(run(tmp_path, "score", "--json", text=filled("Mixed", yes)).stdout)
    assert {d: v["points"] for d, v in data["dimensions"].items()} | {"total": data["total"]} == want
    assert {q["id"] for q in data["questions"] if q["answer"]} == yes


@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from(IDS)))
def test_any_subset_scores_the_csv_sum(yes: set[str]) -> None:
    questions = load_checklist()
    score = score_answers(parse_answers(filled("X", yes), "x.toml", questions), questions)
    assert {d: score.points(d) for d in DIMS} | {"total": score.total} == expected(yes)


def test_unquoted_nested_ids_and_inline_tables_mean_the_same(tmp_path: Path) -> None:
    text = filled("Nested", {"data.sources"}).replace('[answers."data.sources"]', "[answers.data.sources]")
    text = text.replace('[answers."open.paper"]\nanswer = false\nevidence = ""\n', "")
    text += '\n[answers.open]\npaper = { answer = true, evidence = "https://example.org/paper" }\n'
    data = json.loads(run(tmp_path, "score", "--json", text=text).stdout)
    assert data["total"] == POINTS["data.sources"] + POINTS["open.paper"]
    assert data["questions"][-1]["evidence"] == "https://example.org/paper"


# ---- leaderboard -------------------------------------------------------------------------------------------


def parse_table(stdout: str) -> list[tuple[int, str, int, int, int, int, int, str]]:
    lines = stdout.splitlines()
    assert lines[0].split() == [
        "rank",
        "work",
        "data/14",
        "methodology/33",
        "evaluation/24",
        "open_source/29",
        "total/100",
        "source",
    ]
    rows = []
    for line in lines[1:]:
        m = ROW.match(line)
        assert m, line
        rows.append((int(m[1]), m[2], *(int(m[i]) for i in range(3, 8)), m[8]))
    return rows  # type: ignore[return-value]


def test_leaderboard_reproduces_the_reports_seven_rows(tmp_path: Path) -> None:
    result = run(tmp_path, "leaderboard")
    assert result.exit_code == 0, result.output
    assert parse_table(result.stdout) == [(n, *row, REPORT_SOURCE) for n, row in enumerate(BY_TOTAL, 1)]
    # Columns are aligned: every line has the same width up to the source column.
    starts = {line.index(REPORT_SOURCE) for line in result.stdout.splitlines()[1:]}
    assert len(starts) == 1
    rows = json.loads(run(tmp_path, "leaderboard", "--json").stdout)
    assert [(r["name"], *(r["dimensions"][d]["points"] for d in DIMS), r["total"]) for r in rows] == BY_TOTAL


def test_leaderboard_adds_scored_files_in_order_of_total(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(filled("All in", set(IDS)), encoding="utf-8")
    mid = {"data.sources", "method.search", "eval.metrics", "open.weights"}  # 3+6+4+5 = 18
    (tmp_path / "b.toml").write_text(filled("Middle", mid), encoding="utf-8")
    (tmp_path / "c.toml").write_text(filled("Tie at 11", {"method.search", "open.weights"}), encoding="utf-8")
    result = CliRunner().invoke(
        transparency, ["leaderboard", *(str(tmp_path / f) for f in ("a.toml", "b.toml", "c.toml"))]
    )
    assert result.exit_code == 0, result.output
    rows = parse_table(result.stdout)
    assert [(r[0], r[1], r[6]) for r in rows] == [
        (1, "All in", 100),
        (2, "O1-Journey (Part 2)", 79),
        (3, "O1-Journey (Part 1)", 76),
        (4, "Open O1", 33),
        (5, "DeepSeek-R1-Lite", 20),
        (6, "Middle", 18),
        (7, "K0Math", 16),
        (8, "LLaMA-O1", 11),
        (8, "Tie at 11", 11),
        (10, "Skywork O1", 0),
    ]
    assert rows[5][2:7] == (3, 6, 4, 5, 18) and rows[5][7] == str(tmp_path / "b.toml")


def test_rank_is_stable_and_shares_ranks_on_ties() -> None:
    s = [TTIScore(n, t, 0, 0, 0, "x") for n, t in (("a", 5), ("b", 9), ("c", 5), ("d", 1))]
    assert [(r, x.name) for r, x in rank(s)] == [(1, "b"), (2, "a"), (2, "c"), (4, "d")]


# ---- errors: one line naming the file, non-zero exit -------------------------------------------------------

TEMPLATE_TEXT = filled("Mine", set())
# case: (file text, pattern of the message, the line the message points at; None: the file as a whole)
ERRORS: dict[str, tuple[str, str, str | None]] = {
    "unknown id": (
        TEMPLATE_TEXT.replace('[answers."data.sources"]', '[answers."data.sourcez"]'),
        r"unknown question id 'data\.sourcez'; did you mean 'data\.sources'\?",
        '[answers."data.sourcez"]',
    ),
    "id without its dimension": (
        TEMPLATE_TEXT.replace('[answers."open.weights"]', '[answers."weights"]'),
        r"unknown question id 'weights'; did you mean 'open\.weights'\?",
        '[answers."weights"]',
    ),
    "id far from any": (
        TEMPLATE_TEXT + '\n[answers."zzz"]\nanswer = true\n',
        r"unknown question id 'zzz'; the ids are listed in configs/tti-template\.toml",
        '[answers."zzz"]',
    ),
    "missing id": (
        filled("Mine", set(), ids=[i for i in IDS if i not in ("method.rl", "open.paper")]),
        r"no answer for 2 question\(s\): method\.rl, open\.paper; add an \[answers\.\"<id>\"\] table",
        None,
    ),
    "table without answer": (
        TEMPLATE_TEXT.replace('[answers."eval.metrics"]\nanswer = false\n', '[answers."eval.metrics"]\n'),
        r"question 'eval\.metrics' has no answer; add answer = true or false",
        '[answers."eval.metrics"]',
    ),
    "duplicate table (TOML rejects)": (
        TEMPLATE_TEXT + '\n[answers."method.rl"]  # again\nanswer = true\n',
        r"duplicate question id 'method\.rl' \(also at line (\d+)\); keep one",
        '[answers."method.rl"]  # again',
    ),
    "duplicate inline id (TOML rejects)": (
        'name = "x"\n[answers]\n"data.sources" = { answer = true }\n"data.sources" = { answer = false }\n',
        r"duplicate question id 'data\.sources' \(also at line 3\); keep one",
        '"data.sources" = { answer = false }',
    ),
    "duplicate through two spellings": (
        TEMPLATE_TEXT + "\n[answers.method.rl]\nanswer = true\n",
        r"question 'method\.rl' is answered twice .*; keep one",
        '[answers."method.rl"]',
    ),
    "duplicate answer key": (
        TEMPLATE_TEXT.replace(
            '[answers."data.selection"]\nanswer = false\n',
            '[answers."data.selection"]\nanswer = false\nanswer = true\n',
        ),
        r"duplicate key 'answer' for question 'data\.selection' \(also at line \d+\)",
        "answer = true",
    ),
    "string answer": (
        TEMPLATE_TEXT.replace(
            '[answers."open.paper"]\nanswer = false', '[answers."open.paper"]\nanswer = "yes"'
        ),
        r"question 'open\.paper': answer must be true or false \(a TOML boolean, no quotes\), "
        r"got \"yes\" \(a string\)",
        'answer = "yes"',
    ),
    "integer answer": (
        TEMPLATE_TEXT.replace('[answers."open.paper"]\nanswer = false', '[answers."open.paper"]\nanswer = 1'),
        r"answer must be true or false .*got 1 \(an integer\)",
        "answer = 1",
    ),
    "bare boolean instead of a table": (
        'name = "x"\n[answers]\n"data.sources" = true\n',
        r"question 'data\.sources' must be a table \[answers\.\"data\.sources\"\] "
        r"with answer = true or false",
        '"data.sources" = true',
    ),
    "dotted keys without answer": (
        'name = "x"\n[answers]\ndata.sources.evidence = "https://example.org"\n',
        r"question 'data\.sources' has no answer",
        'data.sources.evidence = "https://example.org"',
    ),
    "answers not a table": (
        'name = "x"\nanswers = 3\n',
        r"answers must be tables like \[answers\.\"data\.sources\"\]",
        None,
    ),
    "malformed TOML": (
        TEMPLATE_TEXT.replace('answer = false\nevidence = ""\n', 'answer =\nevidence = ""\n', 1),
        r"malformed TOML: .*\(at line \d+, column \d+\)",
        "answer =",
    ),
    "unknown key in a question": (
        TEMPLATE_TEXT.replace('evidence = ""', 'evidense = ""', 1),
        r"unknown key 'evidense' in \[answers\.\"data\.sources\"\]; did you mean 'evidence'\?",
        '[answers."data.sources"]',
    ),
    "non-string evidence": (
        TEMPLATE_TEXT.replace('evidence = ""', "evidence = 3", 1),
        r"question 'data\.sources': evidence must be a string, got 3 \(an integer\)",
        "evidence = 3",
    ),
    "unknown top-level key": (
        "nmae = 'x'\n" + TEMPLATE_TEXT,
        r"unknown top-level key 'nmae'; did you mean 'name'\?",
        None,
    ),
    "empty name": (filled(None, set()), r"set name = \"\.\.\.\" at the top", None),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_are_one_line_with_the_file_and_exit_non_zero(tmp_path: Path, case: str) -> None:
    text, pattern, needle = ERRORS[case]
    lines = text.splitlines()
    where = (
        f"{tmp_path / 'mine.toml'}:{lines.index(needle) + 1}: " if needle else f"{tmp_path / 'mine.toml'}: "
    )
    for argv in (["score"], ["score", "--json"], ["leaderboard"]):
        result = run(tmp_path, *argv, text=text)
        assert result.exit_code == 1, (case, argv, result.output)
        assert result.stdout == ""
        message = result.stderr.splitlines()
        assert len(message) == 1, message
        assert message[0].startswith(f"Error: {where}"), (message[0], where)
        found = re.search(pattern, message[0])
        assert found, message[0]
        if case.startswith("duplicate table"):  # the first of the two tables
            assert lines[int(found[1]) - 1] == '[answers."method.rl"]'


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "score", str(tmp_path / "nope.toml"))
    assert result.exit_code == 1
    assert (
        result.stderr == f"Error: {tmp_path / 'nope.toml'}: file not found; copy configs/tti-template.toml "
        "and fill it in\n"
    )


# ---- packaging ---------------------------------------------------------------------------------------------


def test_every_command_has_help() -> None:
    assert transparency.help
    for name, command in transparency.commands.items():
        assert command.help and command.help.strip(), name
        assert CliRunner().invoke(transparency, [name, "--help"]).exit_code == 0


def test_import_does_not_pull_heavy_libraries() -> None:
    code = (
        "import sys, harness.transparency_cli; "
        "bad = [m for m in ('torch', 'transformers', 'vllm', 'ray') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
