"""A pool of worker processes that can be killed: every check runs under a hard deadline and a memory limit.

Why processes: sympy can hang or eat memory on a hostile answer (``9^{9^{9^{9}}}``, ``(10^8)!``), and a
thread cannot be stopped. Why no ``signal.alarm``/``setitimer``: they only work in the main thread. So each
check is sent to a worker over a pipe; the caller waits at most ``deadline_s`` for the reply and otherwise
SIGKILLs the worker and starts a fresh one. Workers are reused across checks and set ``RLIMIT_AS`` on
themselves. Processes come from the "forkserver" context (safe with threads, unlike "fork"), with the
grading modules preloaded so that a replacement is ready in milliseconds.

The API is blocking and thread-safe: any number of threads may call :meth:`WorkerPool.run` (one call) or
:meth:`WorkerPool.run_many` (a list of calls in one round trip, each still under its own deadline) at once;
each call holds one worker. Async code can use ``asyncio.to_thread(pool.run, ...)``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Self

log = logging.getLogger(__name__)

# How long a new worker may take to start and import the grading modules (not counted in any deadline).
STARTUP_TIMEOUT_S = 120.0
# Modules the forkserver imports once, so that every worker it forks starts with them loaded.
PRELOAD = ("sympy", "latex2sympy2_extended.latex2sympy2", "harness.grading.equivalence")
# Called in each new worker before it reports ready: one-off warm-up that must not count against a deadline.
WARM_UP = ("harness.grading.equivalence", "warm_up")


class PoolError(RuntimeError):
    """A check did not produce a result; ``kind`` says why: "timeout", "died" (the worker process ended,
    e.g. killed by the memory limit), "memory" (MemoryError inside the check) or "error" (any other
    exception inside the check; the message has its type and text)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _set_memory_limit(memory_mb: int) -> None:
    """Cap this process's address space (a no-op where RLIMIT_AS is not available)."""
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError) as err:  # e.g. macOS rejects RLIMIT_AS
        log.debug("could not set the worker memory limit: %s", err)


def _worker_main(conn: Connection, memory_mb: int) -> None:
    """Worker loop: receive (function, args), send back ("ok", result) or (kind, message); None stops it."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    module, func = WARM_UP
    getattr(importlib.import_module(module), func)()
    _set_memory_limit(memory_mb)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        func, arg_list = message
        for args in arg_list:  # one reply per call, as soon as it is ready: the parent times each one
            _reply(conn, func, args)


def _reply(conn: Connection, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Run one call and send ("ok", result) or (kind, message) back."""
    try:
        reply: tuple[str, Any] = ("ok", func(*args))
    except MemoryError:
        reply = ("memory", "memory limit exceeded")
    except RecursionError:
        reply = ("error", "RecursionError: nested too deeply")
    except Exception as err:  # noqa: BLE001 - report, never die: the worker is reused
        reply = ("error", f"{type(err).__name__}: {str(err)[:200]}")
    try:
        conn.send(reply)
    except MemoryError:
        conn.send(("memory", "memory limit exceeded"))


@dataclass
class _Worker:
    """One worker process and the parent's end of its pipe."""

    process: Any
    conn: Connection
    ready: bool = False

    def wait_ready(self) -> None:
        """Block until the worker has imported its modules (raises PoolError when it fails to start)."""
        if self.ready:
            return
        if not self.conn.poll(STARTUP_TIMEOUT_S):
            raise PoolError("died", f"grading worker did not start within {STARTUP_TIMEOUT_S:.0f} s")
        try:
            self.conn.recv()
        except (EOFError, OSError) as err:
            raise PoolError("died", f"grading worker failed to start (exit code {self.process.exitcode}); its error "
                                    "is printed above. Workers re-import the main module: run from a file or "
                                    "with -m/-c, not from stdin") from err
        self.ready = True

    def kill(self) -> None:
        """SIGKILL the process and close the pipe (idempotent)."""
        try:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=5)
        except (OSError, ValueError, AssertionError):
            pass
        self.conn.close()


def _shutdown(workers: list[_Worker]) -> None:
    """Stop every worker (used by close() and at garbage collection)."""
    for worker in workers:
        try:
            worker.conn.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + 2
    for worker in workers:
        try:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        except (OSError, ValueError, AssertionError):
            pass
        worker.kill()


class WorkerPool:
    """``size`` reusable worker processes; :meth:`run` executes one call in one of them under a deadline.

    size: number of processes (>= 1). deadline_s: default per-call deadline in seconds (> 0).
    memory_mb: address-space limit of each worker in MiB (>= 256). context: a multiprocessing start method
    that is safe with threads ("forkserver", the default, or "spawn").
    Raises ValueError on a bad setting; PoolError when the workers cannot start.
    """

    def __init__(self, size: int, deadline_s: float = 5.0, memory_mb: int = 1536,
                 context: str = "forkserver") -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
        if memory_mb < 256:
            raise ValueError(f"memory_mb must be >= 256 (sympy alone needs ~150), got {memory_mb}")
        if context not in ("forkserver", "spawn"):
            raise ValueError(f"context must be 'forkserver' or 'spawn' (safe with threads), got {context!r}")
        self.size = size
        self.deadline_s = deadline_s
        self.memory_mb = memory_mb
        self._ctx: Any = multiprocessing.get_context(context)
        if context == "forkserver":
            self._ctx.set_forkserver_preload(list(PRELOAD))
        self._start_lock = threading.Lock()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._closed = False
        self.replacements = 0
        for _ in range(size):
            self._idle.put(self._start_worker())
        for worker in list(self._all):
            worker.wait_ready()
        self._finalizer = weakref.finalize(self, _shutdown, self._all)

    def _start_worker(self) -> _Worker:
        """Start one worker process (it signals readiness over its pipe)."""
        parent, child = self._ctx.Pipe(duplex=True)
        with self._start_lock:
            process = self._ctx.Process(target=_worker_main, args=(child, self.memory_mb), daemon=True,
                                        name="tts-eval-grader")
            process.start()
            worker = _Worker(process, parent)
            self._all.append(worker)
        child.close()
        return worker

    def _replace(self, worker: _Worker) -> _Worker:
        """Kill ``worker`` and start its replacement (not waited for: the next user waits for readiness)."""
        worker.kill()
        with self._start_lock:
            if worker in self._all:
                self._all.remove(worker)
        self.replacements += 1
        return self._start_worker()

    def pids(self) -> list[int]:
        """Process ids of the current workers (for tests and diagnostics)."""
        return [w.process.pid for w in list(self._all)]

    def run(self, func: Callable[..., Any], *args: Any, deadline_s: float | None = None) -> Any:
        """Run ``func(*args)`` in a worker and return its result.

        ``func`` must be a module-level function (it is pickled by reference) and ``args`` picklable.
        ``deadline_s`` overrides the pool's default. Raises PoolError (kind "timeout", "died", "memory" or
        "error") when no result comes back; on "timeout" and "died" the worker is replaced.
        """
        result = self.run_many(func, [args], deadline_s=deadline_s)[0]
        if isinstance(result, PoolError):
            raise result
        return result

    def run_many(self, func: Callable[..., Any], arg_list: Sequence[tuple[Any, ...]],
                 deadline_s: float | None = None) -> list[Any]:
        """Run ``func(*args)`` for each ``args`` of ``arg_list`` in one worker, one after the other, each under
        its own deadline; returns the results in order, with a PoolError in place of each call that produced
        none. One round trip for the whole list; after a kill the rest continue on the replacement worker.
        """
        if self._closed:
            raise RuntimeError("WorkerPool is closed; create a new one")
        deadline = self.deadline_s if deadline_s is None else deadline_s
        results: list[Any] = []
        worker = self._idle.get()
        try:
            while len(results) < len(arg_list):
                worker, outcome = self._stream(worker, func, arg_list[len(results):], deadline, results)
                if outcome is not None:
                    results.append(outcome)
        finally:
            self._idle.put(worker)
        return results

    def _stream(self, worker: _Worker, func: Callable[..., Any], arg_list: Sequence[tuple[Any, ...]],
                deadline: float, results: list[Any]) -> tuple[_Worker, PoolError | None]:
        """Send ``arg_list`` to ``worker`` and append its replies to ``results`` until all came back (returns
        (worker, None)) or one did not: then the worker is replaced and (new worker, the PoolError) returned."""
        try:
            worker.wait_ready()
            worker.conn.send((func, list(arg_list)))
            for _ in arg_list:
                if not worker.conn.poll(deadline):
                    return self._replace(worker), PoolError("timeout", f"no result within {deadline:g} s; worker killed")
                kind, value = worker.conn.recv()
                results.append(value if kind == "ok" else PoolError(kind, str(value)))
        except (EOFError, OSError) as err:
            code = worker.process.exitcode
            error = PoolError("died", f"worker died (exit code {code}); memory limit?")
            error.__cause__ = err
            return self._replace(worker), error
        except PoolError as err:  # the worker failed to start
            return self._replace(worker), err
        return worker, None

    def close(self) -> None:
        """Stop all workers. Call it when no run() is in flight; later run() calls raise RuntimeError."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
