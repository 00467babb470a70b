"""Test and lab harness: network namespaces with a TUN (netns), a seeded link model (link),
kernel clients and TCP_INFO (clients)."""
from tuntcp.harness.clients import connect_clients, kernel_counters, set_linger0, tcp_info
from tuntcp.harness.link import LinkModel
from tuntcp.harness.netns import Lab, LabError, probe, sweep_stale

__all__ = ["Lab", "LabError", "LinkModel", "connect_clients", "kernel_counters", "probe",
           "set_linger0", "sweep_stale", "tcp_info"]
