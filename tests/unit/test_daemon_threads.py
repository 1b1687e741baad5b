"""The daemon threads that run sync tasks: reused between attempts, never a bounded
pool's slot held by a task that does not return, and gone once idle."""

from __future__ import annotations

import threading

from taskwheel.worker.execution import DaemonThreads
from waiting import wait_for


def run_and_wait(threads: DaemonThreads) -> int:
    """Run one item; the ident of the thread that ran it."""
    ran: list[int] = []
    done = threading.Event()

    def item() -> None:
        ran.append(threading.get_ident())
        done.set()

    threads.submit(item)
    assert done.wait(5)
    return ran[0]


def test_a_thread_that_finished_its_attempt_runs_the_next_one() -> None:
    threads = DaemonThreads()
    first = run_and_wait(threads)
    wait_for(lambda: threads.idle == 1, what="the thread back to idle")
    assert run_and_wait(threads) == first
    assert run_and_wait(threads) == first


def test_a_task_that_never_returns_holds_only_its_own_thread() -> None:
    threads = DaemonThreads()
    stuck = threading.Event()
    release = threading.Event()

    def never_returns() -> None:
        stuck.set()
        release.wait(30)

    threads.submit(never_returns)
    assert stuck.wait(5)
    # The next attempts run meanwhile, on another thread, and always the same one.
    others = {run_and_wait(threads) for _ in range(5)}
    assert len(others) == 1
    release.set()


def test_as_many_threads_as_attempts_run_at_once_and_all_are_daemons() -> None:
    threads = DaemonThreads()
    count = 6
    barrier = threading.Barrier(count + 1)
    seen: list[threading.Thread] = []

    def together() -> None:
        seen.append(threading.current_thread())
        barrier.wait(10)  # only passes once every attempt runs at the same time

    for _ in range(count):
        threads.submit(together)
    barrier.wait(10)
    assert len({thread.ident for thread in seen}) == count
    assert all(thread.daemon for thread in seen)


def test_an_idle_thread_ends_after_the_idle_timeout() -> None:
    threads = DaemonThreads(idle_timeout=0.05)
    ident = run_and_wait(threads)
    wait_for(lambda: all(t.ident != ident for t in threading.enumerate()),
             what="the idle thread to end")
    assert threads.idle == 0
    run_and_wait(threads)  # a new one starts for the next attempt ...
    wait_for(lambda: threads.idle == 1, what="the new thread back to idle")  # ... and stays
