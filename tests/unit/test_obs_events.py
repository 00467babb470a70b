"""Listen-path events: a Stack driven by packetdrill scripts (tuntcp's runner, through
tests/unit/drillrun.py), the JSON lines it logs, their schema, and `tuntcp events FILE`."""
import io
import json
import re

import pytest

from drillrun import Drive
from tuntcp.obs import events as E
from tuntcp.wire.codec import ip_int

L, R = "192.0.2.1", "192.0.2.2"
SYN = "< S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>"
ACK = "< . 1:1(0) ack 1 win 513 <nop,nop,TS val 200 ecr 200>"     # ecr: our SYN-ACK's TS val


def SA(ws=7):
    return f"> S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 200 ecr 100,nop,wscale {ws}>"


def _run(profile, steps, *, backlog=8, overrides=None, rcvbuf=None, defer_accept=0):
    """``steps``: (remote port, script lines) in order; the listener is fd 3 on port 8080,
    non-blocking, so that an accept() line only moves the clock when nothing is queued."""
    buf = io.StringIO()
    log = E.EventLog(buf)
    d = Drive(profile, overrides, log=log, local_ip=L, remote_ip=R)
    opts = "".join(f"+0 setsockopt(3, {lvl}, {name}, [{v}], 4) = 0\n" for lvl, name, v in (
        ("SOL_SOCKET", "SO_RCVBUF", rcvbuf), ("IPPROTO_TCP", "TCP_DEFER_ACCEPT", defer_accept)) if v)
    d.run(f"""0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
{opts}+0 bind(3, ..., ...) = 0
+0 listen(3, {backlog}) = 0
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
""")
    for port, text in steps:
        d.port(port).run(text)
    log.flush()
    return [json.loads(x) for x in buf.getvalue().splitlines()]


def _kinds(evs, *skip):
    return [e["kind"] for e in evs if e["kind"] not in ("tcp_state",) + skip]


def test_syn_queued_then_accept_queued_with_the_same_wscale():
    evs = _run("linux-6.1", [(40000, f"+0 {SYN}\n+0 {SA()}\n+.1 {ACK}\n")])
    assert _kinds(evs) == ["syn_queued", "accept_queued"]
    q, a = [e for e in evs if e["kind"] != "tcp_state"]
    assert q["raddr"] == R and q["laddr"] == L and q["rport"] == 40000 and q["lport"] == 8080
    assert (q["mss"], q["peer_wscale"], q["sack"], q["ts"], q["ecn"]) == (1460, 7, True, True, False)
    assert a["path"] == "synq" and a["announced_wscale"] == a["child_wscale"] == q["wscale"]
    assert a["t"] == 0.1 and a["accept"] == 1 and a["backlog"] == 8


def test_synack_retransmits_by_timer_and_dup_syn_then_expiry():
    evs = _run("linux-6.1", [(40000, f"+0 {SYN}\n+0 {SA()}\n+.5 {SYN}\n+0 {SA()}\n+1 {SA()}\n")],
               overrides=["net.ipv4.tcp_synack_retries=1"])
    # the resent SYN re-arms the timer: the next resend is 1 s after it
    rtx = [(e["reason"], e["retrans"], e["t"]) for e in evs if e["kind"] == "synack_retransmit"]
    assert rtx == [("dup_syn", 1, 0.5), ("timer", 2, 1.5)]
    ev = _run("linux-6.1", [(40000, f"+0 {SYN}\n+0 {SA()}\n+1 {SA()}\n"
                                    "+5 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)\n")],
              overrides=["net.ipv4.tcp_synack_retries=1"])
    exp = [e for e in ev if e["kind"] == "syn_expired"]
    assert len(exp) == 1 and exp[0]["t"] == 3.0 and exp[0]["retrans"] == 1 and not exp[0]["acked"]


def test_full_accept_queue_drops_syns_and_acks_and_abort_on_overflow_resets():
    # backlog 2: three children fill the accept queue (sk_acceptq_is_full is "> backlog")
    steps = [(40000, f"+0 {SYN}\n+0 {SA()}\n"), (40001, f"+0 {SYN}\n+0 {SA()}\n"),
             (40000, f"+.01 {ACK}\n"), (40001, f"+0 {ACK}\n"),
             (40002, f"+0 {SYN}\n+0 {SA()}\n"), (40004, f"+0 {SYN}\n+0 {SA()}\n"),
             (40002, f"+0 {ACK}\n"), (40003, f"+0 {SYN}\n"), (40004, f"+0 {ACK}\n")]
    evs = _run("linux-6.1", steps, backlog=2)
    drops = [e for e in evs if e["kind"] == "syn_drop"]
    assert [(e["reason"], e["rport"], e["accept"], e["backlog"]) for e in drops] == [
        ("accept_queue_full", 40003, 3, 2)]
    over = [e for e in evs if e["kind"] == "accept_overflow"]
    assert [(e["path"], e["action"], e["rport"], e["accept"]) for e in over] == [
        ("synq", "drop_ack", 40004, 3)]
    evs = _run("linux-6.1", steps, backlog=2, overrides=["net.ipv4.tcp_abort_on_overflow=1"])
    assert [(e["path"], e["action"], e["rport"]) for e in evs if e["kind"] == "accept_overflow"] \
        == [("synq", "reset", 40004)]


def test_syn_queue_full_without_cookies_logs_the_flood_line_and_drops():
    evs = _run("linux-6.1", [(40000, f"+0 {SYN}\n+0 {SA()}\n"), (40001, f"+0 {SYN}\n")],
               backlog=1, overrides=["net.ipv4.tcp_syncookies=0"])
    assert _kinds(evs) == ["syn_queued", "kernel_log", "syn_drop"]
    kl, drop = evs[1], evs[2]
    assert "Possible SYN flooding on port 8080. Dropping request." in kl["line"]
    assert drop["reason"] == "syn_queue_full" and drop["synq"] == 1


COOKIE_HANDSHAKE = [(40000, f"+0 {SYN}\n+0 {SA(1)}\n+.01 < . 1:1(0) ack 1 win 789 <nop,nop,TS val 200 ecr 200>\n")]


def test_cookie_sent_and_accepted_with_decoded_options_and_the_line_wscale_split():
    # linux-5.4 with SO_RCVBUF 102400 and the pre-909172a14974 derivation: the SYN-ACK says
    # 1 (clamped by the buffer), the cookie child computes 7 -- the LINE incident
    buggy = _run("linux-5.4", COOKIE_HANDSHAKE, rcvbuf=102400,
                 overrides=["net.ipv4.tcp_syncookies=2", "model.cookie_wscale_clamp=false"])
    assert _kinds(buggy) == ["cookie_sent", "cookie_accepted", "accept_queued"]
    sent, acc, child = [e for e in buggy if e["kind"] != "tcp_state"]
    assert (sent["mss"], sent["wscale"], sent["peer_wscale"], sent["sack"], sent["ts"],
            sent["opts_in_ts"]) == (1460, 1, 7, True, True, True)
    assert (acc["wscale_ok"], acc["peer_wscale"], acc["sack"], acc["ecn"]) == (True, 7, True, False)
    assert (acc["announced_wscale"], acc["child_wscale"]) == (1, 7)
    assert (child["path"], child["announced_wscale"], child["child_wscale"]) == ("cookie", 1, 7)
    fixed = _run("linux-5.4", COOKIE_HANDSHAKE, rcvbuf=102400,
                 overrides=["net.ipv4.tcp_syncookies=2", "model.cookie_wscale_clamp=true"])
    acc = [e for e in fixed if e["kind"] == "cookie_accepted"][0]
    assert acc["announced_wscale"] == acc["child_wscale"] == 1


def test_a_bad_cookie_is_rejected():
    evs = _run("linux-6.1", [(40000, "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <mss 1460>\n"),
                             (40001, "+.01 < . 1:1(0) ack 99 win 513\n")],
               overrides=["net.ipv4.tcp_syncookies=2"])
    rej = [e for e in evs if e["kind"] == "cookie_rejected"]
    assert [(e["reason"], e["rport"]) for e in rej] == [("bad_cookie", 40001)]


def test_defer_accept_rounds():
    evs = _run("linux-6.1", [(40000, f"+0 {SYN}\n+0 {SA()}\n+.01 {ACK}\n")], defer_accept=5)
    d = [e for e in evs if e["kind"] == "defer_accept_drop"]
    assert [(e["round"], e["rounds"]) for e in d] == [(0, 3)]


def test_freebsd_syncache_and_cookie_events():
    evs = _run("freebsd-14", [(40000, f"+0 {SYN}\n+0 {SA(6)}\n+.01 {ACK}\n")])
    assert _kinds(evs) == ["cookie_sent", "syn_queued", "accept_queued"]
    assert evs[0]["stateless"] is False and evs[1]["wscale"] == evs[0]["wscale"]
    evs = _run("freebsd-14", [(40000, f"+0 {SYN}\n+0 {SA(6)}\n+1 {SA(6)}\n")])
    assert [(e["reason"], e["retrans"]) for e in evs if e["kind"] == "synack_retransmit"] == [
        ("timer", 1)]


def test_addresses_are_text_dotted_or_bracketed_never_integers():
    buf = io.StringIO()
    log = E.EventLog(buf)
    log("x", t=1.0, conn=(ip_int(L), 8080, ip_int(R), 40000))
    log("y", t=2.0, raddr=0x20010DB8 << 96 | 1, laddr=b"\xc0\x00\x02\x01", lport=1)
    a, b = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert a == {"t": 1.0, "kind": "x", "laddr": L, "lport": 8080, "raddr": R, "rport": 40000}
    assert b["raddr"] == "[2001:db8::1]" and b["laddr"] == L


# ---- the schema -----------------------------------------------------------------------------

def _check(schema, v, root, where="$"):
    """The subset of JSON Schema events.schema.json uses (type, enum, const, required,
    properties, additionalProperties, pattern, minimum, maximum, allOf, if/then, $ref)."""
    if "$ref" in schema:
        return _check(root["$defs"][schema["$ref"].split("/")[-1]], v, root, where)
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        ok = {"object": isinstance(v, dict), "string": isinstance(v, str), "null": v is None,
              "boolean": isinstance(v, bool), "array": isinstance(v, list),
              "integer": isinstance(v, int) and not isinstance(v, bool),
              "number": isinstance(v, (int, float)) and not isinstance(v, bool)}
        assert any(ok[t] for t in types), f"{where}: {v!r} is not {types}"
    if "enum" in schema:
        assert v in schema["enum"], f"{where}: {v!r} not in {schema['enum']}"
    if "const" in schema:
        assert v == schema["const"], f"{where}: {v!r} != {schema['const']!r}"
    if "pattern" in schema and isinstance(v, str):
        assert re.search(schema["pattern"], v), f"{where}: {v!r} !~ {schema['pattern']}"
    if "minimum" in schema and isinstance(v, (int, float)):
        assert v >= schema["minimum"], where
    if "maximum" in schema and isinstance(v, (int, float)):
        assert v <= schema["maximum"], where
    if isinstance(v, dict):
        for k in schema.get("required", ()):
            assert k in v, f"{where}: {k} missing"
        props = schema.get("properties", {})
        for k, sub in props.items():
            if k in v:
                _check(sub, v[k], root, f"{where}.{k}")
        if schema.get("additionalProperties") is False:
            assert set(v) <= set(props), f"{where}: unexpected {set(v) - set(props)}"
    for sub in schema.get("allOf", ()):
        _check(sub, v, root, where)
    if "if" in schema:
        try:
            _check(schema["if"], v, root, where)
        except AssertionError:
            return
        _check(schema["then"], v, root, where)


def _all_events():
    return (_run("linux-5.4", COOKIE_HANDSHAKE + [(40001, f"+0 {SYN}\n+0 {SA(1)}\n"),
                                                  (40002, "+0 < . 1:1(0) ack 77 win 513\n")],
                 rcvbuf=102400, overrides=["net.ipv4.tcp_syncookies=2"])
            + _run("linux-6.1", [(40000, f"+0 {SYN}\n+0 {SA()}\n"), (40001, f"+0 {SYN}\n"),
                                 (40000, f"+.5 {SYN}\n+0 {SA()}\n+1 {SA()}\n"
                                         "+5 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)\n")],
                   backlog=1, overrides=["net.ipv4.tcp_syncookies=0", "net.ipv4.tcp_synack_retries=1"])
            + _run("freebsd-14", [(40000, f"+0 {SYN}\n+0 {SA(6)}\n+.01 {ACK}\n")]))


def test_every_event_matches_the_schema_and_the_schema_lists_every_kind():
    schema = json.load(open(E.SCHEMA_PATH))
    evs = _all_events()
    kinds = {e["kind"] for e in evs}
    assert {"syn_queued", "syn_drop", "cookie_sent", "cookie_accepted", "cookie_rejected",
            "accept_queued", "synack_retransmit", "syn_expired", "kernel_log"} <= kinds
    for e in evs:
        _check(schema, e, schema)
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    if jsonschema is not None:
        for e in evs:
            jsonschema.validate(e, schema)
    # a wrong event fails the check (the checker is not a no-op)
    with pytest.raises(AssertionError):
        _check(schema, {"t": 1.0, "kind": "syn_drop", "reason": "x", "raddr": 3323068673}, schema)


def test_docs_list_the_same_kinds_as_the_schema():
    import pathlib
    schema = json.load(open(E.SCHEMA_PATH))
    doc = (pathlib.Path(E.__file__).parents[2] / "docs" / "events.md").read_text()
    kinds = schema["properties"]["kind"]["enum"]
    assert kinds and all(f"`{k}`" in doc for k in kinds)


# ---- tuntcp events FILE ---------------------------------------------------------------------

def test_events_command_summarises_counts_reasons_and_the_wscale_split(tmp_path, capsys):
    from tuntcp.cli import main
    path = tmp_path / "ev.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in _all_events()))
    assert main(["events", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kinds"]["cookie_sent"] == 3 and s["reasons"]["syn_drop syn_queue_full"] == 1
    assert {"path": "cookie", "announced": 1, "child": 7, "connections": 1, "mismatch": True} \
        in s["wscale"]
    assert main(["events", str(path)]) == 0
    text = capsys.readouterr().out
    assert "MISMATCH" in text and "Possible SYN flooding on port 8080" in text


def test_events_command_bad_input_is_one_line(tmp_path, capsys):
    from tuntcp.cli import main
    assert main(["events", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t":1,"kind":"x"}\nnot json\n')
    assert main(["events", str(bad)]) == 2
    assert "line 2 is not JSON" in capsys.readouterr().err
