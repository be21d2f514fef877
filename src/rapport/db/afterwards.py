"""Work a request does once its read session has given its connection back.

A request that held its read's connection while it waited for a second one (to record the read in the
audit log) would, with as many such requests at once as the pool has connections, wait for ever: such
work waits until the read session has ended, then runs, before the answer is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Step = Callable[[], None]


@contextmanager
def reading(state: Any) -> Iterator[None]:
    """Hold the steps given :func:`after_read` with ``state`` (a request's) while the read session this
    encloses is open; run them once it has ended."""
    steps: list[Step] = []
    state.after_read = steps
    yield
    state.after_read = None
    for step in steps:
        step()


def after_read(state: Any, step: Step) -> None:
    """Do ``step``, which opens a transaction of its own, once the read session of the request whose
    ``state`` this is has ended (see :func:`reading`); at once if it holds none."""
    steps: list[Step] | None = getattr(state, "after_read", None)
    if steps is None:
        step()
    else:
        steps.append(step)
