"""Free local ports for a show started by a benchmark or a test.

The show's defaults (OSC on UDP 9000, OSCQuery on TCP 9010) may be taken on
the machine: by a show someone is running, another program, or a parallel
test run. Whatever starts a show of its own passes ports from here, or 0 (off)
for inputs it does not use. A port is free when asked; another program could
take it before the show binds it (the show then stops with one clear error).
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_udp_port(host: str = HOST) -> int:
    """A UDP port nothing is bound to on `host` now (the kernel's choice for port 0)."""
    return _free(socket.SOCK_DGRAM, host)


def free_tcp_port(host: str = HOST) -> int:
    """A TCP port nothing listens on at `host` now."""
    return _free(socket.SOCK_STREAM, host)


def _free(kind: socket.SocketKind, host: str) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
