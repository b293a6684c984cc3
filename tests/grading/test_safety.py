"""Untrusted answers never run code: crafted answers, in-process and in workers, never create a marker file;
string-parsing entry points of sympy are never reached; the grading source calls no eval/exec/sympify."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import harness.grading
from harness.cli import cli
from harness.grading import Grader
from harness.grading.equivalence import compare
from harness.types import Completion, Problem


def _chr_string(text: str) -> str:
    """``text`` as a quote-free Python expression: chr(116)+chr(111)+..."""
    return "+".join(f"chr({ord(c)})" for c in text)


def _payloads(marker: Path) -> list[str]:
    py = f"__import__('os').system('touch {marker}')"
    open_py = f"open('{marker}', 'w').write('x')"
    # Quote-free: strings built from chr(), attribute walks to reach os without naming a module in quotes.
    bare = f"__import__({_chr_string('os')}).system({_chr_string(f'touch {marker}')})"
    walk = ("().__class__.__base__.__subclasses__()[0].__init__.__globals__['sys'].modules['os']"
            f".system({_chr_string(f'touch {marker}')})")
    return [
        bare,
        walk,
        f"sqrt({bare})",  # the Python-style route
        f"7*sin({py})+1",
        f"({bare})**2",
        f"\\text{{{bare}}}",
        f"x \\in \\{{{bare}\\}}",
        f"{bare} \\leq x",
        py,
        open_py,
        f"\\text{{{py}}}",
        f"\\operatorname{{{py}}}",
        f"\\mathrm{{{py}}}",
        f"({py}, 1)",
        f"[1, {py})",
        f"\\{{{py}, 2\\}}",
        f"x = {py}",
        f"{py} \\cup [0, 1]",
        f"\\frac{{{py}}}{{2}}",
        f"\\sqrt{{{open_py}}}",
        f"\\begin{{pmatrix}} {py} \\\\ 1 \\end{{pmatrix}}",
        f"1 \\pm {py}",
        f"{py}\\%",
        "Symbol('x').__class__.__mro__[-1].__subclasses__()",
        f"lambda: {py}",
        "exec(\"import os; os.system('id')\")",
    ]


@pytest.fixture(scope="module")
def grader() -> Iterator[Grader]:
    with Grader(workers=2, deadline_s=2.0) as g:
        yield g


def test_the_payloads_are_live(tmp_path: Path) -> None:
    """The test can fail: evaluated as Python, the payloads do create the marker."""
    marker = tmp_path / "live"
    for payload in _payloads(marker)[:1] + [f"__import__('os').system('touch {marker}')"]:
        marker.unlink(missing_ok=True)
        subprocess.run([sys.executable, "-c", f"eval({payload!r})"], check=False, capture_output=True)
        assert marker.exists(), payload


def test_payloads_through_the_check_command(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payloads = _payloads(marker)
    cases = tmp_path / "cases.jsonl"
    rows = [{"pred": p, "gold": "5"} for p in payloads]
    rows += [{"pred": f"so \\boxed{{{p}}}.", "gold": p, "pred_kind": "full_response"} for p in payloads]
    cases.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["check", "--cases", str(cases), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(rows)
    single = CliRunner().invoke(cli, ["check", payloads[0], payloads[2]])
    assert single.exit_code == 1 and "normalised" in single.output
    assert not marker.exists()


def test_payloads_in_process(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for payload in _payloads(marker):
        for gold in ("5", payload, "(1, 2)", "x"):
            verdict = compare(payload, gold)
            assert not (verdict.equal and gold != payload), (payload, verdict)
        compare("5", payload)  # a hostile gold as well
    assert not marker.exists()


def test_payloads_in_workers_and_full_responses(grader: Grader, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payloads = _payloads(marker)
    for payload in payloads:
        assert not grader.check(payload, "5").equal
        grader.check(payload, "(1, 2)")
        grader.check(payload, "5", "integer")
    problem = Problem("evil", "t", "q", "(1, 2)")
    texts = [f"\\boxed{{{p}}}" for p in payloads]
    texts += [
        "\\boxed{1} then, as a check, \\boxed{" + payloads[0] + "} and finally \\boxed{(1, 2)}",  # last box
        "\\boxed{" + payloads[0] + "}, \\boxed{" + payloads[2] + "}",  # a run of boxes: a list answer
        "The final answer is " + payloads[1] + ".",
        "So the result is $" + payloads[3] + "$.",  # the final-sentence fallback
        "$" + payloads[4] + "$",  # math only
    ]
    grades = grader.grade(problem, [Completion("evil", i, None, t, None, None) for i, t in enumerate(texts)])
    n = len(payloads)
    assert grades[n].correct and not any(g.correct for i, g in enumerate(grades) if i != n)
    assert not marker.exists()


def test_sympy_string_parsing_is_never_reached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sympify(str) goes through sympy.parsing.sympy_parser.parse_expr; make any such call fail loudly."""
    import latex2sympy2_extended.latex2sympy2 as l2s
    from sympy.parsing import sympy_parser

    calls: list[str] = []

    def forbidden(text: object, *args: object, **kwargs: object) -> None:
        calls.append(repr(text))
        raise AssertionError(f"parse_expr reached with {text!r}")

    monkeypatch.setattr(sympy_parser, "parse_expr", forbidden)
    monkeypatch.setattr(l2s, "parse_expr", forbidden)
    import sympy

    with pytest.raises(AssertionError):  # the trap works: a string sympify would be caught
        sympy.sympify("1 + 1")
    calls.clear()
    answers = _payloads(tmp_path / "m") + [
        "0.5", "1,000", "12,345.6", "1.5E3", "3.14", "\\frac{1}{2}", "2^{10}", "x^2+2x+1", "(1,2)", "[0.5, 1)",
        "\\{1, 2\\}", "10\\%", "1 \\pm \\sqrt{3}", "\\begin{pmatrix} 0.5 \\\\ 1 \\end{pmatrix}", "x \\geq 2.5",
        "\\sin(30^\\circ)", "1e5", "00012", "1{,}000", "918\\frac{1}{2}",
        "sqrt(2)/2", "7*sin(pi*x/5)+1", "x**2 + 1e3", "4:30 p.m.", "p=5,q=2;p=7,q=2", "0.\\overline{3}", "x'",
        "1 \\leq |z| \\leq 2", "no solution", "\\begin{pmatrix}1\\\\2\\end{pmatrix} + \\begin{pmatrix}1\\\\2\\end{pmatrix}",
    ]
    for answer in answers:
        for gold in ("0.5", "x^2 + 2x + 1", "(1, 2)"):
            compare(answer, gold)
            compare(gold, answer)
    assert calls == []


def _calls_in(path: Path) -> set[str]:
    """Every call in a Python source file, as ``name`` or ``obj.name`` (``re.compile`` is not ``compile``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else "?"
                names.add(f"{owner}.{func.attr}")
    return names


def test_grading_source_has_no_string_evaluation() -> None:
    forbidden = {"eval", "exec", "compile", "sympify", "parse_expr", "lambdify", "S", "N", "sympy.sympify",
                 "sympy.parse_expr", "sympy.lambdify", "sympy.S", "signal.alarm", "signal.setitimer"}
    checked = 0
    for path in Path(harness.grading.__file__).parent.glob("*.py"):
        found = _calls_in(path) & forbidden
        assert not found, f"{path.name} calls {found}"
        checked += 1
    assert checked >= 15
    assert "sympy.N" in _calls_in(Path(harness.grading.__file__).parent / "values.py")  # the scan sees calls
