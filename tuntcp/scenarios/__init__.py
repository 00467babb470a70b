"""Scenarios built on the endpoint: storms, floods, labs.

Each entry names a module with ``add_arguments(parser)`` and ``main(args) -> int``; the
``tuntcp`` CLI gives each its own subcommand (``tuntcp storm``, ``tuntcp fluentd`` ...).
One line per scenario here, so parallel work does not collide in tuntcp/cli.py. Names are
dashed (`slow-accept`); the CLI also accepts the underscored spelling as an alias.
"""
SCENARIOS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help)
    "connect": ("tuntcp.scenarios.connect", "the endpoint as client: active open to a kernel listener, both views"),
    "storm": ("tuntcp.scenarios.storm_cli", "the Kafka broker restart storm, buggy vs fixed cookie wscale"),
    "soak": ("tuntcp.scenarios.soak", "mixed load (reconnects, SYN flood bursts, bulk) with memory sampled flat"),
    "lab": ("tuntcp.scenarios.labs.cli", "teaching labs: list, run N, check N --answers FILE"),
    "reverse-check": ("tuntcp.scenarios.reverse_check", "does this host kernel carry the cookie wscale fix 909172a14974?"),
    "defer-accept": ("tuntcp.scenarios.defer_accept", "TCP_DEFER_ACCEPT accept delays, with and without SYN cookies"),
    "ts-off": ("tuntcp.scenarios.ts_off", "clients without timestamps: cookie connections lose wscale/SACK, capped at 64 KB/RTT"),
    "freebsd-queue": ("tuntcp.scenarios.freebsd_queue", "FreeBSD 9 vs 14: 1.5x backlog + RST, syncache lifetime, httpready/dataready"),
    "slow-accept": ("tuntcp.scenarios.slow_accept", "accept() stalls: Recv-Q backlog+1, ListenOverflows, tcp_abort_on_overflow 0 vs 1"),
    "fluentd": ("tuntcp.scenarios.fluentd", "fluentd heartbeats: 'Possible SYN flooding on port 24224' at backlog 128, gone at 65535"),
    "events": ("tuntcp.obs.events", "summarise an event log (serve --events): counts per kind and reason, the wscale split"),
    "drill": ("tuntcp.drill.cli", "run packetdrill scripts against a modelled kernel in virtual time; --suite scores a folder"),
    "synflood": ("tuntcp.scenarios.synflood", "spoofed hping3 SYN flood vs legitimate kernel clients, tcp_syncookies 1 vs 0"),
    "states": ("tuntcp.scenarios.states", "the TCP state transitions the connection code allows (--dot: Graphviz)"),
}
