"""ARM access tokens: ``azure-identity`` credentials, cached and refreshed before expiry.

``DefaultAzureCredential`` is imported only when a token is first needed (the CLI's
cold start stays small). It tries, in order: environment variables, workload
identity, managed identity, the shared cache, VS Code, ``az login``, PowerShell and
``azd``; ``AZURE_TOKEN_CREDENTIALS`` narrows that chain (``dev``, ``prod`` or one
credential name such as ``AzureCliCredential``): azure-identity reads it itself.
On a jump box without managed identity, ``AZURE_TOKEN_CREDENTIALS=AzureCliCredential``
skips the managed-identity probe.

Tests (and embedders) pass any object with ``get_token(*scopes)`` returning an
``AccessToken``-like ``(token, expires_on)``; it may be sync or async.

Tokens are never logged: ``__repr__`` of :class:`TokenProvider` shows only the expiry.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any

from ..api.errors import Unauthorized

PUBLIC_ARM = "https://management.azure.com"
LOGIN_FIX = "run: az login   (or az login --tenant TENANT_ID; on a jump box with managed identity, check that it has a role on the workspace)"
#: refresh this many seconds before the token expires
REFRESH_MARGIN = 300.0


#: ARM host -> the Azure ML data-plane audience of that cloud (``aml_resource_endpoint``
#: in azure-ai-ml's cloud table): Microsoft Entra tokens of ``aad_token`` endpoints
ML_AUDIENCES = {
    "management.azure.com": "https://ml.azure.com",
    "management.usgovcloudapi.net": "https://ml.azure.us",
    "management.chinacloudapi.cn": "https://ml.azure.cn",
}


def scope_for(arm_endpoint: str, audience: str | None = None) -> str:
    """The token scope of an ARM endpoint (sovereign clouds have their own).

    ``audience`` (the profile's ``arm_audience``) wins: Azure Stack Hub and proxies in
    front of ARM have an audience that is not their URL.
    """
    if audience:
        return audience.rstrip("/") + "/.default"
    base = arm_endpoint.rstrip("/")
    if not base.startswith("https://"):
        # a loopback fake, or a proxy: tokens are for the public cloud's audience
        return f"{PUBLIC_ARM}/.default"
    return f"{base}/.default"


def ml_scope_for(arm_scope: str, ml_audience: str | None = None) -> str:
    """The Azure ML data-plane scope of the cloud whose ARM scope is ``arm_scope``."""
    if ml_audience:
        return ml_audience.rstrip("/") + "/.default"
    host = arm_scope.split("://", 1)[-1].split("/", 1)[0]
    return ML_AUDIENCES.get(host, ML_AUDIENCES["management.azure.com"]) + "/.default"


def default_credential(authority: str | None = None) -> Any:
    """``DefaultAzureCredential``, imported lazily."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:  # pragma: no cover - depends on the install
        raise Unauthorized(
            "azure-identity is not installed, so modeldeck cannot sign in to Azure",
            fix="pip install 'modeldeck[azureml]'",
        ) from None
    # azure-identity logs each failed sign-in at WARNING; with no handler configured (the
    # CLI), Python's last-resort handler would print it to stderr before our own error,
    # which already carries its words. A NullHandler keeps it for apps that log.
    azure_log = logging.getLogger("azure.identity")
    if not azure_log.handlers:
        azure_log.addHandler(logging.NullHandler())
    kwargs: dict[str, Any] = {}
    if authority:
        kwargs["authority"] = authority
    return DefaultAzureCredential(**kwargs)


class TokenProvider:
    """One cached bearer token for one scope, refreshed ``margin`` seconds before expiry."""

    def __init__(
        self,
        credential: Any | None = None,
        *,
        scope: str = f"{PUBLIC_ARM}/.default",
        authority: str | None = None,
        margin: float = REFRESH_MARGIN,
        parent: TokenProvider | None = None,
    ) -> None:
        self._credential = credential
        self._parent = parent
        self._authority = authority
        self.scope = scope
        self.margin = margin
        self._token: str | None = None
        self._expires_on: float = 0.0
        #: when the credential said to refresh (azure-identity's ``refresh_on``), if it did
        self._refresh_on: float | None = None
        self._lock = asyncio.Lock()
        #: how many tokens were fetched from the credential (tests and the doc use it)
        self.fetches = 0

    def __repr__(self) -> str:
        return f"TokenProvider(scope={self.scope!r}, expires_on={self._expires_on:.0f})"

    def for_scope(self, scope: str) -> TokenProvider:
        """A provider of tokens for another audience, sharing this one's credential."""
        return TokenProvider(
            self._credential,
            scope=scope,
            authority=self._authority,
            margin=self.margin,
            parent=self,
        )

    def credential(self) -> Any:
        if self._credential is None:
            if self._parent is not None:
                self._credential = self._parent.credential()
            else:
                self._credential = default_credential(self._authority)
        return self._credential

    def _fresh(self) -> bool:
        if self._token is None:
            return False
        now = time.time()
        if self._refresh_on is not None and now >= self._refresh_on:
            return False  # the credential's own refresh-by (managed identity: half-life)
        return now < self._expires_on - self.margin

    def invalidate(self) -> None:
        """Forget the cached token (the server said 401: it may have been revoked)."""
        self._token = None
        self._expires_on = 0.0
        self._refresh_on = None

    async def token(self) -> str:
        if self._fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if self._fresh():
                assert self._token is not None
                return self._token
            try:
                cred = self.credential()
                # azure-identity >= 1.18: get_token_info also says when to refresh
                get_token = getattr(cred, "get_token_info", None) or cred.get_token
                if inspect.iscoroutinefunction(get_token):
                    result = await get_token(self.scope)
                else:  # azure-identity's sync credentials block (az CLI subprocess): off the loop
                    result = await asyncio.to_thread(get_token, self.scope)
                    if inspect.isawaitable(result):
                        result = await result
            except Unauthorized:
                raise
            except Exception as exc:  # azure-identity raises several types; all mean "sign in"
                raise Unauthorized(
                    f"cannot get an Azure access token: {_first_line(exc)}",
                    fix=LOGIN_FIX,
                ) from None
            token = getattr(result, "token", None)
            expires_on = getattr(result, "expires_on", None)
            if token is None and isinstance(result, tuple):
                token, expires_on = result[0], result[1]
            if not token:
                raise Unauthorized("the Azure credential returned no token", fix=LOGIN_FIX)
            self._token = str(token)
            self._expires_on = float(expires_on or 0)
            refresh_on = getattr(result, "refresh_on", None)
            self._refresh_on = float(refresh_on) if refresh_on else None
            self.fetches += 1
            if self._expires_on <= time.time():
                raise Unauthorized(
                    "the Azure credential returned an expired token (is the az login session expired?)",
                    fix=LOGIN_FIX,
                )
            return self._token

    async def close(self) -> None:
        if self._parent is not None:  # the credential is the parent's to close
            return
        cred = self._credential
        close = getattr(cred, "close", None)
        if close is None:
            return
        result = close()
        if inspect.isawaitable(result):
            await result


def _first_line(exc: BaseException) -> str:
    """The error's first line, and which credentials were tried and why each failed."""
    lines = [ln.rstrip() for ln in (str(exc).strip() or type(exc).__name__).splitlines()]
    tried = [ln.strip() for ln in lines if ln.startswith(("\t", "    ")) and ":" in ln]
    text = lines[0][:300]
    if tried:
        text += "\n  " + "\n  ".join(t[:300] for t in tried[:8])
    return text
