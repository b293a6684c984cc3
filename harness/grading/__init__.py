"""The grader: extract the final answer, normalise and parse it safely, compare it with the gold answer in
killable worker processes, and cluster answers into vote keys. See DESIGN.md ("Grader") and README ("Grading").

Modules, one job each: ``extract``/``phrases`` (the final answer of a response), ``normalise`` (one spelling),
``brackets`` (bracket-aware string helpers), ``nodes`` (the answer tree), ``parse``/``leaf``/``pyexpr`` (text to
tree, no eval), ``equivalence``/``structures``/``values`` (is it the same answer), ``fast`` (verdicts without
sympy), ``signature`` (cheap proofs of difference), ``votes`` (vote keys), ``pool`` (killable workers),
``grader`` (all of it, cached and parallel), ``cases`` (``tts-eval check``).

Importing this package is cheap: sympy and the LaTeX parser load on first parse (in the worker processes).
"""

from harness.grading.equivalence import Verdict
from harness.grading.extract import Extraction, extract_answer
from harness.grading.grader import GRADER_VERSION, Grader, grade_completions

__all__ = ["GRADER_VERSION", "Extraction", "Grader", "Verdict", "extract_answer", "grade_completions"]
