"""How a client reaches an endpoint: its keys, its tokens, and a call to its scoring URI
from the control plane (``online-endpoint invoke``) with the endpoint's own credentials."""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...api.domain import AuthMode, EndpointKeys, EndpointToken, InvokeResult, KeyType
from ...api.errors import BackendError, InvalidInput, Unreachable
from ...drivers.base import ScoresThroughApi

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("modeldeck.daemon")

#: How long the scoring URI of a Kubernetes endpoint may take to accept the connection
#: before the call goes through the API server instead (a load balancer this host cannot
#: reach often drops the packets rather than refusing them).
CONNECT_TIMEOUT_S = 5.0


def _draw(traffic: dict[str, int]) -> str | None:
    """A deployment drawn by the traffic weights (None when every weight is 0)."""
    names = [n for n, pct in sorted(traffic.items()) if pct > 0]
    if not names:
        return None
    return random.choices(names, weights=[traffic[n] for n in names])[0]


def _answered(hdrs: dict[str, str]) -> str | None:
    """The deployment that answered, by the response's (lower-cased) headers."""
    return hdrs.get("azureml-model-deployment") or hdrs.get("x-ms-azureml-model-deployment")


def new_key() -> str:
    """32 random bytes, url-safe."""
    return secrets.token_urlsafe(32)


def _require_auth(mode: str, wanted: AuthMode, what: str, other: str) -> None:
    """Refuse ``what`` (keys, tokens) on an endpoint whose auth mode is not ``wanted``: the
    fix is ``other`` (the other credential) when it has one, else that it needs none."""
    if mode != wanted.value:
        raise InvalidInput(
            "auth_mode",
            mode,
            f"{what} are for endpoints with auth_mode {wanted.value}",
            other
            if mode in (AuthMode.KEY.value, AuthMode.AML_TOKEN.value)
            else "this endpoint needs no credentials",
        )


def _unreachable(uri: str, exc: BaseException, name: str, proxy: object) -> Unreachable:
    return Unreachable(
        f"the scoring URI {uri} did not answer: {exc or type(exc).__name__}",
        fix="check the daemon's log and the deployment's state"
        + (
            f", or call it through the API server: modeldeck online-endpoint invoke -n {name} "
            "--via api"
            if proxy is not None
            else ""
        ),
    )


class Access:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store
        self._http: Any = None  # the aiohttp session of invoke, made when first used

    def keys(self, name: str) -> EndpointKeys:
        ep = self.engine.endpoint_row(name)
        _require_auth(
            ep.auth_mode, AuthMode.KEY, "keys", "get a token instead (auth_mode aml_token)"
        )
        return EndpointKeys(primaryKey=ep.primary_key, secondaryKey=ep.secondary_key)

    async def regenerate_keys(self, name: str, key_type: KeyType) -> EndpointKeys:
        key_type = KeyType.parse(key_type)  # type: ignore[assignment]
        async with self.engine.admission.lock:
            ep = self.engine.endpoint_row(name)
            if key_type is KeyType.PRIMARY:
                new = replace(ep, primary_key=new_key())
            else:
                new = replace(ep, secondary_key=new_key())
            # the gateway learns the new key (and forgets the old one) before we answer
            await self.engine.apply_route(
                ep.cluster, replace(self.engine.route(new), base=self.engine.route(ep))
            )
            self.store.update_endpoint(
                name, primary_key=new.primary_key, secondary_key=new.secondary_key
            )
        log.info("endpoint %s: %s key regenerated", name, key_type.value)
        return EndpointKeys(primaryKey=new.primary_key, secondaryKey=new.secondary_key)

    def token(self, name: str) -> EndpointToken:
        ep = self.engine.endpoint_row(name)
        _require_auth(
            ep.auth_mode, AuthMode.AML_TOKEN, "tokens", "get the keys instead (auth_mode key)"
        )
        from ...scoring.host import mint_token

        token, expiry, refresh = mint_token(ep.token_secret, ep.name, self.engine.token_ttl_s)
        return EndpointToken(accessToken=token, expiryTimeUtc=expiry, refreshAfterTimeUtc=refresh)

    async def invoke(
        self,
        name: str,
        body: bytes,
        *,
        deployment: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 60.0,
        via: str | None = None,
    ) -> InvokeResult:
        """POST to the scoring URI with the endpoint's key or token. On a Kubernetes cluster,
        with ``via="api"`` or when the scoring URI is unknown or does not take the connection
        (refused, DNS, connect time-out: the request was not sent), through the API server's
        service proxy instead; the result's ``via`` says which path was used."""
        ep = self.engine.endpoint_row(name)
        uri = self.engine.scoring_uri(ep)
        driver = self.engine.drivers.get(ep.cluster)
        proxy = driver if isinstance(driver, ScoresThroughApi) else None
        if via not in (None, "api", "uri"):
            raise InvalidInput("--via", via, "must be api or uri", "leave --via out")
        if via == "api" and proxy is None:
            raise InvalidInput(
                "--via",
                via,
                f"goes through a Kubernetes API server; endpoint '{name}' runs on "
                f"cluster '{ep.cluster}', which is not one",
                "leave --via out",
            )
        if not uri and (proxy is None or via == "uri"):
            self.engine.driver(ep.cluster)  # raises Unreachable with the reason
            note = proxy.scoring_uri_note(name) if proxy else None
            raise BackendError(note or f"endpoint '{name}' has no scoring URI")
        if deployment is not None and deployment not in self.engine.live_deployments(name):
            raise InvalidInput(
                "deployment_name",
                deployment,
                f"there is no deployment '{deployment}' on this endpoint",
                "existing deployments: "
                + (", ".join(self.engine.live_deployments(name)) or "none"),
            )
        send = {"Content-Type": "application/json"}
        send.update(headers or {})
        if ep.auth_mode == AuthMode.KEY.value:
            send["Authorization"] = f"Bearer {ep.primary_key}"
        elif ep.auth_mode == AuthMode.AML_TOKEN.value:
            from ...scoring.host import mint_token

            send["Authorization"] = f"Bearer {mint_token(ep.token_secret, name, 300.0)[0]}"
        if deployment:
            send["azureml-model-deployment"] = deployment
        if proxy is not None and (via == "api" or not uri):
            why = "as asked (--via api)" if via == "api" else "the endpoint has no scoring URI"
            return await self._via_api(proxy, ep, body, send, deployment, timeout_s, why)
        import aiohttp

        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        try:
            async with self._http.post(
                uri,
                data=body,
                headers=send,
                timeout=aiohttp.ClientTimeout(
                    total=timeout_s, sock_connect=CONNECT_TIMEOUT_S if proxy else None
                ),
            ) as resp:
                data = await resp.read()
                hdrs = {k.lower(): v for k, v in resp.headers.items()}
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            if proxy is None or via == "uri":
                raise _unreachable(uri, exc, name, proxy) from None
            # not sent: going through the API server cannot score it twice
            why = f"the scoring URI {uri} did not take the connection ({exc or type(exc).__name__})"
            return await self._via_api(proxy, ep, body, send, deployment, timeout_s, why)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(uri, exc, name, proxy) from None
        answered = _answered(hdrs)
        return InvokeResult(
            status=resp.status,
            body=data,
            deployment=answered,
            request_id=hdrs.get("x-request-id"),
            headers=hdrs,
        )

    async def _via_api(
        self,
        proxy: ScoresThroughApi,
        ep: Any,
        body: bytes,
        send: dict[str, str],
        deployment: str | None,
        timeout_s: float,
        why: str,
    ) -> InvokeResult:
        """Through the API server's service proxy to one deployment's Service: the one the
        header names, else one drawn by the traffic weights, as the Gateway splits (the
        mirror is not copied: the API server has no mirror)."""
        target = deployment or _draw(ep.traffic)
        if target is None:
            raise BackendError(
                f"endpoint '{ep.name}' has no traffic to send the request to",
                fix=f"give a deployment traffic (modeldeck online-endpoint update -n {ep.name} "
                "--traffic NAME=100), or name one: --deployment-name NAME",
            )
        status, data, hdrs, path = await proxy.score_via_api(ep.name, target, body, send, timeout_s)
        answered = _answered(hdrs)
        return InvokeResult(
            status=status,
            body=data,
            deployment=answered or target,
            request_id=hdrs.get("x-request-id"),
            headers=hdrs,
            via=f"the API server's service proxy {path} ({why})",
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
