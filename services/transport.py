"""Where credentials may travel: never in clear text past this machine.

A bearer token (ARM's, an Azure ML scoring key or token, a kubeconfig token) sent over
plain ``http://`` can be read and reused by anyone on the path. It is refused before
any connection is made, except to loopback (127.0.0.0/8, ::1, ``localhost``): local
proxies, port-forwards and test servers, whose traffic never leaves the machine.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .api.errors import InvalidInput


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost`` (names are not resolved: ``localhost`` only)."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cleartext_to_remote(url: str) -> bool:
    """True when ``url`` is plain http to a host that is not loopback."""
    parts = urlsplit(url)
    return parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname or "")


def refuse_cleartext_credentials(url: str, *, what: str, field: str, fix: str) -> None:
    """Raise InvalidInput when ``what`` (e.g. "the ARM bearer token") would go to ``url``
    over plain http to a host that is not loopback. ``fix`` says where to set https."""
    if not cleartext_to_remote(url):
        return
    shown = url.split("?", 1)[0]
    raise InvalidInput(
        field,
        shown,
        f"{what} would go over plain http to a host that is not loopback (only 127.0.0.0/8, "
        "::1 and localhost are allowed): anyone on the network path could read and reuse "
        "it; nothing was sent",
        fix,
    )
