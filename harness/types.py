"""Every type that crosses a stage boundary.

Frozen dataclasses with validation only; the logic lives in the stage modules. The pipeline is
``Problem -> Completion -> Grade -> CurvePoint``, with ``SamplingSpec`` and ``RunManifest`` saying how a run
was made. See DESIGN.md for the definitions the numbers depend on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

AnswerType = Literal["integer", "math", "text"]
ANSWER_TYPES: tuple[str, ...] = ("integer", "math", "text")

GradeStatus = Literal["ok", "no_answer", "unparsable", "timeout"]
GRADE_STATUSES: tuple[str, ...] = ("ok", "no_answer", "unparsable", "timeout")

# "stop": the model ended the answer (EOS or a stop string); "length": max_tokens was hit;
# None: the source did not say (imported outputs).
FinishReason = Literal["stop", "length"]
FINISH_REASONS: tuple[str, ...] = ("stop", "length")

# "rm": weighted majority vote, each sample's vote weighted by a stored per-sample score (RM@k).
Method = Literal["maj", "pass", "mean", "truncated", "forced", "rm"]
METHODS: tuple[str, ...] = ("maj", "pass", "mean", "truncated", "forced", "rm")


@dataclass(frozen=True)
class Problem:
    """One benchmark problem.

    ``answer`` is the gold answer as written by the benchmark (a string, LaTeX allowed).
    ``metadata`` holds benchmark-specific fields (subject, level, year, ...); treat it as read-only.
    """

    id: str
    benchmark: str
    question: str
    answer: str
    answer_type: AnswerType = "math"
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("problem id must be a non-empty string")
        if self.answer_type not in ANSWER_TYPES:
            raise ValueError(f"answer_type must be one of {ANSWER_TYPES}, got {self.answer_type!r}")


@dataclass(frozen=True)
class SamplingSpec:
    """How each sample is drawn. ``max_tokens`` has no default on purpose (vLLM's is 16).

    temperature: in [0, 2]; 0 means greedy (then only one sample per problem makes sense).
    top_p: in (0, 1]. top_k: -1 disables it, else >= 1.
    stop: extra stop strings, on top of the model's end-of-sequence token.
    seed: the base seed; sample i of a problem gets ``samplers.base.sample_seed(seed, problem_id, i)``.
    """

    max_tokens: int
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = -1
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {self.max_tokens!r}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k != -1 and self.top_k < 1:
            raise ValueError(f"top_k must be -1 (off) or >= 1, got {self.top_k}")
        if not 0 <= self.seed < 2**31:
            raise ValueError(f"seed must be in [0, 2**31), got {self.seed}")
        if isinstance(self.stop, (str, list)):
            object.__setattr__(self, "stop", tuple([self.stop] if isinstance(self.stop, str) else self.stop))


@dataclass(frozen=True)
class Completion:
    """One sampled response to one problem.

    ``output_tokens`` counts every generated token, reasoning tokens included, as the engine counted them
    (None when an imported file has no counts). ``token_ids`` are kept when the backend has them, so a
    sample can later be cut at a token boundary.
    """

    problem_id: str
    sample_index: int
    seed: int | None
    text: str
    output_tokens: int | None
    finish_reason: FinishReason | None
    token_ids: tuple[int, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.sample_index < 0:
            raise ValueError(f"sample_index must be >= 0, got {self.sample_index}")
        if self.output_tokens is not None and self.output_tokens < 0:
            raise ValueError(f"output_tokens must be >= 0, got {self.output_tokens}")
        if self.finish_reason is not None and self.finish_reason not in FINISH_REASONS:
            raise ValueError(f"finish_reason must be one of {FINISH_REASONS} or None, got {self.finish_reason!r}")


@dataclass(frozen=True)
class Grade:
    """The grader's verdict on one completion.

    ``vote_key``: samples whose answers are equivalent share a key; None when the sample has no answer
    (it abstains from voting). ``correct`` is False unless status is "ok" and the answer matches the gold.
    ``reason`` says why, in a few words.
    """

    problem_id: str
    sample_index: int
    extracted: str | None
    vote_key: str | None
    correct: bool
    status: GradeStatus
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in GRADE_STATUSES:
            raise ValueError(f"status must be one of {GRADE_STATUSES}, got {self.status!r}")
        if self.correct and self.status != "ok":
            raise ValueError(f"a grade with status {self.status!r} cannot be correct")


@dataclass(frozen=True)
class CurvePoint:
    """One point of a scaling curve. ``accuracy`` and the CI bounds are fractions in [0, 1].

    ``tokens_per_problem`` is k x the mean output tokens per sample (averaged over problems); None when the
    run has no token counts. ``cap`` is the token cap of a truncated/forced curve, None when uncapped.
    """

    method: Method
    k: int
    cap: int | None
    tokens_per_problem: float | None
    accuracy: float
    ci_low: float
    ci_high: float
    truncation_rate: float | None = None
    no_answer_rate: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        for name in ("accuracy", "ci_low", "ci_high"):
            value = getattr(self, name)
            if not -1e-9 <= value <= 1 + 1e-9:
                raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")


@dataclass(frozen=True)
class BudgetPoint:
    """Accuracy at a requested budget (average output tokens per problem).

    ``reached`` is False when the budget lies outside the curve (above the largest k, or below one sample);
    then accuracy and CI are None and ``note`` says why. Otherwise ``k_low``/``k_high`` are the neighbouring
    curve points the value was interpolated between.
    """

    budget: float
    method: Method
    reached: bool
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    k_low: int | None = None
    k_high: int | None = None
    note: str = ""


@dataclass(frozen=True)
class FrontierPoint:
    """A vertex of the frontier: k samples per problem, each cut at ``cap`` tokens (None: uncapped).

    ``method`` is the curve the point comes from ("maj" uncapped, "truncated" or "forced" capped).
    ``tokens_per_problem`` is the average cost; accuracy and CI bounds are fractions.
    """

    method: Method
    cap: int | None
    k: int
    tokens_per_problem: float
    accuracy: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class FrontierBudget:
    """The best mix at a budget: per problem, ``low`` with probability 1 - share_high, else ``high``.

    ``reached`` is False (accuracy None, ``note`` says why) when the budget is below the cheapest frontier
    point or above the dearest; ``low`` == ``high`` when a frontier vertex costs exactly the budget.
    """

    budget: float
    reached: bool
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    low: FrontierPoint | None = None
    high: FrontierPoint | None = None
    share_high: float | None = None
    note: str = ""


@dataclass(frozen=True)
class MatchedBudget:
    """One row of the headline table: a published result with a token count, and this run at those tokens.

    ``curve`` names what the run's accuracy was read from ("maj": the Maj@k budget curve; "frontier": the
    frontier over caps and k). Accuracies are fractions; None when not reached.
    """

    baseline: str
    baseline_tokens: float
    baseline_accuracy: float
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    reached: bool
    curve: str = "maj"
    note: str = ""


@dataclass(frozen=True)
class RunManifest:
    """Everything needed to reproduce a run, stored in the run's SQLite file and copied into every report.

    ``engine_settings`` are the settings as actually used by the backend, not as requested. ``sampling`` is
    None for imported outputs whose sampling settings the source does not state.
    """

    model: str
    backend: str
    sampling: SamplingSpec | None
    samples_per_problem: int
    benchmark: str
    benchmark_version: str
    benchmark_hash: str
    prompt_name: str
    prompt_version: str
    prompt_template: str
    prompt_hash: str
    grader_version: str
    model_revision: str | None = None
    engine_settings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    problem_ids_hash: str = ""
    package_versions: Mapping[str, str] = field(default_factory=dict, hash=False)
    git_commit: str | None = None
    git_dirty: bool | None = None
    command: str = ""
    machine: Mapping[str, Any] = field(default_factory=dict, hash=False)
    started_at: str = ""
    finished_at: str | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.samples_per_problem < 1:
            raise ValueError(f"samples_per_problem must be >= 1, got {self.samples_per_problem}")


@dataclass(frozen=True)
class RunReport:
    """What a report is made of: the run's manifest and its scaling numbers (made by the analysis step).

    ``points`` holds every curve point of every method (maj, pass, mean, ...), k = 1..samples_per_problem.
    ``token_note`` is None when the run has token counts, else a sentence saying why the token axis is
    missing (then every point's ``tokens_per_problem`` is None and budgets are not reached).
    ``status_counts`` counts grades by status; ``n_boot``/``ci_seed`` say how the CIs were made.
    ``samples`` is a small browsable selection: dicts with problem_id, sample_index, extracted, vote_key,
    correct, status, output_tokens, finish_reason, text (possibly shortened).
    ``frontier``: the upper envelope over (cap, k) (empty without a token axis); ``frontier_budgets``: the
    winning mix at each requested budget; ``matched``: the headline table against published baselines.
    ``extras``: JSON-ready details of optional analyses (cap sweep with the source's own labels, RM@k).
    """

    manifest: RunManifest
    n_problems: int
    samples_per_problem: int
    points: tuple[CurvePoint, ...]
    budgets: tuple[BudgetPoint, ...]
    status_counts: Mapping[str, int] = field(default_factory=dict, hash=False)
    token_note: str | None = None
    n_boot: int = 1000
    ci_seed: int = 0
    interpolation_rule: str = ""
    samples: tuple[Mapping[str, Any], ...] = ()
    frontier: tuple[FrontierPoint, ...] = ()
    frontier_budgets: tuple[FrontierBudget, ...] = ()
    matched: tuple[MatchedBudget, ...] = ()
    extras: Mapping[str, Any] = field(default_factory=dict, hash=False)
