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
    precision: list[float]  # mean precision@k of the query image alone, then after each round of clicks
    queries: int

    @property
    def before(self) -> float:
        return self.precision[0]

    @property
    def after(self) -> float:
        """After the first round."""
        return self.precision[1]

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
                   clicks: int = 3, rounds: int = 1) -> FeedbackRun:
    """Mean precision@k over `queries` (indexed ids) before and after each of `rounds` rounds of
    `clicks` clicks; each round clicks on the results of the previous one and keeps the
    earlier clicks, as the page does."""
    per_round: list[list[float]] = [[] for _ in range(rounds + 1)]
    for q in queries:
        def relevant(i: int, q: int = q) -> bool:
            return label[i] == label[q]

        results = search({"id": q, "k": k})
        per_round[0].append(float(np.mean([relevant(i) for i in results])) if results else 0.0)
        up: list[int] = []
        down: list[int] = []
        for r in range(1, rounds + 1):
            more_up, more_down = choose_clicks(results, relevant, clicks)
            up, down = up + more_up, down + more_down
            body: dict = {"ids": [q, *up], "k": k}
            if down:
                body["not_ids"] = down
            results = search(body)
            per_round[r].append(float(np.mean([relevant(i) for i in results])) if results else 0.0)
    return FeedbackRun([float(np.mean(p)) for p in per_round], len(queries))
