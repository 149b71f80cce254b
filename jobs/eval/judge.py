"""An optional LLM judge: another deployment grades each answer 1-5 against the job's rubric.

The judge sees the question, the reference and the answer; its reply's first digit 1-5 becomes
(n - 1) / 4. Its answers go through the same store as every other answer, so judging resumes too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from jobs.eval.examples import Example

SYSTEM = ("You grade answers of an assistant. Follow the rubric strictly. Reply with one digit from 1 (fails the "
          "rubric) to 5 (fully meets it), then at most one sentence of reason.")


def grading_example(example: Example, answer: str, rubric: str) -> Example:
    """The judge's prompt for one answer, under the answered example's id."""
    user = (f"Rubric:\n{rubric}\n\nQuestion:\n{example.prompt_text}\n\nReference answer:\n{example.expected}\n\n"
            f"Answer to grade:\n{answer}\n\nGrade (1-5):")
    return Example(example.id, ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user}), "")


_GRADE = re.compile(r"\b([1-5])\b")


def parse_grade(reply: str) -> float:
    """0-1 from the judge's reply; an unreadable reply counts as the lowest grade."""
    match = _GRADE.search(reply)
    return (int(match.group(1)) - 1) / 4 if match else 0.0


def grading_sets(examples: Sequence[Example], answers: dict[str, list[str]], rubric: str) -> dict[str, list[Example]]:
    """role -> the judge prompts for that role's clean answers."""
    return {f"judge-{role}": [grading_example(e, a, rubric) for e, a in zip(examples, preds, strict=True)]
            for role, preds in answers.items()}
