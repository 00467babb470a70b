"""Coverage-guided fuzzing of ``Stack.receive`` with a listener and live connections.

    .venv/bin/python fuzz/fuzz_core.py -max_total_time=20 [corpus_dir]

Each input is a short script of packets (raw bytes, or segments aimed at an established
connection / the listener with fuzzed header fields, options and payload) and clock steps,
played against a fresh ``World`` (fuzz/world.py). Property: nothing escapes, every packet is
counted exactly once, every reply parses, the tables stay within the listener's bounds.
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["tuntcp"]):
    import tuntcp.core.conn  # noqa: F401
    import tuntcp.listen.linux  # noqa: F401
    import tuntcp.listen.freebsd  # noqa: F401
    from world import World, raw, SERVER, PORT

PROFILES = ("linux-6.1", "linux-3.10", "freebsd-14")


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    w = World(PROFILES[fdp.ConsumeIntInRange(0, len(PROFILES) - 1)], n_conns=2)
    for _ in range(fdp.ConsumeIntInRange(1, 12)):
        if fdp.remaining_bytes() == 0:
            break
        kind = fdp.ConsumeIntInRange(0, 7)
        if kind == 0:
            w.feed(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 120)))
            continue
        if kind == 1:
            w.tick(fdp.ConsumeIntInRange(0, 4000) / 100.0)
            continue
        if kind in (2, 3, 4, 5):
            c = w.conns[fdp.ConsumeIntInRange(0, 1)]
            saddr, sport, dport = c.raddr, c.rport, c.lport
            seq = (c.rcv_nxt + fdp.ConsumeIntInRange(-70000, 70000)) & 0xFFFFFFFF
            ack = (c.snd_nxt + fdp.ConsumeIntInRange(-70000, 70000)) & 0xFFFFFFFF
        else:
            saddr = fdp.ConsumeIntInRange(0, 0xFFFFFFFF)
            sport = fdp.ConsumeIntInRange(0, 0xFFFF)
            dport = PORT if kind != 7 else fdp.ConsumeIntInRange(0, 0xFFFF)
            seq = fdp.ConsumeIntInRange(0, 0xFFFFFFFF)
            ack = fdp.ConsumeIntInRange(0, 0xFFFFFFFF)
        if saddr == SERVER:
            continue
        flags = fdp.ConsumeIntInRange(0, 255)
        window = fdp.ConsumeIntInRange(0, 0xFFFF)
        opts = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
        payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
        w.feed(raw(saddr, SERVER, sport, dport, seq, ack, flags, window, opts, payload))
        w.check_bounds()
    w.tick(200.0)
    w.check_bounds()


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
