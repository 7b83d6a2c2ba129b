"""Online endpoints: create, change (traffic, mirror, description, tags, control),
delete; their keys and tokens; and invoking their scoring URI."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from ..api import validation
from ..api.domain import (
    Endpoint,
    EndpointKeys,
    EndpointPatch,
    EndpointSpec,
    EndpointToken,
    InvokeResult,
    KeyType,
)
from ..api.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    Unauthorized,
)
from ..api.workspace import OperationHandle
from ..transport import refuse_cleartext_credentials
from . import mapping
from .arm import Lro
from .auth import TokenProvider
from .conflicts import ConflictCheck


class EndpointRoom(ConflictCheck):
    """Endpoints, their keys and tokens, and invoke (uses ClusterRoom._raw_cluster)."""

    ml_scope: str  # the Azure ML data-plane scope (aad_token endpoints)
    _token_cache: dict[str, EndpointToken]
    _invoke_cache: dict[str, tuple[str, str, float]]  # name -> (scoring URI, secret, until)
    _ml_tokens: TokenProvider | None

    async def list_endpoints(self) -> list[Endpoint]:
        return [self._read("endpoint", e) for e in await self._raw_endpoints()]

    async def get_endpoint(self, name: str) -> Endpoint:
        return self._read("endpoint", await self._raw_endpoint(name))

    def _read(self, kind: str, res: dict[str, Any]) -> Endpoint:
        self._remember(kind, str(res.get("name") or ""), res)
        return mapping.endpoint_to_domain(res)

    async def create_endpoint(self, spec: EndpointSpec) -> OperationHandle:
        validation.endpoint_spec(spec)
        if mapping.auth_mode_to_arm(spec.auth_mode) is None:
            raise InvalidInput(
                "auth_mode",
                spec.auth_mode.value,
                "Azure ML online endpoints take key or aml_token",
                "set auth_mode: key (or aml_token)",
            )
        if spec.traffic or spec.mirror_traffic:
            raise InvalidInput(
                "traffic",
                dict(spec.traffic),
                "a new endpoint has no deployments to send traffic to",
                "create the endpoint, then its deployments, then set traffic",
            )
        if await self._get_or_none(self._ep(spec.name), "endpoint", spec.name):
            raise Conflict(
                f"endpoint '{spec.name}' already exists",
                fix="choose another name, or change it with: modeldeck online-endpoint update",
            )
        compute_id = None  # none: a managed online endpoint, as az ml makes one
        if spec.compute:
            await self._raw_cluster(spec.compute)
            compute_id = f"{self._ws}/computes/{spec.compute}"
        body = mapping.endpoint_create_body(
            spec, compute_id=compute_id, location=await self.location()
        )
        lro = await self._begin("PUT", self._ep(spec.name), "endpoint.create", spec.name, json=body)
        return self._track(lro)

    async def _put_endpoint(
        self,
        name: str,
        patch: EndpointPatch,
        *,
        kind: str = "endpoint.update",
        if_revision: str | None = None,
    ) -> Lro:
        """Read the endpoint and its deployments, validate, PUT with the FULL maps.

        With ``if_revision``, refused with Conflict when the endpoint read just now has
        another revision (see :meth:`_check_revision`).
        """
        traffic, mirror_traffic, control = patch.traffic, patch.mirror_traffic, patch.control
        description, tags = patch.description, patch.tags
        current, deps = await asyncio.gather(self._raw_endpoint(name), self._deployment_names(name))
        self._check_revision("endpoint", name, current, if_revision)
        props = current.get("properties") or {}
        live_now = {str(k): int(v) for k, v in (props.get("traffic") or {}).items()}
        mirror_now = {str(k): int(v) for k, v in (props.get("mirrorTraffic") or {}).items() if v}
        if traffic is not None:
            given = validation.traffic(traffic, deps)
            new_traffic = {d: 0 for d in deps}
            new_traffic.update(given)
        else:  # keep every deployment's weight as read just now
            new_traffic = {d: live_now.get(d, 0) for d in deps}
        if mirror_traffic is not None:
            new_mirror = validation.mirror_traffic(mirror_traffic, new_traffic, deps)
        else:
            new_mirror = {d: p for d, p in mirror_now.items() if d in deps}
            validation.mirror_traffic(new_mirror, new_traffic, deps)
        if description is not None:
            validation.description(description)
        all_tags = {str(k): str(v) for k, v in (current.get("tags") or {}).items()}
        if tags is not None:
            user = validation.tags(tags)
            all_tags = {k: v for k, v in all_tags.items() if k.startswith("modeldeck.")}
            all_tags.update(user)
        if control is not None:
            if control and control not in deps:
                raise InvalidInput.no_deployment("control", control, control, deps)
            if control:
                all_tags[mapping.TAG_CONTROL] = control
            else:
                all_tags.pop(mapping.TAG_CONTROL, None)
        body = mapping.endpoint_update_body(
            current,
            traffic=new_traffic,
            mirror_traffic=new_mirror,
            description=description,
            tags=all_tags,
            public_network_access=patch.public_network_access,
        )
        return await self._begin("PUT", self._ep(name), kind, name, json=body)

    async def delete_endpoint(self, name: str) -> OperationHandle:
        await self._raw_endpoint(name)
        lro = await self._begin("DELETE", self._ep(name), "endpoint.delete", name)
        self._invoke_cache.pop(name, None)
        self._token_cache.pop(name, None)
        return self._track(lro)

    async def get_keys(self, name: str) -> EndpointKeys:
        resp = await self.arm.request(
            "POST", f"{self._ep(name)}/listKeys", kind="endpoint", name=name, retry_unsafe=True
        )
        data = resp.json()
        return EndpointKeys(
            primaryKey=str(data.get("primaryKey") or ""),
            secondaryKey=str(data.get("secondaryKey") or ""),
        )

    async def regenerate_keys(self, name: str, key_type: KeyType) -> EndpointKeys:
        kt = KeyType.parse(key_type)
        lro = await self._begin(
            "POST",
            f"{self._ep(name)}/regenerateKeys",
            "endpoint.regenerate_keys",
            name,
            json={"keyType": "Primary" if kt is KeyType.PRIMARY else "Secondary"},
        )
        self._ops[lro.id] = lro
        self._invoke_cache.pop(name, None)
        await self._wait(lro)
        return await self.get_keys(name)

    async def get_token(self, name: str) -> EndpointToken:
        cached = self._token_cache.get(name)
        if cached is not None and time.time() < cached.refreshAfterTimeUtc:
            return cached
        resp = await self.arm.request(
            "POST", f"{self._ep(name)}/token", kind="endpoint", name=name, retry_unsafe=True
        )
        data = resp.json()
        expiry = float(data.get("expiryTimeUtc") or 0)
        refresh = float(data.get("refreshAfterTimeUtc") or 0) or expiry - 300
        token = EndpointToken(
            accessToken=str(data.get("accessToken") or ""),
            expiryTimeUtc=expiry,
            refreshAfterTimeUtc=refresh,
            tokenType=str(data.get("tokenType") or "Bearer"),
        )
        self._token_cache[name] = token
        return token

    async def _scoring_auth(self, name: str, *, fresh: bool = False) -> tuple[str, str]:
        """(scoring URI, bearer secret), cached for a minute (tokens: until refresh-by)."""
        cached = self._invoke_cache.get(name)
        if cached is not None and not fresh and time.time() < cached[2]:
            return cached[0], cached[1]
        ep = await self._raw_endpoint(name)
        props = ep.get("properties") or {}
        uri = str(props.get("scoringUri") or "")
        if not uri:
            raise Conflict(
                f"endpoint '{name}' has no scoring URI yet (state {props.get('provisioningState')})",
                fix="wait until it is Succeeded: modeldeck online-endpoint show -n " + name,
            )
        mode = str(props.get("authMode") or "Key").lower()
        until = time.time() + 60
        if mode == "key":
            secret = (await self.get_keys(name)).primaryKey
        elif mode == "amltoken":
            if fresh:
                self._token_cache.pop(name, None)
            tok = await self.get_token(name)
            secret, until = tok.accessToken, min(until, tok.refreshAfterTimeUtc)
        else:  # AADToken: a Microsoft Entra token for Azure ML
            if self._ml_tokens is None:
                self._ml_tokens = self.tokens.for_scope(self.ml_scope)
            secret = await self._ml_tokens.token()
        self._invoke_cache[name] = (uri, secret, until)
        return uri, secret

    async def invoke(
        self,
        name: str,
        body: bytes,
        *,
        deployment: str | None = None,
        headers: dict[str, str] | None = None,
        via: str | None = None,
    ) -> InvokeResult:
        if via == "api":
            raise InvalidInput(
                "--via",
                via,
                "goes through a Kubernetes API server: for clusters attached to a local "
                "workspace; Azure ML endpoints are called at their scoring URI",
                "leave --via out",
            )
        for attempt in range(2):
            uri, secret = await self._scoring_auth(name, fresh=attempt > 0)
            refuse_cleartext_credentials(
                uri,
                what=f"the key or token of endpoint '{name}'",
                field="scoring_uri",
                fix="give the endpoint's compute TLS (for a Kubernetes compute: the inference "
                "router's sslConfiguration): Azure ML then gives it an https scoring URI",
            )
            h = {"Content-Type": "application/json", **(headers or {})}
            h["Authorization"] = f"Bearer {secret}"
            if deployment:
                h["azureml-model-deployment"] = deployment
            try:
                resp = await self._client().post(uri, content=body, headers=h)
            except httpx.TimeoutException:
                raise BackendError(
                    f"the scoring URI of '{name}' did not answer in time",
                    fix="raise request_settings.request_timeout_ms, or check the deployment's logs",
                ) from None
            except httpx.TransportError as exc:
                raise BackendError(f"cannot reach the scoring URI of '{name}': {exc}") from None
            if resp.status_code == 401 and attempt == 0:
                continue  # keys rotated or token expired: fetch again once
            if resp.status_code == 401:
                raise Unauthorized(
                    f"the scoring URI of '{name}' refused the key/token",
                    fix="check the endpoint's auth mode; if keys were just regenerated, try again",
                )
            hdrs = {k.lower(): v for k, v in resp.headers.items()}
            return InvokeResult(
                status=resp.status_code,
                body=resp.content,
                deployment=hdrs.get("azureml-model-deployment")
                or hdrs.get("x-ms-azureml-model-deployment"),
                request_id=hdrs.get("x-request-id") or hdrs.get("x-ms-request-id"),
                headers=hdrs,
            )
        raise AssertionError("unreachable")  # pragma: no cover
