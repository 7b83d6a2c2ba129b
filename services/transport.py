"""Where credentials may travel: never in clear text past this machine.

A bearer token (ARM's, an Azure ML scoring key or token, a kubeconfig token) sent over
plain ``http://`` can be read and reused by anyone on the path. It is refused before
any connection is made, except to loopback (127.0.0.0/8, ::1, ``localhost``): local
proxies, port-forwards and test servers, whose traffic never leaves the machine.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any
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


#: where a CA bundle to trust may be named, first wins: requests' two (what azure-cli and
#: azure-identity's transport read, REQUESTS_CA_BUNDLE before CURL_CA_BUNDLE: requests'
#: Session.merge_environment_settings; azure-cli PR #21807 "Azure CLI relies on the
#: requests python package, which allows users to set custom CA bundle paths through two
#: environment variables"), then OpenSSL's (what httpx reads on its own)
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def tls_verify(env: Mapping[str, str] | None = None) -> Any:
    """What an HTTPS client of a cloud (ARM, blob storage, scoring URIs) verifies servers
    against: an ``ssl.SSLContext`` trusting the CA bundle (a file, or a directory as
    ``c_rehash`` leaves it) the first of :data:`CA_BUNDLE_VARIABLES` names, so a
    TLS-inspecting proxy trusted for ``az`` is trusted here too; else True (certifi's
    roots). An empty variable counts as unset, as requests has it. A bundle that does not
    exist is InvalidInput naming the variable (nothing is sent)."""
    env = os.environ if env is None else env
    for name in CA_BUNDLE_VARIABLES:
        where = env.get(name)
        if not where:
            continue
        import ssl  # here: only when a bundle is named (the cold start)

        try:
            if os.path.isdir(where):
                return ssl.create_default_context(capath=where)
            return ssl.create_default_context(cafile=where)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInput(
                name,
                where,
                f"cannot read a CA bundle there ({exc.strerror or exc})",
                f"point {name} at the PEM file of the CA to trust (your proxy's), or unset it",
            ) from None
    return True
