"""Wire format: the Segment model, the struct codec, checksums and the pcap writer."""
from .codec import AckTemplate, Malformed, build, build_options, ip_int, ip_str, parse
from .pcap import PcapWriter
from .segment import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Segment, TcpOptions, flag_str

__all__ = [
    "ACK", "AckTemplate", "CWR", "ECE", "FIN", "PSH", "RST", "SYN", "URG", "Malformed", "PcapWriter", "Segment",
    "TcpOptions", "build", "build_options", "flag_str", "ip_int", "ip_str", "parse",
]
