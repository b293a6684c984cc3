"""Synthetic (answer, gold) pairs shaped like a real run: every MATH500 gold with N sampled final answers.

Each problem's answers are drawn (seeded) from variants of its gold, with weights that mimic a decent model:

* the gold as written (45%);
* equivalent rewrites (20%): ``\\dfrac``, ``a/b``, spacing and ``\\left(``, ``x = gold``, a unit, ``n.0``, the
  exact decimal of a terminating fraction, a 10-digit decimal of any number, lower-cased text;
* wrong neighbours (25%, one of them popular): n +- 1, 2n, -n, a changed numerator, ``gold + 1``, ``2 gold``;
* rounded decimals (5%): three significant digits (wrong under the exact policy);
* junk (5%): prose, a cut-off ``\\frac{1}{``, an empty box, a random integer.

Used by bench/bench_grader.py; deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
import re
from fractions import Fraction
from pathlib import Path

_INT = re.compile(r"^-?\d+$")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
_JUNK = ["I don't know", "\\frac{1}{", "", "x^{", "no solution", "\\text{see above}"]


def _number(gold: str) -> Fraction | None:
    """The exact value of an integer, decimal or ``\\frac{a}{b}`` gold, else None."""
    if _INT.match(gold):
        return Fraction(int(gold))
    if re.fullmatch(r"-?\d*\.\d+", gold):
        return Fraction(gold)
    match = _FRAC.match(gold)
    if match:
        value = Fraction(int(match[2]), int(match[3]))
        return -value if match[1] else value
    return None


def _decimal(value: Fraction, digits: int) -> str:
    """``value`` printed with ``digits`` significant digits."""
    return f"{float(value):.{digits}g}"


def _equivalents(gold: str, value: Fraction | None) -> list[str]:
    out = [gold.replace("\\frac", "\\dfrac"), f"x = {gold}", f" {gold} ", gold.replace(",", ", ")]
    if gold.startswith("(") and gold.endswith(")"):
        out.append("\\left" + gold[:-1] + "\\right)")
    if gold.startswith("\\text{"):
        out.append(gold[6:-1].lower())
    if value is not None:
        out.append(_decimal(value, 10))
        if value.denominator == 1:
            out += [f"{value.numerator}.0", f"{value.numerator} \\text{{ units}}"]
        else:
            out.append(f"{value.numerator}/{value.denominator}")
            if 10**12 % value.denominator == 0:
                out.append(str(float(value)))
    elif "\\frac" in gold:
        out.append(re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", gold))
    return [v for v in dict.fromkeys(out) if v != gold]


def _neighbours(gold: str, value: Fraction | None, rng: random.Random) -> list[str]:
    if value is not None and value.denominator == 1:
        n = value.numerator
        return [str(n + 1), str(n - 1), str(2 * n), str(-n if n else 7), str(n + 10)]
    if value is not None:
        num, den = value.numerator, value.denominator
        return [f"\\frac{{{num + 1}}}{{{den}}}", f"\\frac{{{den}}}{{{num}}}" if num else "1",
                f"\\frac{{{num}}}{{{den + 1}}}", str(rng.randint(0, 100))]
    return [f"{gold} + 1", f"2\\left({gold}\\right)", f"-\\left({gold}\\right)", str(rng.randint(0, 100))]


def answers_for(gold: str, n: int, rng: random.Random) -> list[str]:
    """``n`` sampled final answers for one gold (see the module docstring for the mixture)."""
    value = _number(gold)
    equivalents = _equivalents(gold, value) or [gold]
    neighbours = _neighbours(gold, value, rng)
    popular = neighbours[0]
    rounded = [_decimal(value, 3)] if value is not None and value.denominator != 1 else [str(rng.randint(0, 999))]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.45:
            out.append(gold)
        elif r < 0.65:
            out.append(rng.choice(equivalents))
        elif r < 0.77:
            out.append(popular)
        elif r < 0.90:
            out.append(rng.choice(neighbours))
        elif r < 0.95:
            out.append(rng.choice(rounded))
        else:
            out.append(rng.choice(_JUNK + [str(rng.randint(0, 10**6))]))
    return out


def load_golds(path: Path) -> list[tuple[str, str]]:
    """(problem id, gold answer) of every row of a benchmark JSONL file."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(str(r["id"]), str(r["answer"])) for r in rows]


def synthetic_run(golds: list[tuple[str, str]], per_problem: int, seed: int) -> list[tuple[str, str, str]]:
    """(problem id, gold, answer) triples: ``per_problem`` answers for every gold, seeded."""
    rng = random.Random(seed)
    return [(pid, gold, answer) for pid, gold in golds for answer in answers_for(gold, per_problem, rng)]
