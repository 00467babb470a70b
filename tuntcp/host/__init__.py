"""The host layer: one network namespace's TCP (``Stack``) and how its output is encoded.

Above ``core`` (connections) and ``listen`` (the Linux and FreeBSD passive-open personalities),
below ``shell`` (trio): sans-IO, no clock reads. See ``core/host.py`` for what the layers below
may call on it.
"""
from .encode import PacketEncoder, SegmentRecorder, VnetEncoder
from .stack import Stack, StackError

__all__ = ["Stack", "StackError", "PacketEncoder", "VnetEncoder", "SegmentRecorder"]
