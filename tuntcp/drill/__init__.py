"""``tuntcp drill``: packetdrill scripts against the modelled kernels, in virtual time.

parser (lexer.py, parser.py) -> model.py (events) -> runner.py (clock, events) with
shim.py (syscalls), match.py (packets), commands.py (backtick lines), code.py (%{ }%),
host.py (the one place a Stack is built) -> score.py (suite scoreboard), cli.py.
"""
