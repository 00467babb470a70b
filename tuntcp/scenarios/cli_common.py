"""The tail every scenario's ``main()`` shares."""
from __future__ import annotations

import sys


def scenario_main(name: str, cfg, run, *, errors: tuple, summary, show=None, check=None) -> int:
    """Check the config (``cfg.check()`` and an optional ``check()``), run the scenario under
    trio, print ``summary(report)`` and where the report went. A user mistake (``errors``, a bad
    profile or knob, a lab that cannot be built) is one line on stderr and exit 2; Ctrl-C, bare
    or inside trio's exception groups, is handled once by ``tuntcp.cli.main`` (exit 130)."""
    import trio

    from tuntcp.harness.netns import LabError
    from tuntcp.profiles import ProfileError
    if show is None:
        def show(msg=""):
            print(f"{name}: {msg}", file=sys.stderr, flush=True)
    try:
        cfg.check()
        if check is not None:
            check()
        report = trio.run(run, cfg, show)
    except (*errors, ProfileError, LabError) as e:
        print(f"tuntcp {name}: error: {e}", file=sys.stderr)
        return 2
    print(summary(report))
    print(f"\nreport: {cfg.out}/report.json, {cfg.out}/report.md")
    return 0
