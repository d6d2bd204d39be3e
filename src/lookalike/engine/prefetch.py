"""Work that runs ahead in threads but is consumed in order: the indexers' read/decode stage
(files, scans, catalogue rows) overlapped with the model on the calling thread."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def prefetched(pool: ThreadPoolExecutor, work: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[R]:
    """`work(item)` for each item, submitted to `pool` at most `ahead` items before the one the
    caller is at (bounded read-ahead keeps memory flat on huge inputs), yielded in order."""
    queue: deque[Future[R]] = deque()
    it = iter(items)
    for item in it:
        queue.append(pool.submit(work, item))
        if len(queue) >= ahead:
            break
    while queue:
        result = queue.popleft().result()
        nxt = next(it, None)
        if nxt is not None:
            queue.append(pool.submit(work, nxt))
        yield result
