"""Threads that stand in for workers, held at exact SQL statements.

Each thread has its own database connection, so only the database (row locks,
SKIP LOCKED, unique constraints) stands between them. A thread is held with
``connection.execute_wrapper`` and released by an event; every wait is bounded,
so a broken lock fails the test instead of hanging the suite. Nothing sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection

WAIT_SECONDS = 10


class Worker:
    """Runs ``target`` in a thread with its own connection; keeps the result or the error."""

    def __init__(self, target: Callable, wrapper: Callable | None = None):
        self.target = target
        self.wrapper = wrapper
        self.result = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            if self.wrapper is None:
                self.result = self.target()
            else:
                with connection.execute_wrapper(self.wrapper):
                    self.result = self.target()
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()

    def start(self) -> Worker:
        self.thread.start()
        return self

    def join(self):
        self.thread.join(WAIT_SECONDS)
        assert not self.thread.is_alive(), "thread did not finish in time"
        if self.error is not None:
            raise self.error
        return self.result


def hold_after(fragment: str, reached: threading.Event, release: threading.Event):
    """Runs the first statement containing ``fragment``, then waits inside its transaction."""
    held = False

    def wrapper(execute, sql, params, many, context):
        nonlocal held
        result = execute(sql, params, many, context)
        if not held and fragment in sql:
            held = True
            reached.set()
            if not release.wait(WAIT_SECONDS):
                raise TimeoutError("the test never released the first worker")
        return result

    return wrapper


def signal_before(fragments: str | tuple[str, ...], reached: threading.Event):
    """Signals just before the first statement containing all ``fragments`` runs (and blocks)."""
    if isinstance(fragments, str):
        fragments = (fragments,)

    def wrapper(execute, sql, params, many, context):
        if all(fragment in sql for fragment in fragments):
            reached.set()
        return execute(sql, params, many, context)

    return wrapper
