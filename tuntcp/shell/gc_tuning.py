"""The collector's settings for a long-running endpoint process (the CLI's and each shard's)."""
from __future__ import annotations

import gc
import os


def tune_gc() -> None:
    """A long-running endpoint allocates a few objects per packet and keeps few of them: with
    CPython's default gen-0 threshold (700) the collector runs every ~100 packets. Freeze what
    start-up built and collect gen 0 less often (measured: ~10 % of the endpoint's CPU on the
    handshake row). TUNTCP_GC=default keeps CPython's settings (for A/B comparisons)."""
    if os.environ.get("TUNTCP_GC") == "default":
        return
    gc.freeze()
    gc.set_threshold(20000, 20, 10)
