"""``%{ }%`` blocks: Python evaluated against the connection's TCP_INFO with Linux's names."""
from __future__ import annotations

from .model import Mismatch, Unsupported

TCPI_OPT = {"TCPI_OPT_TIMESTAMPS": 1, "TCPI_OPT_SACK": 2, "TCPI_OPT_WSCALE": 4,
            "TCPI_OPT_ECN": 8, "TCPI_OPT_ECN_SEEN": 16, "TCPI_OPT_SYN_DATA": 32}
CA_STATES = {"TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3,
             "TCP_CA_Loss": 4}
STATES = {"ESTABLISHED": 1, "SYN-SENT": 2, "SYN-RECV": 3, "FIN-WAIT-1": 4, "FIN-WAIT-2": 5,
          "TIME-WAIT": 6, "CLOSED": 7, "CLOSE-WAIT": 8, "LAST-ACK": 9, "LISTEN": 10, "CLOSING": 11}


def tcp_info(info: dict) -> dict:
    """conn.info() (ms, bytes) -> ``struct tcp_info`` fields (µs for times, as Linux)."""
    us = lambda ms: int(round(ms * 1000))  # noqa: E731
    opts = (1 if info["ts"] else 0) | (2 if info["sack"] else 0) | (4 if info["wscale_ok"] else 0) | \
        (8 if info.get("ecn") else 0)
    return {
        "tcpi_state": STATES.get(info["state"], 0), "tcpi_options": opts,
        "tcpi_snd_wscale": info["snd_wscale"], "tcpi_rcv_wscale": info["rcv_wscale"],
        "tcpi_rto": us(info["rto"]), "tcpi_ato": us(info["ato"]), "tcpi_backoff": info["backoff"],
        "tcpi_snd_mss": info["mss"], "tcpi_rcv_mss": info["rcv_mss"], "tcpi_advmss": info["advmss"],
        "tcpi_pmtu": info["pmtu"],
        "tcpi_unacked": info["unacked"], "tcpi_retrans": info["retrans"],
        "tcpi_total_retrans": info["total_retrans"],
        "tcpi_rtt": us(info["rtt"]), "tcpi_rttvar": us(info["rttvar"]),
        "tcpi_snd_ssthresh": info["ssthresh"], "tcpi_snd_cwnd": info["cwnd"],
        "tcpi_reordering": info["reordering"], "tcpi_rcv_rtt": us(info["rcv_rtt"]),
        "tcpi_rcv_space": info["rcv_space"], "tcpi_rcv_ssthresh": info["rcv_ssthresh"],
        "tcpi_bytes_sent": info["bytes_sent"], "tcpi_bytes_acked": info["bytes_acked"],
        "tcpi_bytes_received": info["bytes_received"], "tcpi_segs_out": info["segs_out"],
        "tcpi_segs_in": info["segs_in"], "tcpi_snd_wnd": info["snd_wnd"],
        "tcpi_rcv_wnd": info["rcv_wnd"], "tcpi_notsent_bytes": info["notsent"],
        "tcpi_last_data_sent": info["lastsnd"], "tcpi_last_data_recv": info["lastrcv"],
        "tcpi_last_ack_recv": info["lastack"],
        "tcpi_ca_state": info["ca_state"], "tcpi_sacked": info["sacked"],
        "tcpi_lost": info["lost"], "tcpi_reord_seen": info["reord_seen"],
        "tcpi_dsack_dups": info["dsack_dups"],
        "tcpi_busy_time": info["busy_us"], "tcpi_rwnd_limited": info["rwnd_limited_us"],
        "tcpi_probes": info["probes"],
    }


class _Names(dict):
    def __missing__(self, key):
        if key.startswith("tcpi_"):
            raise Unsupported(f"tcp_info field {key}")
        raise KeyError(key)


def run_code(text: str, info: dict | None, defines: dict, line: int, shared: dict) -> None:
    """``shared``: the names earlier blocks defined (packetdrill runs all blocks as one
    Python program, so a variable set in one block is seen by the later ones)."""
    if info is None:
        raise Unsupported("%{ }% without a connection", line)
    names = _Names(tcp_info(info))
    names.update(TCPI_OPT)
    names.update(CA_STATES)
    names.update({"TCP_" + k.replace("-", "_").replace("CLOSED", "CLOSE"): v for k, v in STATES.items()})
    names.update(shared)
    for k, v in defines.items():
        try:
            names[k] = int(str(v), 0)
        except ValueError:
            names[k] = v
    src = text.replace("\\\n", "\n").replace(";\n", "\n")
    src = "\n".join(s.strip() for s in src.replace(";", "\n").splitlines() if s.strip())
    before = set(names)
    try:
        exec(compile(src, f"line {line}", "exec"), {"__builtins__": __builtins__}, names)
        shared.update({k: names[k] for k in set(names) - before})
    except Unsupported as e:
        e.line = line
        raise
    except AssertionError as e:
        raise Mismatch("error in Python code", f"AssertionError: {e}", line) from None
    except NameError as e:
        raise Unsupported("name in %{ }%", line, str(e)) from None
    except SyntaxError as e:
        raise Unsupported("Python syntax in %{ }%", line, str(e)) from None
