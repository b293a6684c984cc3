"""The grader: extract the final answer, normalise and parse it safely, compare it with the gold answer in
killable worker processes, and cluster answers into vote keys. See DESIGN.md ("Grader").

Importing this package is cheap: sympy and the LaTeX parser load inside the worker processes.
"""

from harness.grading.equivalence import Verdict
from harness.grading.extract import Extraction, extract_answer
from harness.grading.grader import GRADER_VERSION, Grader, grade_completions

__all__ = ["GRADER_VERSION", "Extraction", "Grader", "Verdict", "extract_answer", "grade_completions"]
