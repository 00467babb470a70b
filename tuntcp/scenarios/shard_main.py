"""One endpoint shard: ``python -m tuntcp.scenarios.shard_main`` (started by shell/shards.py).

Reads its spec (one JSON line on stdin), builds a Stack on its TUN queue with the listener state
in the shared memfd, runs the Endpoint and its role's app, and answers the parent's commands on
stdin/stdout until the parent closes the pipe. Roles: ``serve`` (``tuntcp serve --shards``: the
app behind one listener), ``storm`` (the storm's broker, ``storm_shards.py``) or any
``module:function`` (tests hold the accept queue with one).
"""
from __future__ import annotations

from types import SimpleNamespace

import trio

from tuntcp.shell.gc_tuning import tune_gc
from tuntcp.shell.shards import MonoClock, attach_shares, log_sender, read_spec, serve_commands


def _links(spec: dict):
    link = spec.get("link")
    if not link:
        return None, None
    from tuntcp.harness.link import GsoLink, LinkModel
    cls = GsoLink if spec.get("offload") else LinkModel    # an offload shard's link carries frames
    seed = link.pop("seed") + 2 * spec["shard"]      # each shard its own draws, reproducibly
    return cls(seed, **link), cls(seed + 1, **link)


async def _serve_role(ep, stack, spec, nursery, handlers) -> None:
    from tuntcp.shell.apps import guarded, resolve_app
    from tuntcp.shell.listener import TcpListener, serve_tcp
    lst = TcpListener(ep, stack.listen(spec["port"], spec["backlog"], rcvbuf=spec.get("rcvbuf")))
    app = resolve_app(spec["app"], f"hello from tuntcp ({stack.profile.name})")
    nursery.start_soon(serve_tcp, guarded(app), [lst])

    async def backlog():
        return lst.listener.backlog
    handlers["backlog"] = backlog


def _role(name: str):
    """``serve``, ``storm``, or ``module:function``: an ``async def role(ep, stack, spec,
    nursery, handlers)`` that opens the shard's listener and adds its commands."""
    if name == "serve":
        return _serve_role
    if name == "storm":
        from tuntcp.scenarios.storm_shards import storm_role
        return storm_role
    import importlib
    mod, _, fn = name.partition(":")
    return getattr(importlib.import_module(mod), fn)


async def run(spec: dict) -> None:
    from tuntcp.host.stack import Stack
    from tuntcp.obs import views
    from tuntcp.obs.events import EventLog
    from tuntcp.obs.ss import process_of, ss_text, summary
    from tuntcp.profiles import get_profile
    from tuntcp.shell.endpoint import Endpoint, encoder_for
    from tuntcp.wire.pcap import PcapWriter

    profile = get_profile(spec["profile"], spec["sysctl"])
    events = EventLog(spec["events"]) if spec.get("events") else None
    pcap = PcapWriter(spec["pcap"]) if spec.get("pcap") else None
    to_parent = log_sender()

    def log(kind, **fields):
        if kind == "kernel_log":
            to_parent(fields.get("line", ""))
        if events is not None:
            events(kind, **fields)

    offload = bool(spec.get("offload"))
    stack = Stack(profile, addrs={spec["addr"]}, secret=bytes.fromhex(spec["secret"]), log=log,
                  encoder=encoder_for(offload))
    if not spec.get("local_shares"):       # a lone shard may keep the one-process state
        attach_shares(stack, spec["mem_fd"], spec["shard"], spec["nshards"])
    link_in, link_out = _links(spec)
    ep = Endpoint(stack, spec["tun_fd"], pcap=pcap, link_in=link_in, link_out=link_out,
                  max_batch=spec.get("max_batch", 4096), offload=offload)

    async def counters():
        return dict(stack.counters)

    async def ss(query):
        return ss_text(stack, query, proc=process_of(spec["tun_fd"]))

    async def states():
        return [c.state for c in stack.conns.values()]

    async def ss_summary(states):
        conns = {k: SimpleNamespace(state=s) for k, s in enumerate(x for part in states for x in part)}
        return summary(SimpleNamespace(listeners=stack.listeners, conns=conns))

    async def netstat():
        return views.netstat_lan(stack)

    async def stats():
        return dict(ep.stats)

    handlers = {"counters": counters, "ss": ss, "states": states, "ss_summary": ss_summary,
                "netstat": netstat, "stats": stats}
    role = _role(spec["role"])
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ep.run)
            await role(ep, stack, spec, nursery, handlers)
            await serve_commands(handlers)
            nursery.cancel_scope.cancel()       # the parent is gone or done: this shard ends
    finally:
        if pcap is not None:
            pcap.close()
        if events is not None:
            events.close()


def main() -> None:
    spec = read_spec()
    tune_gc()
    try:
        trio.run(run, spec, clock=MonoClock())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
