"""The trio shell: runs a sans-IO Stack on a TUN fd and gives apps trio streams."""
from .endpoint import Endpoint
from .listener import TcpListener, open_tcp_listener, open_tcp_stream, serve_tcp
from .stream import TcpStream
from .tun import FdIO, MemoryIO, memory_pair

__all__ = ["Endpoint", "TcpListener", "TcpStream", "open_tcp_listener", "open_tcp_stream", "serve_tcp",
           "FdIO", "MemoryIO", "memory_pair"]
