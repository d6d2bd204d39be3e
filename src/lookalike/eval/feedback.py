"""Relevance feedback, simulated as the web page does it (web/static/feedback.js): search by an
indexed image, click thumbs up / down on a few of the results, search again with them as
`ids` / `not_ids`. Class labels stand in for the user's judgement; precision@k before and
after one round of clicks measures what the feedback is worth.

The simulated user makes `clicks` clicks on the first page of results, reading it top down:
a thumbs down on the first result of the wrong class (when there is one), thumbs up on the
first results of the right class for the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

# POST /api/search with this JSON body -> the result ids, best first (or an equivalent call).
SearchFn = Callable[[dict], list[int]]


@dataclass
class FeedbackRun:
    before: float  # mean precision@k of the query image alone
    after: float  # mean precision@k after one round of clicks
    queries: int

    @property
    def ratio(self) -> float:
        return self.after / self.before if self.before else float("inf")


def choose_clicks(results: Sequence[int], relevant: Callable[[int], bool], clicks: int = 3) -> tuple[list[int], list[int]]:
    """(thumbs up, thumbs down) on one page of results, as the simulated user clicks them."""
    right = [i for i in results if relevant(i)]
    wrong = [i for i in results if not relevant(i)]
    up = right[: clicks - min(1, len(wrong))]
    down = wrong[: clicks - len(up)]  # one, or more when too few results are right
    return up, down


def feedback_round(search: SearchFn, queries: Sequence[int], label: dict[int, int], k: int = 10,
                   clicks: int = 3) -> FeedbackRun:
    """Mean precision@k over `queries` (indexed ids) before and after one round of `clicks`."""
    before, after = [], []
    for q in queries:
        def relevant(i: int, q: int = q) -> bool:
            return label[i] == label[q]

        first = search({"id": q, "k": k})
        before.append(np.mean([relevant(i) for i in first]) if first else 0.0)
        up, down = choose_clicks(first, relevant, clicks)
        body: dict = {"ids": [q, *up], "k": k}
        if down:
            body["not_ids"] = down
        second = search(body)
        after.append(np.mean([relevant(i) for i in second]) if second else 0.0)
    return FeedbackRun(float(np.mean(before)), float(np.mean(after)), len(queries))
