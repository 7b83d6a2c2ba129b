"""Access tokens of ``aml_token`` endpoints: JWT (HS256) signed with the endpoint's secret.

The control plane mints them (``get-credentials`` on an ``aml_token`` endpoint); the
gateway verifies them on every request. Standard library only: this module is cheap
to import and its verification costs one HMAC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

ISSUER = "modeldeck"
_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(Exception):
    """Why a token is refused; the message is safe to send back (it holds no secret)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER_B64 = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())


def _sign(secret: str, signing_input: bytes) -> bytes:
    return hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()


def encode(secret: str, claims: dict[str, Any]) -> str:
    """A signed JWT for ``claims`` (no check of their content)."""
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{_HEADER_B64}.{payload}".encode("ascii")
    return f"{_HEADER_B64}.{payload}.{_b64(_sign(secret, signing_input))}"


def mint_token(
    secret: str, endpoint: str, ttl_s: float = 3600.0, *, now: float | None = None
) -> tuple[str, float, float]:
    """Return ``(token, expiry, refresh_after)``, both times in epoch seconds.

    ``refresh_after`` is half way through the token's life, as Azure ML gives it:
    a client that refreshes then never presents an expired token.
    """
    issued = time.time() if now is None else now
    expiry = issued + ttl_s
    claims = {
        "iss": ISSUER,
        "aud": endpoint,
        "iat": int(issued),
        "exp": expiry,
        "jti": secrets.token_urlsafe(8),
    }
    return encode(secret, claims), expiry, issued + ttl_s / 2


def verify_token(
    secret: str, token: str, endpoint: str, *, now: float | None = None
) -> dict[str, Any]:
    """The token's claims when it is valid for ``endpoint``; raises :class:`TokenError`."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token: expected a JWT (three dot-separated parts)")
    header_b64, payload_b64, sig_b64 = parts
    try:
        signature = _unb64(sig_b64)
        header = json.loads(_unb64(header_b64))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("malformed token: not base64url JSON") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise TokenError("malformed token: only HS256 tokens are accepted")
    expected = _sign(secret, f"{header_b64}.{payload_b64}".encode("ascii"))
    if not hmac.compare_digest(signature, expected):
        raise TokenError("invalid token: bad signature (it was not issued for this endpoint)")
    try:
        claims = json.loads(_unb64(payload_b64))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("malformed token: payload is not base64url JSON") from exc
    if not isinstance(claims, dict):
        raise TokenError("malformed token: payload is not a JSON object")
    if claims.get("aud") != endpoint:
        raise TokenError("invalid token: it was issued for another endpoint")
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise TokenError("malformed token: no exp claim")
    current = time.time() if now is None else now
    if current >= exp:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        raise TokenError(
            f"token expired at {stamp}; get a new one with: "
            f"modeldeck online-endpoint get-credentials -n {endpoint}"
        )
    return claims
