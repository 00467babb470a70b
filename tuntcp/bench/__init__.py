"""`tuntcp bench`: the endpoint beside a kernel listener under clients nobody here wrote.

cli (the command and its report), workloads (one function per workload), clients (small
kernel-socket clients run in the lab), kernel_server (the kernel listener side), micro and
wire_micro (in-process micro-benchmarks).
"""
