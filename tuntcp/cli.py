"""`tuntcp` command line (filled by the shell work)."""
import sys


def main(argv=None) -> int:
    print("tuntcp: not yet implemented", file=sys.stderr)
    return 2
