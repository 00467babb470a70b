"""MIB counter names, as `nstat` prints them: the one list every layer increments from.

Linux names come from net/ipv4/proc.c (snmp4_ipstats_list, snmp4_tcp_list, snmp4_net_list,
snmp4_ipextstats_list) and net/ipv6/proc.c (snmp6_ipstats_list); FreeBSD syncache fields of `struct tcpstat` carry a FreeBSD prefix, our own
drop reasons a Tuntcp prefix. Increment one way only: ``counters[mib.TcpExtListenOverflows] += 1``.
GROUPS keeps the kernel's order (the order `nstat -az` lists them; tests/netns/test_obs_vs_real.py
checks it against the real nstat); KERNEL_ONLY names counters the kernel has that no modelled
path bumps (shown by `nstat -z`, always 0 here).
"""
from __future__ import annotations

# Ip (/proc/net/snmp)
IpInReceives = "IpInReceives"
IpInHdrErrors = "IpInHdrErrors"
IpInAddrErrors = "IpInAddrErrors"
IpInUnknownProtos = "IpInUnknownProtos"
IpInDiscards = "IpInDiscards"
IpInDelivers = "IpInDelivers"
IpOutRequests = "IpOutRequests"
IpReasmFails = "IpReasmFails"

# Tcp (/proc/net/snmp)
TcpActiveOpens = "TcpActiveOpens"
TcpPassiveOpens = "TcpPassiveOpens"
TcpAttemptFails = "TcpAttemptFails"
TcpEstabResets = "TcpEstabResets"
TcpCurrEstab = "TcpCurrEstab"
TcpInSegs = "TcpInSegs"
TcpOutSegs = "TcpOutSegs"
TcpRetransSegs = "TcpRetransSegs"
TcpInErrs = "TcpInErrs"
TcpOutRsts = "TcpOutRsts"
TcpInCsumErrors = "TcpInCsumErrors"

# Ip6 (/proc/net/snmp6, snmp6_ipstats_list order)
Ip6InReceives = "Ip6InReceives"
Ip6InHdrErrors = "Ip6InHdrErrors"
Ip6InAddrErrors = "Ip6InAddrErrors"
Ip6InUnknownProtos = "Ip6InUnknownProtos"
Ip6InTruncatedPkts = "Ip6InTruncatedPkts"
Ip6InDiscards = "Ip6InDiscards"
Ip6InDelivers = "Ip6InDelivers"
Ip6OutRequests = "Ip6OutRequests"
Ip6ReasmReqds = "Ip6ReasmReqds"
Ip6ReasmOKs = "Ip6ReasmOKs"
Ip6ReasmFails = "Ip6ReasmFails"

# TcpExt (/proc/net/netstat)
TcpExtSyncookiesSent = "TcpExtSyncookiesSent"
TcpExtSyncookiesRecv = "TcpExtSyncookiesRecv"
TcpExtSyncookiesFailed = "TcpExtSyncookiesFailed"
TcpExtEmbryonicRsts = "TcpExtEmbryonicRsts"
TcpExtTW = "TcpExtTW"
TcpExtPAWSEstab = "TcpExtPAWSEstab"
TcpExtDelayedACKs = "TcpExtDelayedACKs"
TcpExtDelayedACKLost = "TcpExtDelayedACKLost"
TcpExtListenOverflows = "TcpExtListenOverflows"
TcpExtListenDrops = "TcpExtListenDrops"
TcpExtTCPHPHits = "TcpExtTCPHPHits"
TcpExtTCPPureAcks = "TcpExtTCPPureAcks"
TcpExtTCPHPAcks = "TcpExtTCPHPAcks"
TcpExtTCPRenoRecovery = "TcpExtTCPRenoRecovery"
TcpExtTCPSackRecovery = "TcpExtTCPSackRecovery"
TcpExtTCPSACKReorder = "TcpExtTCPSACKReorder"
TcpExtTCPFullUndo = "TcpExtTCPFullUndo"
TcpExtTCPPartialUndo = "TcpExtTCPPartialUndo"
TcpExtTCPLostRetransmit = "TcpExtTCPLostRetransmit"
TcpExtTCPFastRetrans = "TcpExtTCPFastRetrans"
TcpExtTCPSlowStartRetrans = "TcpExtTCPSlowStartRetrans"
TcpExtTCPTimeouts = "TcpExtTCPTimeouts"
TcpExtTCPLossProbes = "TcpExtTCPLossProbes"
TcpExtTCPLossProbeRecovery = "TcpExtTCPLossProbeRecovery"
TcpExtTCPDSACKOldSent = "TcpExtTCPDSACKOldSent"
TcpExtTCPDSACKRecv = "TcpExtTCPDSACKRecv"
TcpExtTCPDSACKOfoRecv = "TcpExtTCPDSACKOfoRecv"
TcpExtTCPDSACKRecvSegs = "TcpExtTCPDSACKRecvSegs"
TcpExtTCPDSACKIgnoredDubious = "TcpExtTCPDSACKIgnoredDubious"
TcpExtTCPDSACKUndo = "TcpExtTCPDSACKUndo"
TcpExtTCPLossUndo = "TcpExtTCPLossUndo"
TcpExtTCPAbortOnData = "TcpExtTCPAbortOnData"
TcpExtTCPAbortOnClose = "TcpExtTCPAbortOnClose"
TcpExtTCPAbortOnTimeout = "TcpExtTCPAbortOnTimeout"
TcpExtTCPDeferAcceptDrop = "TcpExtTCPDeferAcceptDrop"
TcpExtTCPTimeWaitOverflow = "TcpExtTCPTimeWaitOverflow"
TcpExtTCPReqQFullDoCookies = "TcpExtTCPReqQFullDoCookies"
TcpExtTCPReqQFullDrop = "TcpExtTCPReqQFullDrop"
TcpExtTCPRetransFail = "TcpExtTCPRetransFail"
TcpExtTCPRcvQDrop = "TcpExtTCPRcvQDrop"
TcpExtTCPOFOQueue = "TcpExtTCPOFOQueue"
TcpExtTCPOFODrop = "TcpExtTCPOFODrop"
TcpExtTCPChallengeACK = "TcpExtTCPChallengeACK"
TcpExtTCPSYNChallenge = "TcpExtTCPSYNChallenge"
TcpExtTCPSynRetrans = "TcpExtTCPSynRetrans"
TcpExtTCPWinProbe = "TcpExtTCPWinProbe"
TcpExtTCPHystartTrainDetect = "TcpExtTCPHystartTrainDetect"
TcpExtTCPHystartTrainCwnd = "TcpExtTCPHystartTrainCwnd"
TcpExtTCPHystartDelayDetect = "TcpExtTCPHystartDelayDetect"
TcpExtTCPHystartDelayCwnd = "TcpExtTCPHystartDelayCwnd"
TcpExtTCPACKSkippedSynRecv = "TcpExtTCPACKSkippedSynRecv"
TcpExtTCPACKSkippedSeq = "TcpExtTCPACKSkippedSeq"
TcpExtTCPACKSkippedChallenge = "TcpExtTCPACKSkippedChallenge"
TcpExtTCPWantZeroWindowAdv = "TcpExtTCPWantZeroWindowAdv"
TcpExtTCPToZeroWindowAdv = "TcpExtTCPToZeroWindowAdv"
TcpExtTCPFromZeroWindowAdv = "TcpExtTCPFromZeroWindowAdv"
TcpExtTCPZeroWindowDrop = "TcpExtTCPZeroWindowDrop"
TcpExtOutOfWindowIcmps = "TcpExtOutOfWindowIcmps"

# IpExt (/proc/net/netstat)
IpExtInTruncatedPkts = "IpExtInTruncatedPkts"

# FreeBSD (netstat -s -p tcp, syncache)
FreeBSDListenDrops = "FreeBSDListenDrops"
FreeBSDSyncacheAdded = "FreeBSDSyncacheAdded"
FreeBSDSyncacheRetransmitted = "FreeBSDSyncacheRetransmitted"
FreeBSDSyncacheDupsyn = "FreeBSDSyncacheDupsyn"
FreeBSDSyncacheCompleted = "FreeBSDSyncacheCompleted"
FreeBSDSyncacheBucketOverflow = "FreeBSDSyncacheBucketOverflow"
FreeBSDSyncacheCacheOverflow = "FreeBSDSyncacheCacheOverflow"
FreeBSDSyncacheReset = "FreeBSDSyncacheReset"
FreeBSDSyncacheStale = "FreeBSDSyncacheStale"
FreeBSDSyncacheAborted = "FreeBSDSyncacheAborted"
FreeBSDSyncacheBadack = "FreeBSDSyncacheBadack"
FreeBSDSyncacheZoneFail = "FreeBSDSyncacheZoneFail"
FreeBSDSyncacheCookiesSent = "FreeBSDSyncacheCookiesSent"
FreeBSDSyncacheCookiesRecv = "FreeBSDSyncacheCookiesRecv"
FreeBSDSyncacheCookiesFailed = "FreeBSDSyncacheCookiesFailed"

# Tuntcp (our own drop reasons)
TuntcpMartianSrc = "TuntcpMartianSrc"
TuntcpTcpTruncated = "TuntcpTcpTruncated"
TuntcpTunTxDrops = "TuntcpTunTxDrops"
TuntcpIp6RtHdrDrop = "TuntcpIp6RtHdrDrop"  # seg6/RPL routing header while disabled: Linux counts nothing
TuntcpIp6CompatAddr = "TuntcpIp6CompatAddr"  # ::/96 address: its key would collide with IPv4's

GROUPS: dict[str, tuple[str, ...]] = {
    "Ip": (IpInReceives, IpInHdrErrors, IpInAddrErrors, IpInUnknownProtos, IpInDiscards, IpInDelivers,
        IpOutRequests, IpReasmFails,),
    "Tcp": (TcpActiveOpens, TcpPassiveOpens, TcpAttemptFails, TcpEstabResets, TcpCurrEstab, TcpInSegs,
        TcpOutSegs, TcpRetransSegs, TcpInErrs, TcpOutRsts, TcpInCsumErrors,),
    "Ip6": (Ip6InReceives, Ip6InHdrErrors, Ip6InAddrErrors, Ip6InUnknownProtos, Ip6InTruncatedPkts,
        Ip6InDiscards, Ip6InDelivers, Ip6OutRequests, Ip6ReasmReqds, Ip6ReasmOKs, Ip6ReasmFails,),
    "TcpExt": (TcpExtSyncookiesSent, TcpExtSyncookiesRecv, TcpExtSyncookiesFailed, TcpExtEmbryonicRsts,
        TcpExtOutOfWindowIcmps, TcpExtTW, TcpExtPAWSEstab, TcpExtDelayedACKs, TcpExtDelayedACKLost,
        TcpExtListenOverflows, TcpExtListenDrops, TcpExtTCPHPHits, TcpExtTCPPureAcks,
        TcpExtTCPHPAcks, TcpExtTCPRenoRecovery, TcpExtTCPSackRecovery, TcpExtTCPSACKReorder,
        TcpExtTCPFullUndo, TcpExtTCPPartialUndo, TcpExtTCPDSACKUndo, TcpExtTCPLossUndo,
        TcpExtTCPLostRetransmit, TcpExtTCPFastRetrans, TcpExtTCPSlowStartRetrans,
        TcpExtTCPTimeouts, TcpExtTCPLossProbes, TcpExtTCPLossProbeRecovery, TcpExtTCPDSACKOldSent,
        TcpExtTCPDSACKRecv, TcpExtTCPDSACKOfoRecv, TcpExtTCPAbortOnData, TcpExtTCPAbortOnClose, TcpExtTCPAbortOnTimeout,
        TcpExtTCPDeferAcceptDrop, TcpExtTCPTimeWaitOverflow, TcpExtTCPReqQFullDoCookies,
        TcpExtTCPReqQFullDrop, TcpExtTCPRetransFail, TcpExtTCPOFOQueue, TcpExtTCPOFODrop, TcpExtTCPChallengeACK,
        TcpExtTCPSYNChallenge, TcpExtTCPFromZeroWindowAdv, TcpExtTCPToZeroWindowAdv,
        TcpExtTCPWantZeroWindowAdv, TcpExtTCPSynRetrans, TcpExtTCPHystartTrainDetect,
        TcpExtTCPHystartTrainCwnd, TcpExtTCPHystartDelayDetect, TcpExtTCPHystartDelayCwnd,
        TcpExtTCPACKSkippedSynRecv, TcpExtTCPACKSkippedSeq, TcpExtTCPACKSkippedChallenge,
        TcpExtTCPWinProbe, TcpExtTCPZeroWindowDrop, TcpExtTCPRcvQDrop, TcpExtTCPDSACKRecvSegs,
        TcpExtTCPDSACKIgnoredDubious,),
    "IpExt": (IpExtInTruncatedPkts,),
    "FreeBSD": (FreeBSDListenDrops, FreeBSDSyncacheAdded, FreeBSDSyncacheRetransmitted,
        FreeBSDSyncacheDupsyn, FreeBSDSyncacheCompleted, FreeBSDSyncacheBucketOverflow,
        FreeBSDSyncacheCacheOverflow, FreeBSDSyncacheReset, FreeBSDSyncacheStale,
        FreeBSDSyncacheAborted, FreeBSDSyncacheBadack, FreeBSDSyncacheZoneFail,
        FreeBSDSyncacheCookiesSent, FreeBSDSyncacheCookiesRecv, FreeBSDSyncacheCookiesFailed,),
    "Tuntcp": (TuntcpMartianSrc, TuntcpTcpTruncated, TuntcpTunTxDrops, TuntcpIp6RtHdrDrop, TuntcpIp6CompatAddr,),
}
ALL: tuple[str, ...] = tuple(n for names in GROUPS.values() for n in names)
KERNEL_ONLY: frozenset[str] = frozenset({
    IpInDiscards, IpInDelivers, IpOutRequests,
    TcpExtTCPRcvQDrop, TcpExtOutOfWindowIcmps, Ip6InDiscards, Ip6OutRequests,
})


class Counters(dict):
    """A dict of MIB name -> int that reads 0 for anything never incremented."""

    __slots__ = ()

    def __missing__(self, key: str) -> int:
        return 0

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
