"""Stop signals (SIGINT, SIGTERM, SIGHUP) for the CLI's trio runs.

Inside ``run()`` the event loop takes them (trio.open_signal_receiver): a watcher task raises
KeyboardInterrupt, so the run unwinds as for Ctrl-C and every ``with Lab`` cleans up. Raised
straight from a signal handler instead, KeyboardInterrupt lands in whatever frame happens to
run; in a weakref callback (trio defers it only in ``__del__``) it is "Exception ignored" and
the process serves on (seen in CI: a ``tuntcp serve`` that ignored its SIGINT; the unit test
shows the mechanism). Outside ``run()`` (start-up, the cleanup after it) the plain handlers
stay: a second Ctrl-C there still interrupts.

A stop that has not finished 20 s after the signal dumps every thread's stack to stderr
(faulthandler), so a hung shutdown explains itself; ``forget()`` disarms that.
"""
from __future__ import annotations

import faulthandler
import signal
import sys
import threading

from .errors import leaves

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
HUNG_STOP_S = 20.0

received: list[int] = []    # the stop signals seen; the first decides the exit status (128 + n)


def stop_requested(signum: int) -> None:
    received.append(signum)
    if len(received) == 1:
        try:
            faulthandler.dump_traceback_later(HUNG_STOP_S, repeat=False, file=sys.stderr)
        except (ValueError, OSError, AttributeError):   # no usable stderr (a pytest capture, closed)
            pass


def forget() -> None:
    """The process is done stopping (or an in-process caller moves on): no stack dump."""
    faulthandler.cancel_dump_traceback_later()


def exit_status(default: int = signal.SIGINT) -> int:
    return 128 + (received[0] if received else default)


def run(fn, *args, **trio_kw):
    """``trio.run(fn, *args, **trio_kw)`` with the stop signals taken by the event loop.

    A stop signal ends the run with a bare KeyboardInterrupt (whatever the body's nurseries
    wrapped it in), after the body has unwound. Off the main thread this is trio.run itself
    (signal handlers can only be set there)."""
    import trio

    if threading.current_thread() is not threading.main_thread():
        return trio.run(fn, *args, **trio_kw)
    fired: list[int] = []
    result: list = []

    async def watch(task_status=trio.TASK_STATUS_IGNORED):
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            task_status.started()
            async for signum in signals:
                fired.append(signum)
                stop_requested(signum)
                raise KeyboardInterrupt

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(watch)
            result.append(await fn(*args))
            nursery.cancel_scope.cancel()

    try:
        trio.run(main, **trio_kw)
    except BaseException as e:
        if fired and all(isinstance(x, KeyboardInterrupt) for x in leaves(e)):
            raise KeyboardInterrupt from None
        raise
    return result[0]
