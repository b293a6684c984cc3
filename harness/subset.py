"""Stratified problem subsets for fast CI runs: ``tts-eval run --subset N --subset-seed S``.

A subset must be the same for every checkpoint, or a paired comparison would compare different problems. So
the draw is a pure function of (benchmark sha256, N, S) and of nothing else: no global RNG, no numpy version,
no file order beyond the benchmark's own. Rule:

1. Strata: the first of ``STRATA_FIELDS`` whose metadata fields every problem has: MATH500 by subject x level
   (35 strata), AIME by contest (I / II); a benchmark with neither is one stratum.
2. Allocation: proportional, N x (stratum size) / (benchmark size), rounded by largest remainder (Hamilton):
   every stratum gets the floor of its quota, and the strata with the largest fractional parts get one more.
   Equal remainders are ordered by a hash of (benchmark sha256, S, stratum name), not alphabetically, so small
   N does not always favour the same strata.
3. Within a stratum, problems are ranked by sha256(benchmark sha256, S, problem id) and the first ones taken.
   N is not in this key, so subsets of one seed mostly nest (not always: largest-remainder rounding can give a
   stratum one fewer problem at a larger N).

The chosen problems keep the benchmark's order, so the subset's ids hash is stable too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.types import Problem

# Checked in order; the first whose fields every problem's metadata has defines the strata.
STRATA_FIELDS: tuple[tuple[str, ...], ...] = (("subject", "level"), ("contest",))


@dataclass(frozen=True)
class SubsetSpec:
    """How a subset was drawn: ``n`` of ``total`` problems with seed ``seed`` from the benchmark file with sha256
    ``benchmark_hash``, stratified by ``strata_fields`` (empty: one stratum)."""

    n: int
    seed: int
    benchmark_hash: str
    total: int
    strata_fields: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (stored with the run and copied into gate inputs)."""
        return {"n": self.n, "seed": self.seed, "benchmark_hash": self.benchmark_hash, "total": self.total,
                "strata_fields": list(self.strata_fields)}

    def describe(self) -> str:
        """One line for manifests and messages, e.g. 'subset 50 of 500 problems, seed 1, by subject x level'."""
        by = " x ".join(self.strata_fields) if self.strata_fields else "no strata"
        return f"subset {self.n} of {self.total} problems, seed {self.seed}, by {by}"


def describe_dict(data: Mapping[str, Any] | None) -> str:
    """``SubsetSpec.describe`` for a stored dict (``to_dict`` output); 'no subset' for None."""
    if not data:
        return "no subset"
    try:
        return SubsetSpec(int(data["n"]), int(data["seed"]), str(data["benchmark_hash"]), int(data["total"]),
                          tuple(data.get("strata_fields", ()))).describe()
    except (KeyError, TypeError, ValueError):
        return f"subset {dict(data)}"


def strata_fields(problems: Sequence[Problem]) -> tuple[str, ...]:
    """The metadata fields that define the strata of ``problems`` (see STRATA_FIELDS); () for one stratum."""
    for fields in STRATA_FIELDS:
        if problems and all(all(f in p.metadata for f in fields) for p in problems):
            return fields
    return ()


def _key(*parts: object) -> str:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()


def allocate(sizes: Mapping[str, int], n: int, tie_key: Mapping[str, str]) -> dict[str, int]:
    """Largest-remainder (Hamilton) allocation of ``n`` over strata of the given ``sizes``.

    Each stratum gets floor(n x size / total), then the ``n - sum(floors)`` strata with the largest fractional
    parts get one more; equal fractions are ordered by ``tie_key`` (ascending). Exact integer arithmetic, so
    the result does not depend on float rounding. Returns {stratum: count}, counts summing to n, each at
    most its size. Raises ValueError unless 0 <= n <= total.
    """
    total = sum(sizes.values())
    if not 0 <= n <= total:
        raise ValueError(f"cannot allocate {n} of {total} problems")
    floors = {s: n * size // total for s, size in sizes.items()}
    remainders = {s: n * size % total for s, size in sizes.items()}  # fractional part x total, exact
    extra = n - sum(floors.values())
    # Every remainder < total and they sum to extra x total, so at least `extra` of them are > 0, and a stratum
    # with a positive remainder has floor + 1 <= ceil(quota) <= size.
    order = sorted(sizes, key=lambda s: (-remainders[s], tie_key[s]))
    for s in order[:extra]:
        floors[s] += 1
    return floors


def draw_subset(problems: Sequence[Problem], n: int, seed: int, benchmark_hash: str) -> tuple[list[Problem], SubsetSpec]:
    """A stratified subset of ``n`` problems (module docstring), in the benchmark's order, and how it was drawn.

    ``problems`` are the benchmark's problems (all of them, so the draw depends on the benchmark alone).
    Raises ValueError unless 1 <= n <= len(problems) and seed >= 0.
    """
    if not 1 <= n <= len(problems):
        raise ValueError(f"--subset must be in [1, {len(problems)}] (the benchmark's problems), got {n}")
    if seed < 0:
        raise ValueError(f"--subset-seed must be >= 0, got {seed}")
    fields = strata_fields(problems)
    groups: dict[str, list[Problem]] = {}
    for p in problems:
        name = " / ".join(f"{f}={p.metadata[f]}" for f in fields) if fields else "all"
        groups.setdefault(name, []).append(p)
    counts = allocate({s: len(g) for s, g in groups.items()}, n,
                      {s: _key(benchmark_hash, seed, "stratum", s) for s in groups})
    chosen: set[str] = set()
    for name, group in groups.items():
        ranked = sorted(group, key=lambda p: _key(benchmark_hash, seed, p.id))
        chosen.update(p.id for p in ranked[: counts[name]])
    picked = [p for p in problems if p.id in chosen]
    if len(picked) != n:  # allocate() sums to n, so only duplicate ids can get here
        raise ValueError(f"problem ids are not unique: drew {len(picked)} problems for --subset {n}")
    return picked, SubsetSpec(n, seed, benchmark_hash, len(problems), fields)
