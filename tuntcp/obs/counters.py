"""MIB counters named as ``nstat`` prints them (``TcpExtListenOverflows``, ``TcpRetransSegs``...).

Names come from Linux ``net/ipv4/proc.c`` (``snmp4_net_list``, ``snmp4_tcp_list``) plus the
FreeBSD ``tcpstat`` syncache fields under a ``FreeBSD`` prefix, and our own drop reasons under
``Tuntcp``. Incrementing an unknown name is allowed (it is then printed too); KNOWN only decides
which zeros ``nstat -z`` shows.
"""
from __future__ import annotations

KNOWN = (
    # Tcp (RFC 4022 / /proc/net/snmp)
    "TcpActiveOpens", "TcpPassiveOpens", "TcpAttemptFails", "TcpEstabResets", "TcpCurrEstab",
    "TcpInSegs", "TcpOutSegs", "TcpRetransSegs", "TcpInErrs", "TcpOutRsts", "TcpInCsumErrors",
    # IP
    "IpInReceives", "IpInHdrErrors", "IpInAddrErrors", "IpInUnknownProtos", "IpInDiscards",
    "IpInDelivers", "IpOutRequests", "IpReasmFails",
    # TcpExt (/proc/net/netstat)
    "TcpExtSyncookiesSent", "TcpExtSyncookiesRecv", "TcpExtSyncookiesFailed",
    "TcpExtEmbryonicRsts", "TcpExtPAWSEstab", "TcpExtDelayedACKs", "TcpExtDelayedACKLost",
    "TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPReqQFullDoCookies",
    "TcpExtTCPReqQFullDrop", "TcpExtTCPDeferAcceptDrop", "TcpExtTCPACKSkippedSynRecv",
    "TcpExtTCPTimeouts", "TcpExtTCPSynRetrans", "TcpExtTCPLossProbes", "TcpExtTCPFastRetrans",
    "TcpExtTCPSlowStartRetrans", "TcpExtTCPSackRecovery", "TcpExtTCPRenoRecovery",
    "TcpExtTCPOFOQueue", "TcpExtTCPOFODrop", "TcpExtTCPChallengeACK", "TcpExtTCPSYNChallenge",
    "TcpExtTCPAbortOnData", "TcpExtTCPAbortOnClose", "TcpExtTCPAbortOnTimeout",
    "TcpExtTCPWinProbe", "TcpExtTCPWantZeroWindowAdv", "TcpExtTCPZeroWindowDrop",
    "TcpExtTCPRcvQDrop", "TcpExtTW", "TcpExtTCPTimeWaitOverflow", "TcpExtTCPHPHits",
    "TcpExtTCPPureAcks", "TcpExtTCPDSACKRecv", "TcpExtTCPDSACKOldSent", "TcpExtOutOfWindowIcmps",
    "TcpExtTCPACKSkippedChallenge", "TcpExtTCPACKSkippedSeq",
)


class Counters(dict):
    """A dict of name -> int that reads 0 for anything never incremented."""

    __slots__ = ()

    def __missing__(self, key: str) -> int:
        return 0

    def inc(self, name: str, n: int = 1) -> None:
        self[name] = self.get(name, 0) + n

    def snapshot(self) -> dict[str, int]:
        return dict(self)

    def delta(self, before: dict[str, int]) -> dict[str, int]:
        """What changed since ``before`` (a snapshot); only non-zero entries."""
        out = {}
        for k, v in self.items():
            d = v - before.get(k, 0)
            if d:
                out[k] = d
        return out

    def nstat(self, zeros: bool = True) -> str:
        """Text like ``nstat -az`` (see ``tuntcp.obs.views.nstat_text``)."""
        from .views import nstat_text
        return nstat_text(self, zeros=zeros)
