"""The killable worker pool: deadlines, memory limits, replacement after a kill, use from threads and asyncio.

Short deadlines keep the suite fast; the default (5 s) is exercised by the grader itself.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator

import pytest

from harness.grading import Grader
from harness.grading.pool import PoolError, WorkerPool

DEADLINE = 1.5
# name -> (answer, gold). Each must end as "timeout" or "unparsable" within the deadline + 1 s (sizes that are
# visible before evaluating are refused at once; the rest are killed at the deadline).
PATHOLOGICAL = {
    "power tower": ("9^{9^{9^{9}}}", "5"),
    "huge factorial": ("(10^8)!", "5"),
    "20000 nested parentheses": ("(" * 20_000 + "1" + ")" * 20_000, "5"),
    "1 MB string": ("7" * 1_000_000, "5"),
    "deep but short nesting": ("(" * 900 + "1" + ")" * 900, "5"),
    "300 nested fractions": ("\\frac{1}{" * 300 + "2" + "}" * 300, "5"),
    "300 nested fractions, short": ("\\frac{" * 300 + "1" + "}{2}" * 300, "5"),
    "huge Python-style power": ("2**10**10", "5"),
    "tower in a tuple": ("(1, 9^{9^{9^{9}}})", "(1, 5)"),
    "iterated factorial": ("9!!!!", "5"),
    "iterated factorial in a tuple": ("(1, 9!!!!)", "(1, 5)"),
}


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(2, deadline_s=DEADLINE, memory_mb=768) as p:
        yield p


@pytest.fixture(scope="module")
def grader() -> Iterator[Grader]:
    with Grader(workers=2, deadline_s=DEADLINE) as g:
        yield g


def test_run_returns_results(pool: WorkerPool) -> None:
    assert pool.run(divmod, 17, 5) == (3, 2)


def test_overrun_is_killed_and_worker_replaced(pool: WorkerPool) -> None:
    before = set(pool.pids())
    start = time.monotonic()
    with pytest.raises(PoolError) as info:
        pool.run(time.sleep, 30, deadline_s=0.3)
    assert info.value.kind == "timeout"
    assert time.monotonic() - start < 0.3 + 1.0
    after = set(pool.pids())
    assert len(after) == 2 and after != before  # one worker was replaced
    assert pool.run(divmod, 9, 2) == (4, 1)  # and the pool still works
    assert pool.run(divmod, 9, 4) == (2, 1)


def test_memory_limit_and_crash_are_reported(pool: WorkerPool) -> None:
    with pytest.raises(PoolError) as info:
        pool.run(bytearray, 4 * 1024**3)  # 4 GiB > the 768 MiB limit
    assert info.value.kind in ("memory", "died")
    with pytest.raises(PoolError) as info:
        pool.run(os._exit, 3)
    assert info.value.kind == "died"
    with pytest.raises(PoolError) as info:
        pool.run(int, "not a number")
    assert info.value.kind == "error" and "ValueError" in str(info.value)
    assert pool.run(divmod, 7, 7) == (1, 0)


def test_run_many_keeps_order_and_times_each_call(pool: WorkerPool) -> None:
    assert pool.run_many(divmod, [(7, 2), (9, 4), (1, 1)]) == [(3, 1), (2, 1), (1, 0)]
    start = time.monotonic()
    results = pool.run_many(time.sleep, [(0,), (30,), (0,), (30,), (0,)], deadline_s=0.3)
    assert time.monotonic() - start < 2 * 0.3 + 2.0  # two overruns, each killed at its own deadline
    assert [r is None for r in results] == [True, False, True, False, True]  # the rest ran on replacements
    assert [r.kind for r in results if isinstance(r, PoolError)] == ["timeout", "timeout"]
    errors = pool.run_many(int, [("1",), ("x",), ("3",)])
    assert errors[0] == 1 and errors[2] == 3 and isinstance(errors[1], PoolError) and errors[1].kind == "error"
    assert pool.run_many(divmod, []) == []


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="size"):
        WorkerPool(0)
    with pytest.raises(ValueError, match="spawn"):
        WorkerPool(1, context="fork")


@pytest.mark.parametrize(("answer", "gold"), list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_pathological_answers_end_within_deadline(grader: Grader, answer: str, gold: str) -> None:
    start = time.monotonic()
    verdict = grader.check(answer, gold)
    elapsed = time.monotonic() - start
    assert elapsed < DEADLINE + 1.0
    assert not verdict.equal
    assert verdict.status in ("timeout", "unparsable"), verdict


def test_pathological_answers_from_threads(grader: Grader) -> None:
    results: dict[str, tuple[float, str]] = {}

    def work(name: str, answer: str, gold: str) -> None:
        start = time.monotonic()
        verdict = grader.check(answer + " ", gold + " ")  # a fresh cache key
        results[name] = (time.monotonic() - start, verdict.status)

    threads = [threading.Thread(target=work, args=(name, *pair)) for name, pair in PATHOLOGICAL.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == len(PATHOLOGICAL)
    # Two checks overrun (the iterated factorials) on two workers: a thread waits for at most both of them (if
    # they ran one after the other on one worker) before its own check; replacements start in the background.
    assert all(elapsed < 3 * DEADLINE + 1.0 for elapsed, _ in results.values()), results
    assert results["iterated factorial"][1] == "timeout" and results["iterated factorial in a tuple"][1] == "timeout"
    assert all(status in ("timeout", "unparsable") for _, status in results.values()), results


def test_concurrent_checks_from_many_threads(grader: Grader) -> None:
    cases = [(f"\\frac{{{n}}}{{2}}", f"{n / 2}", True) for n in range(1, 25)]
    cases += [(f"{n}", f"{n + 1}", False) for n in range(25)]
    outcomes: list[bool] = [False] * len(cases)

    def work(i: int) -> None:
        pred, gold, expected = cases[i]
        outcomes[i] = grader.check(pred, gold).equal == expected

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(outcomes)


def test_usable_from_asyncio(grader: Grader) -> None:
    async def main() -> list[bool]:
        checks = [asyncio.to_thread(grader.check, f"{k}/4", f"{k * 0.25}") for k in range(1, 9)]
        checks.append(asyncio.to_thread(grader.check, "9!!!!", "7"))
        verdicts = await asyncio.gather(*checks)
        return [v.equal for v in verdicts[:-1]] + [verdicts[-1].status == "timeout"]

    assert all(asyncio.run(main()))


def test_code_has_no_signal_timers() -> None:
    from pathlib import Path

    import harness.grading

    for path in Path(harness.grading.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "signal.alarm(" not in text and "setitimer(" not in text, path
