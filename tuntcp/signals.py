"""Stop signals (SIGINT, SIGTERM, SIGHUP) for the CLI's trio runs.

Inside ``run()`` the event loop takes them (trio.open_signal_receiver): a watcher task raises
KeyboardInterrupt, so the run unwinds as for Ctrl-C and every ``with Lab`` cleans up. Raised
straight from a signal handler instead, KeyboardInterrupt lands in whatever frame happens to
run; in a weakref callback (trio defers it only in ``__del__``) it is "Exception ignored" and
the process serves on (seen in CI: a ``tuntcp serve`` that ignored its SIGINT; the unit test
shows the mechanism). Outside ``run()`` (start-up, the cleanup after it) the plain handlers
stay: a second Ctrl-C there still interrupts.

Outside ``run()`` the CLI arms a wakeup pipe (``arm()``): Python's C-level handler writes every
signal's number there whatever happens to the KeyboardInterrupt raised for it, so ``check()``
at the next step (a lab about to be built, a run about to start) stops a process whose
interrupt was lost (seen: one raised inside importlib's module-lock weakref callback, printed as
"Exception ignored" while `tuntcp serve` served on).

A stop that has not finished 20 s after the signal dumps every thread's stack to stderr
(faulthandler), so a hung shutdown explains itself; ``forget()`` disarms all of it.
"""
from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading

from .errors import leaves

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
HUNG_STOP_S = 20.0

received: list[int] = []    # the stop signals seen; the first decides the exit status (128 + n)
_pipe: tuple[int, int] | None = None     # arm()'s wakeup pipe (read end, write end)
_hook = None                                 # sys.unraisablehook before arm()


def stop_requested(signum: int) -> None:
    received.append(signum)
    if len(received) == 1:
        try:
            faulthandler.dump_traceback_later(HUNG_STOP_S, repeat=False, file=sys.stderr)
        except (ValueError, OSError, AttributeError):   # no usable stderr (a pytest capture, closed)
            pass


def arm() -> None:
    """Record every signal at the C level (signal.set_wakeup_fd) for ``check()``. Main thread
    only; once."""
    global _pipe
    if _pipe is not None or threading.current_thread() is not threading.main_thread():
        return
    global _hook
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    _pipe = (r, w)
    _hook = sys.unraisablehook
    sys.unraisablehook = _quiet_lost_interrupt


def _quiet_lost_interrupt(unraisable) -> None:
    # an interrupt swallowed by a callback is not the user's error: check() stops the process
    if unraisable.exc_type is not KeyboardInterrupt:
        (_hook or sys.__unraisablehook__)(unraisable)


def check() -> None:
    """A stop signal came and the process is still on its way (its KeyboardInterrupt was lost
    where it landed): raise it here. Nothing to do unless ``arm()`` ran."""
    if _pipe is None:
        return
    try:
        data = os.read(_pipe[0], 4096)
    except BlockingIOError:
        return
    stops = [n for n in data if n in STOP_SIGNALS]
    if stops:
        if not received:
            stop_requested(stops[0])
        raise KeyboardInterrupt


def forget() -> None:
    """The process is done stopping (or an in-process caller moves on): no stack dump, no
    wakeup pipe, no signal remembered."""
    global _pipe, _hook
    faulthandler.cancel_dump_traceback_later()
    if _hook is not None:
        sys.unraisablehook, _hook = _hook, None
    if _pipe is not None:
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(-1)
        for fd in _pipe:
            os.close(fd)
        _pipe = None
    received.clear()


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

    check()
    theirs = signal.set_wakeup_fd(-1) if _pipe is not None else -1   # trio sets its own
    try:
        trio.run(main, **trio_kw)
    except BaseException as e:
        if fired and all(isinstance(x, KeyboardInterrupt) for x in leaves(e)):
            raise KeyboardInterrupt from None
        raise
    finally:
        if theirs != -1:
            signal.set_wakeup_fd(theirs, warn_on_full_buffer=False)
    check()
    return result[0]
