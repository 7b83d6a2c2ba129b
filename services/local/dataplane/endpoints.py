"""An endpoint as the gateway sees it: who may call it (its keys or token secret) and
where its requests go (the traffic split, the busiest deployment, the mirror's share)."""

from __future__ import annotations

import hmac

from ...drivers.base import EndpointRoute
from ...scoring.host import TokenError, verify_token


class RoutedEndpoint:
    """An endpoint's auth and traffic split (immutable once built, except the SWRR state)."""

    def __init__(self, route: EndpointRoute) -> None:
        self.route = route
        self.name = route.name
        self.mode = str(route.auth.mode)
        self.keys = [route.auth.primary_key.encode(), route.auth.secondary_key.encode()]
        self.secret = route.auth.token_secret
        self.owner_uid = route.auth.owner_uid
        peers = sorted((n, int(w)) for n, w in route.traffic.items() if int(w) > 0)
        self.names = [n for n, _ in peers]
        self.weights = [w for _, w in peers]
        self.current = [0] * len(peers)
        self.total = sum(self.weights)
        mirror = [(n, int(p)) for n, p in route.mirror_traffic.items() if int(p) > 0]
        self.mirror_name, self.mirror_pct = mirror[0] if mirror else (None, 0)
        self.mirror_count = 0

    def pick(self) -> str | None:
        """Smooth weighted round robin (nginx): exact ratios, evenly interleaved."""
        n = len(self.weights)
        if n == 0:
            return None
        if n == 1:
            return self.names[0]
        current, weights = self.current, self.weights
        best = 0
        for i in range(n):
            current[i] += weights[i]
            if current[i] > current[best]:
                best = i
        current[best] -= self.total
        return self.names[best]

    def busiest(self) -> str | None:
        """The deployment with the most traffic (ties: by name), without moving the split."""
        if not self.weights:
            return None
        return min(zip(self.weights, self.names, strict=True), key=lambda wn: (-wn[0], wn[1]))[1]

    def mirror_tick(self) -> str | None:
        """Exactly ``mirror_pct`` of every 100 requests, spread out (Bresenham)."""
        c = self.mirror_count
        self.mirror_count = c + 1
        if (c + 1) * self.mirror_pct // 100 > c * self.mirror_pct // 100:
            return self.mirror_name
        return None

    def authenticate(self, header: str | None) -> str | None:
        """None when allowed; else the reason (never echoes the credential)."""
        if self.mode == "none":
            return None
        what = "key" if self.mode == "key" else "token"
        if header is None:
            return f"missing Authorization header; send 'Authorization: Bearer <{what}>'"
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if (
            scheme.lower() != "bearer"
            or not credential
            or " " in credential
            or not credential.isascii()  # keys and tokens are ASCII; bad bytes arrive escaped
        ):
            return f"malformed Authorization header: expected 'Bearer <{what}>'"
        if self.mode == "key":
            given = credential.encode()
            ok_primary = hmac.compare_digest(given, self.keys[0])
            ok_secondary = hmac.compare_digest(given, self.keys[1])
            if ok_primary or ok_secondary:
                return None
            return (
                "invalid key; get the current keys with: "
                f"modeldeck online-endpoint get-credentials -n {self.name}"
            )
        try:
            verify_token(self.secret, credential, self.name)
        except TokenError as exc:
            return str(exc)
        return None
