"""``tuntcp states``: the TCP state transitions the connection code allows (tuntcp.core.state),
as a table or, with --dot, as a Graphviz digraph (``tuntcp states --dot | dot -Tsvg > s.svg``)."""
from __future__ import annotations

import argparse

from ..core import state


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dot", action="store_true", help="print a Graphviz digraph instead of the table")


def main(args) -> int:
    print(state.dot() if args.dot else state.table())
    return 0
