"""Who is on the other end of a loopback TCP connection: the uid that owns the client's socket.

A Unix socket tells its peer's credentials (``SO_PEERCRED``); a TCP socket does not. On
loopback both ends are sockets of this host, so the kernel's table of TCP sockets
(``/proc/net/tcp`` and ``/proc/net/tcp6``, columns in ``proc(5)``) holds the client's:
the row whose local address is the connection's peer and whose remote address is the
connection's own local address. Its ``uid`` column is the owner of that socket.

Used by the gateway for endpoints created with ``--local`` (az ml's local endpoints, which
take requests with no key): a request with no ``Authorization`` header is let in only when
its connection comes from a socket of the workspace owner's uid; anyone else still needs
the key. Linux only: elsewhere, and for any address not found, the answer is None (no
keyless access).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

_TABLES = {socket.AF_INET: "/proc/net/tcp", socket.AF_INET6: "/proc/net/tcp6"}


def _hex_address(host: str, port: int) -> tuple[str, str] | None:
    """``host:port`` as ``/proc/net/tcp*`` prints them (the address's 32-bit words in host
    byte order, upper-case hex), with the table to look in; None for a non-IP host."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    packed = ip.packed
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    text = "".join(f"{w:08X}" for w in words)
    table = _TABLES[socket.AF_INET if ip.version == 4 else socket.AF_INET6]
    return table, f"{text}:{port:04X}"


def peer_uid(peer: tuple | None, local: tuple | None) -> int | None:
    """The uid owning the socket at ``peer`` that is connected to ``local`` (both as
    ``transport.get_extra_info("peername"/"sockname")`` give them), or None."""
    if not sys.platform.startswith("linux") or not peer or not local:
        return None
    theirs = _hex_address(str(peer[0]), int(peer[1]))
    ours = _hex_address(str(local[0]), int(local[1]))
    if theirs is None or ours is None or theirs[0] != ours[0]:
        return None
    table, want_local = theirs
    want_remote = ours[1]
    try:
        with open(table, encoding="ascii") as rows:
            next(rows, None)  # the header line
            for row in rows:
                cols = row.split()
                if len(cols) > 7 and cols[1] == want_local and cols[2] == want_remote:
                    return int(cols[7])
    except OSError:
        return None
    return None
