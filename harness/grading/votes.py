"""Vote keys: cluster one problem's distinct answers by the same equivalence that grades them.

Answers equal to the gold share the key "normalised gold". Each other parsed answer joins the first earlier
cluster whose first answer it is equivalent to, else starts its own cluster keyed by its normalised text.
Pairs of plain numbers are decided in-process (:mod:`.fast`), and so are pairs whose numeric signatures
surely differ (:mod:`.signature`); the other pairs between cluster heads go to a worker in one round trip, at most :data:`MAX_CLUSTER_COMPARISONS` per problem (pairs beyond count as
different). Policy: unparsable and timed-out answers still vote, each under its own normalised string (so
eight identical unparsable answers can outvote a scattered correct one, as a human reading the samples would
count them); they are never compared with others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

from harness.grading.equivalence import Verdict
from harness.grading.fast import fast_verdict
from harness.grading.signature import Signature, surely_different

# At most this many worker comparisons among one problem's wrong answers (each may cost up to the deadline
# on hostile input).
MAX_CLUSTER_COMPARISONS = 64
# Only the first this many distinct wrong answers of a problem are clustered; later ones keep their own key
# (bounds the in-process pair checks of huge runs).
MAX_CLUSTER_ANSWERS = 256
# Vote keys longer than this are shortened to a prefix plus a hash, so keys stay short and stable.
MAX_KEY_CHARS = 80

Check = tuple[str, str, str]  # (normalised answer, normalised gold or other answer, answer type)
Resolve = Callable[[Sequence[Check]], list[Verdict]]


def short_key(text: str) -> str:
    """A vote key for a normalised answer: the text itself, or a prefix and a hash when it is long."""
    if len(text) <= MAX_KEY_CHARS:
        return text
    digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:12]
    return f"{text[:MAX_KEY_CHARS - 14]}~{digest}"


def _equal(v: Verdict | None) -> bool:
    return v is not None and v.status == "ok" and v.equal


def _first_match(norm: str, heads: list[str], answer_type: str,
                 decided: Callable[[str, str], Verdict | None]) -> str | None:
    """The first cluster head that ``norm`` is equivalent to, or None."""
    return next((head for head in heads if _equal(decided(norm, head))), None)


def vote_keys(gold: str, answer_type: str, verdicts: Mapping[str, Verdict], resolve: Resolve,
              signature_of: Callable[[str], Signature | None]) -> dict[str, str]:
    """Vote keys for a problem's distinct normalised answers (``verdicts``: answer -> verdict against
    ``gold``, in order of first appearance). ``resolve`` runs checks that need a worker; ``signature_of``
    gives an answer's :mod:`.signature` where known (pairs whose signatures surely differ skip the worker).
    Returns answer -> key for every answer in ``verdicts``."""
    keys = {norm: short_key(gold) for norm, v in verdicts.items() if _equal(v)}
    wrong = [norm for norm, v in verdicts.items() if v.status == "ok" and not v.equal][:MAX_CLUSTER_ANSWERS]
    # Phase 1: clusters by in-process verdicts only.
    heads: list[str] = []
    member_of: dict[str, str] = {}
    for norm in wrong:
        head = _first_match(norm, heads, answer_type, lambda a, b: fast_verdict(a, b, answer_type))
        if head is None:
            heads.append(norm)
        member_of[norm] = head or norm
    # Phase 2: the head pairs only a worker can decide, in one round trip; then merge heads in order.
    pairs = [(later, earlier, answer_type) for j, later in enumerate(heads) for earlier in heads[:j]
             if fast_verdict(later, earlier, answer_type) is None
             and not surely_different(signature_of(later), signature_of(earlier))][:MAX_CLUSTER_COMPARISONS]
    by_worker = dict(zip(pairs, resolve(pairs))) if pairs else {}
    merged: dict[str, str] = {}
    kept: list[str] = []
    for head in heads:
        target = _first_match(head, kept, answer_type, lambda a, b: by_worker.get((a, b, answer_type)))
        if target is None:
            kept.append(head)
        merged[head] = target or head
    for norm in wrong:
        keys[norm] = short_key(merged[member_of[norm]])
    for norm in verdicts:
        keys.setdefault(norm, short_key(norm))
    return keys
