"""Who is on the other end of a loopback TCP connection: the uid that owns the client's socket.

A Unix socket tells its peer's credentials (``SO_PEERCRED``); a TCP socket does not. On
loopback both ends are sockets of this host, so the kernel knows the client's socket: the
one whose own address is the connection's peer and whose remote address is the
connection's own local address. It is asked for that one socket by its four addresses
(``sock_diag(7)``, an exact ``SOCK_DIAG_BY_FAMILY`` request without ``NLM_F_DUMP``, as
``ss`` asks), which costs the same however many sockets the host has: reading the whole
table (``/proc/net/tcp``) on every keyless request let any local user slow the gateway
for everyone by holding thousands of connections open (24 ms a read with 8,000 rows).
The socket must be ``ESTABLISHED`` and still held by a process (an inode): a socket its
process has closed is orphaned, and older kernels report an orphan's uid as 0 (root's).

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

_SOCK_DIAG_BY_FAMILY = 20  # linux/sock_diag.h
_NETLINK_SOCK_DIAG = 4  # linux/netlink.h
_NLMSG_ERROR = 2
_NLM_F_REQUEST = 1
_TCP_ESTABLISHED = 1
_NLMSG = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_REQ = struct.Struct("=BBBBI")  # inet_diag_req_v2: family, protocol, ext, pad, states
_NOCOOKIE = b"\xff" * 8  # INET_DIAG_NOCOOKIE: any socket with these addresses
# inet_diag_msg: family, state, timer, retrans; sockid (48 bytes); expires, rqueue, wqueue;
# uid, inode
_MSG_STATE = 1
_MSG_UID = 4 + 48 + 12


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address (an IPv4-mapped IPv6 one as its IPv4 address: the kernel keeps such a
    connection under its IPv4 addresses), or None."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _request(src: tuple, dst: tuple, family: int) -> bytes:
    """The netlink message asking for the TCP socket at ``src`` connected to ``dst``."""
    sockid = (
        struct.pack("!HH", src[1], dst[1])
        + src[0].packed.ljust(16, b"\0")
        + dst[0].packed.ljust(16, b"\0")
        + struct.pack("=I", 0)  # any interface
        + _NOCOOKIE
    )
    body = _REQ.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_ESTABLISHED) + sockid
    return _NLMSG.pack(_NLMSG.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0) + body


def peer_uid(peer: tuple | None, local: tuple | None) -> int | None:
    """The uid owning the socket at ``peer`` that is connected to ``local`` (both as
    ``transport.get_extra_info("peername"/"sockname")`` give them), or None."""
    if not sys.platform.startswith("linux") or not peer or not local:
        return None
    theirs, ours = _address(str(peer[0])), _address(str(local[0]))
    if theirs is None or ours is None or theirs.version != ours.version:
        return None
    if not (theirs.is_loopback and ours.is_loopback):
        return None  # both ends on loopback, or it is no local socket's
    family = socket.AF_INET if theirs.version == 4 else socket.AF_INET6
    message = _request((theirs, int(peer[1])), (ours, int(local[1])), family)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)
            nl.sendto(message, (0, 0))
            answer = nl.recv(8192)
    except OSError:
        return None
    if len(answer) < _NLMSG.size + _MSG_UID + 8:
        return None  # an NLMSG_ERROR (ENOENT: no such socket) is shorter
    _, kind, _, _, _ = _NLMSG.unpack_from(answer)
    body = _NLMSG.size
    if kind != _SOCK_DIAG_BY_FAMILY or answer[body + _MSG_STATE] != _TCP_ESTABLISHED:
        return None
    uid, inode = struct.unpack_from("=II", answer, body + _MSG_UID)
    return uid if inode else None  # inode 0: orphaned, its process closed it
