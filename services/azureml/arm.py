"""An async client of Azure Resource Manager (ARM) for Microsoft.MachineLearningServices.

* every call has a timeout; ``api-version`` is pinned (:data:`API_VERSION`);
* 429 and transient 5xx (500, 502, 503, 504) are retried with exponential backoff and
  full jitter, honouring ``Retry-After``; transport errors too, for idempotent methods
  (the policy and the loop: :mod:`modeldeck.services.retry`);
* a 401 drops the cached token and tries once more with a new one;
* ARM error bodies (``{"error": {code, message, details, additionalInfo}}``) become our
  typed errors with the ARM text verbatim and a hint beside it (``fix``);
* long-running operations (201/202 with ``Azure-AsyncOperation`` and/or ``Location``)
  are followed by :class:`Lro`, one poll at a time, as ``Retry-After`` says.

Tokens never reach a log line or an error message, and never travel over plain http
to anything but loopback (:mod:`modeldeck.services.transport`): such a request is
refused before any connection is made.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..api.domain import Operation, OperationStatus
from ..api.errors import (
    BackendError,
    CapacityExceeded,
    Conflict,
    InvalidInput,
    ModeldeckError,
    NotFound,
    Unauthorized,
    Unreachable,
)
from ..retry import RetryPolicy, parse_retry_after, send_with_retries
from ..transport import refuse_cleartext_credentials, tls_verify
from .auth import LOGIN_FIX, TokenProvider

#: the stable Microsoft.MachineLearningServices REST API version every call uses
API_VERSION = "2024-10-01"
#: Azure Monitor metrics (Microsoft.Insights/metrics)
METRICS_API_VERSION = "2023-10-01"
SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = "modeldeck-azureml/0.1"

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- errors


def arm_error_body(resp: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an ARM error response (or a synthesized one)."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and ("code" in err or "message" in err):
            return err
    text = resp.text.strip()[:500]
    return {"code": f"HTTP{resp.status_code}", "message": text or resp.reason_phrase}


def format_arm_error(err: dict[str, Any]) -> str:
    """ARM's words, verbatim: ``code: message`` and each detail on its own line."""
    lines = [f"{err.get('code', 'Error')}: {err.get('message', '')}".rstrip()]
    for d in err.get("details") or []:
        if isinstance(d, dict):
            target = f" (target: {d['target']})" if d.get("target") else ""
            lines.append(f"  - {d.get('code', '')}: {d.get('message', '')}{target}")
    for info in err.get("additionalInfo") or []:
        if isinstance(info, dict) and info.get("info"):
            lines.append(f"  info ({info.get('type', '')}): {info['info']}")
    return "\n".join(lines)


_CAPACITY_CODES = ("quota", "capacity", "insufficient", "outofresource", "notenoughcores")


def hint_for(code: str, status: int, kind: str = "", name: str = "") -> str | None:
    c = code.lower()
    if status in (401,) or "authentication" in c or "expiredauthenticationtoken" in c:
        return LOGIN_FIX
    if status == 403 or "authorization" in c:
        return (
            "your identity lacks a role on this workspace: ask for 'AzureML Data Scientist' "
            "(or Contributor) on it, or sign in as another account with: az login"
        )
    if any(k in c for k in _CAPACITY_CODES):
        return "ask for less CPU/memory or fewer instances, or scale the cluster (modeldeck cluster scale)"
    if "resourcenotready" in c or "deploymentfailed" in c or "initfailed" in c:
        if kind == "deployment" and "/" in name:
            e, d = name.split("/", 1)
            return f"see why the container did not start: modeldeck online-deployment get-logs -e {e} -n {d}"
        return "see the deployment's logs: modeldeck online-deployment get-logs"
    if "imagebuild" in c:
        return "the environment image failed to build: check its image name and conda file"
    if status == 404 or "notfound" in c:
        return None
    if status == 409 or "conflict" in c:
        return "another operation is running on this resource: wait for it, then try again"
    if status == 429:
        return "Azure is throttling requests: wait a minute and try again"
    if status >= 500:
        return "Azure had a transient failure: try again; if it persists, check https://status.azure.com"
    if "apiversion" in c or c == "noregisteredproviderfound":
        # the api-version is this release's pin (API_VERSION...), nothing a user sets
        return (
            "this ARM endpoint does not serve the api-version this release sends (ARM's words "
            "above): check that the profile's arm_endpoint (or MODELDECK_ARM_ENDPOINT) is the "
            "cloud the workspace is in, or upgrade modeldeck"
        )
    if status == 400:
        return "fix the value ARM names above and try again"
    if kind == "deployment" and "/" in name:
        e, d = name.split("/", 1)
        return f"see the container's log: modeldeck online-deployment get-logs -e {e} -n {d}"
    return None


def error_from_arm(
    status: int, err: dict[str, Any], *, kind: str = "resource", name: str = ""
) -> ModeldeckError:
    """A typed error carrying ARM's body verbatim (``details['arm_error']``)."""
    code = str(err.get("code", ""))
    text = format_arm_error(err)
    hint = hint_for(code, status, kind, name)
    if status == 404 or code in ("ResourceNotFound", "NotFound", "UserError.NotFound"):
        exc: ModeldeckError = NotFound(
            kind,
            name or "?",
            message=f"{kind} '{name}' not found: {text}",
            # a kind no modeldeck command lists on Azure ML (code, environment, upload...)
            fix=None if kind in _LISTED else "check the name: Azure ML studio lists what exists",
        )
    elif status == 401:
        exc = Unauthorized(f"Azure refused the sign-in: {text}", fix=hint or LOGIN_FIX)
    elif status == 403:
        exc = Unauthorized(f"Azure refused the request: {text}", fix=hint)
    elif any(k in code.lower() for k in _CAPACITY_CODES):
        exc = CapacityExceeded(text, fix=hint)
    elif status == 409:
        exc = Conflict(text, fix=hint)
    elif status == 400:
        target = str(err.get("target") or "")
        if not target:
            for d in err.get("details") or []:
                if isinstance(d, dict) and d.get("target"):
                    target = str(d["target"])
                    break
        exc = InvalidInput(target or "request", code, err.get("message", ""), hint, message=text)
    else:
        exc = BackendError(text, fix=hint)
    exc.details["arm_error"] = err
    exc.details["http_status"] = status
    return exc


#: the kinds a modeldeck command lists on Azure ML (NotFound's own fix names it)
_LISTED = frozenset({"cluster", "model", "endpoint", "deployment"})
_WORKSPACE_PATH = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/?]+)(?P<rest>/[^?]*)?",
    re.IGNORECASE,
)
#: ARM's codes for a missing subscription, resource group or parent resource
_PARENT_CODES = frozenset(
    {"subscriptionnotfound", "resourcegroupnotfound", "parentresourcenotfound"}
)


def workspace_not_found(method: str, url: str, status: int, err: dict[str, Any]) -> NotFound | None:
    """A 404 that is about the workspace itself (its name, resource group or subscription
    is wrong), not about the resource asked for: the workspace's own URL, a GET of one of
    its lists (``computes``, ``onlineEndpoints``: never 404 in a workspace that exists; a
    list under a resource, ``onlineEndpoints/E/deployments``, is 404 when E is missing),
    ARM's parent codes, or ARM naming the workspace as the resource it did not find."""
    m = _WORKSPACE_PATH.search(url)
    if status != 404 or m is None:
        return None
    ws, rg, sub = m["ws"], m["rg"], m["sub"]
    code = str(err.get("code", "")).lower()
    said = str(err.get("message", "")).lower()
    segments = [p for p in (m["rest"] or "").split("/") if p]
    if not (
        not segments
        or (method == "GET" and len(segments) == 1)
        or code in _PARENT_CODES
        or f"workspaces/{ws.lower()}'" in said
    ):
        return None
    exc = NotFound(
        "workspace",
        ws,
        message=f"workspace '{ws}' not found in resource group '{rg}' of subscription "
        f"'{sub}': {format_arm_error(err)}",
        fix="check the workspace's name, resource group and subscription (--workspace-name, "
        "--resource-group, --subscription, or the profile's workspace_name, resource_group "
        f"and subscription_id); list the workspaces you can see with: az ml workspace list -g {rg}",
    )
    exc.details["arm_error"] = err
    exc.details["http_status"] = status
    return exc


# --------------------------------------------------------------------------- long operations


@dataclass
class Lro:
    """One long operation in flight, as ARM describes it."""

    id: str
    kind: str  # e.g. "deployment.create"
    target: str  # e.g. "my-endpoint/blue"
    method: str
    resource_url: str  # the original URI (final GET after a PUT)
    async_url: str | None = None
    location_url: str | None = None
    status: OperationStatus = OperationStatus.RUNNING
    progress: float = 0.0
    message: str = ""
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    polls: int = 0
    next_poll_at: float = 0.0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    err_kind: str = "resource"
    err_name: str = ""
    #: runs after success; may start another Lro that this one then follows
    then: Callable[[], Awaitable[Lro | None]] | None = None
    #: called once with the final state (success or failure)
    on_done: Callable[[Lro], None] | None = None

    @property
    def done(self) -> bool:
        return self.status is not OperationStatus.RUNNING

    def to_operation(self) -> Operation:
        return Operation(
            id=self.id,
            kind=self.kind,
            target=self.target,
            status=self.status,
            progress=1.0 if self.done else self.progress,
            message=self.message,
            error=self.error,
            started_at=self.started_at,
            finished_at=self.finished_at,
        )


_RUNNING = {
    "inprogress",
    "running",
    "creating",
    "updating",
    "deleting",
    "accepted",
    "scaling",
    "notstarted",
}
_SUCCEEDED = {"succeeded"}
_FAILED = {"failed", "canceled", "cancelled"}


class ArmClient:
    """httpx against ``base_url`` (``https://management.azure.com`` or a sovereign cloud)."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        *,
        api_version: str = API_VERSION,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        default_poll_interval: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.api_version = api_version
        self.retry = retry or RetryPolicy()
        self.default_poll_interval = default_poll_interval
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            verify=tls_verify(),
        )
        self._inflight: dict[str, asyncio.Future[httpx.Response]] = {}
        #: requests sent (retries included): the benchmark counts them
        self.calls = 0
        #: (status, seconds waited) for each retry: what the client honoured
        self.retry_log: deque[tuple[int, float]] = deque(maxlen=100)

    async def close(self) -> None:
        await self._http.aclose()

    def _forget(self, key: str, task: asyncio.Future[httpx.Response]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: a caller that went away leaves no warning

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    # -- one request, with retries ----------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        api_version: str | None = None,
        kind: str = "resource",
        name: str = "",
        allow: tuple[int, ...] = (),
        retry_unsafe: bool = False,
    ) -> httpx.Response:
        """Send; raise a typed error for any status >= 400 not in ``allow``."""
        url = self.url(path)
        query: dict[str, Any] = dict(params or {})
        if "api-version=" not in url:
            query.setdefault("api-version", api_version or self.api_version)
        if method == "GET" and json is None:
            # the same GET in flight (three views asking for the endpoint list at once):
            # one request, its own task, so a caller's cancellation never cancels the others
            key = url + "?" + "&".join(f"{k}={v}" for k, v in sorted(query.items()))
            task = self._inflight.get(key)
            if task is None:
                task = asyncio.ensure_future(
                    self._send(method, url, query, json, kind, name, allow, retry_unsafe)
                )
                self._inflight[key] = task
                task.add_done_callback(lambda t, k=key: self._forget(k, t))
            return await asyncio.shield(task)
        return await self._send(method, url, query, json, kind, name, allow, retry_unsafe)

    async def _send(
        self,
        method: str,
        url: str,
        query: dict[str, Any],
        json: Any,
        kind: str,
        name: str,
        allow: tuple[int, ...],
        retry_unsafe: bool,
    ) -> httpx.Response:
        # before the token is even fetched; also for URLs ARM hands back (operation polls)
        refuse_cleartext_credentials(
            url,
            what="the ARM bearer token",
            field="arm_endpoint",
            fix="use an https:// arm_endpoint (the profile's arm_endpoint, or "
            "MODELDECK_ARM_ENDPOINT); plain http is only for a server on this machine "
            "(http://127.0.0.1:PORT)",
        )
        refreshed = False

        async def send() -> httpx.Response:
            nonlocal refreshed
            while True:
                token = await self.tokens.token()
                headers = {
                    "Authorization": f"Bearer {token}",
                    "x-ms-client-request-id": str(uuid.uuid4()),
                }
                self.calls += 1
                resp = await self._http.request(
                    method, url, params=query or None, json=json, headers=headers
                )
                # what az --debug shows of a request, and the ids ARM's support asks for
                log.debug(
                    "%s %s -> %d (x-ms-client-request-id %s, x-ms-correlation-request-id %s)",
                    method,
                    _short_url(url),
                    resp.status_code,
                    headers["x-ms-client-request-id"],
                    resp.headers.get("x-ms-correlation-request-id", "-"),
                )
                if resp.status_code == 401 and not refreshed:
                    refreshed = True  # once per call, retries included
                    self.tokens.invalidate()
                    continue
                return resp

        try:
            resp = await send_with_retries(
                self.retry,
                send,
                safe=method in SAFE_METHODS or retry_unsafe,
                waited=lambda status, delay: self.retry_log.append((status, delay)),
            )
        except httpx.TimeoutException:
            raise Unreachable(
                f"Azure Resource Manager did not answer {method} {_short_url(url)} in time",
                fix="check the network to management.azure.com (or your arm_endpoint) and try again",
            ) from None
        except httpx.TransportError as exc:
            raise Unreachable(
                f"cannot reach Azure Resource Manager at {self.base_url}: {exc}",
                fix="check the network, a proxy (HTTPS_PROXY), or the profile's arm_endpoint",
            ) from None
        status = resp.status_code
        if status >= 400 and status not in allow:
            body = arm_error_body(resp)
            raise workspace_not_found(method, url, status, body) or error_from_arm(
                status, body, kind=kind, name=name
            )
        return resp

    # -- conveniences -------------------------------------------------------------------------
    async def get(
        self, path: str, *, kind: str = "resource", name: str = "", **kw: Any
    ) -> dict[str, Any]:
        resp = await self.request("GET", path, kind=kind, name=name, **kw)
        return resp.json() if resp.content else {}

    async def list_all(
        self,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        kind: str = "resource",
        name: str = "",
    ) -> list[dict[str, Any]]:
        """Every item of a paged ARM list (``value`` + ``nextLink``)."""
        out: list[dict[str, Any]] = []
        url: str | None = path
        first = True
        while url:
            resp = await self.request(
                "GET", url, params=params if first else None, kind=kind, name=name
            )
            first = False
            data = resp.json() if resp.content else {}
            out.extend(data.get("value") or [])
            url = data.get("nextLink") or None
        return out

    # -- long-running operations -------------------------------------------------------------
    async def begin(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        target: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
        err_kind: str = "resource",
        err_name: str = "",
        retry_unsafe: bool = False,
    ) -> Lro:
        """Send the request that starts a long operation; return its tracker."""
        resp = await self.request(
            method,
            path,
            json=json,
            params=params,
            kind=err_kind,
            name=err_name,
            retry_unsafe=retry_unsafe,
        )
        lro = Lro(
            id=f"arm-{uuid.uuid4().hex[:12]}",
            kind=kind,
            target=target,
            method=method,
            resource_url=self.url(path),
            err_kind=err_kind,
            err_name=err_name,
        )
        lro.async_url = resp.headers.get("Azure-AsyncOperation") or None
        lro.location_url = resp.headers.get("Location") or None
        body = _json_or_none(resp)
        if lro.async_url or lro.location_url:
            lro.message = "Accepted" if resp.status_code == 202 else "Created"
            self._schedule(lro, resp)
            return lro
        # synchronous answer: done, unless the resource itself says it is still provisioning
        state = str(((body or {}).get("properties") or {}).get("provisioningState") or "")
        if method in ("PUT", "PATCH") and state.lower() in _RUNNING:
            lro.message = state
            self._schedule(lro, resp)
            return lro
        self._finish_ok(lro, body)
        return lro

    def _schedule(self, lro: Lro, resp: httpx.Response) -> None:
        delay = parse_retry_after(resp.headers.get("Retry-After"))
        if delay is None:
            delay = self.default_poll_interval
        lro.next_poll_at = time.monotonic() + min(delay, self.retry.max_retry_after)

    def seconds_until_due(self, lro: Lro) -> float:
        return max(0.0, lro.next_poll_at - time.monotonic())

    async def poll(self, lro: Lro) -> Lro:
        """One poll if one is due (never earlier than Retry-After said)."""
        if lro.done or time.monotonic() < lro.next_poll_at:
            return lro
        lro.polls += 1
        try:
            if lro.async_url:
                await self._poll_async(lro)
            elif lro.location_url:
                await self._poll_location(lro)
            else:
                await self._poll_resource(lro)
        except ModeldeckError as exc:
            self._finish_failed(lro, exc)
        if lro.done and lro.status is OperationStatus.SUCCEEDED and lro.then is not None:
            follow, lro.then = lro.then, None
            try:
                nxt = await follow()
            except ModeldeckError as exc:
                self._finish_failed(lro, exc, reset=True)
                return lro
            if nxt is not None and not nxt.done:
                # keep following under the same id
                lro.status = OperationStatus.RUNNING
                lro.finished_at = None
                lro.method, lro.resource_url = nxt.method, nxt.resource_url
                lro.async_url, lro.location_url = nxt.async_url, nxt.location_url
                lro.next_poll_at, lro.then = nxt.next_poll_at, nxt.then
                lro.err_kind, lro.err_name = nxt.err_kind, nxt.err_name
                lro.message = f"{nxt.kind}: {nxt.message}"
                lro.progress = max(lro.progress, 0.5)
            elif nxt is not None and nxt.status is OperationStatus.FAILED:
                lro.status, lro.error, lro.message = nxt.status, nxt.error, nxt.message
        if lro.done and lro.on_done is not None:
            cb, lro.on_done = lro.on_done, None
            cb(lro)
        return lro

    async def _poll_async(self, lro: Lro) -> None:
        assert lro.async_url
        resp = await self.request("GET", lro.async_url, kind=lro.err_kind, name=lro.err_name)
        body = _json_or_none(resp) or {}
        status = str(body.get("status") or "InProgress")
        pct = body.get("percentComplete")
        s = status.lower()
        if s in _SUCCEEDED:
            result = None
            if lro.method in ("PUT", "PATCH"):
                result = await self.get(lro.resource_url, kind=lro.err_kind, name=lro.err_name)
            elif lro.method == "POST" and lro.location_url:
                r = await self.request(
                    "GET", lro.location_url, kind=lro.err_kind, name=lro.err_name
                )
                result = _json_or_none(r)
            self._finish_ok(lro, result)
        elif s in _FAILED:
            err = body.get("error") or {"code": status, "message": f"the operation ended {status}"}
            self._finish_failed(
                lro, error_from_arm(0, err, kind=lro.err_kind, name=lro.err_name), status=status
            )
        else:
            lro.message = status
            if isinstance(pct, int | float):
                lro.progress = max(0.0, min(0.99, float(pct) / 100.0))
            else:
                lro.progress = min(0.95, 1.0 - 0.75**lro.polls)
            self._schedule(lro, resp)

    async def _poll_location(self, lro: Lro) -> None:
        assert lro.location_url
        resp = await self.request("GET", lro.location_url, kind=lro.err_kind, name=lro.err_name)
        if resp.status_code == 202:
            lro.message = "InProgress"
            lro.progress = min(0.95, 1.0 - 0.75**lro.polls)
            self._schedule(lro, resp)
            return
        result = _json_or_none(resp)
        if lro.method in ("PUT", "PATCH"):
            result = await self.get(lro.resource_url, kind=lro.err_kind, name=lro.err_name)
        self._finish_ok(lro, result)

    async def _poll_resource(self, lro: Lro) -> None:
        body = await self.get(lro.resource_url, kind=lro.err_kind, name=lro.err_name)
        state = str((body.get("properties") or {}).get("provisioningState") or "Succeeded")
        if state.lower() in _SUCCEEDED:
            self._finish_ok(lro, body)
        elif state.lower() in _FAILED:
            errs = (body.get("properties") or {}).get("provisioningErrors") or []
            err = (errs[0].get("error") if errs and isinstance(errs[0], dict) else None) or {
                "code": state,
                "message": f"provisioning ended {state}",
            }
            self._finish_failed(
                lro, error_from_arm(0, err, kind=lro.err_kind, name=lro.err_name), status=state
            )
        else:
            lro.message = state
            lro.progress = min(0.95, 1.0 - 0.75**lro.polls)
            lro.next_poll_at = time.monotonic() + self.default_poll_interval

    def _finish_ok(self, lro: Lro, result: dict[str, Any] | None) -> None:
        lro.status = OperationStatus.SUCCEEDED
        lro.progress = 1.0
        lro.message = "Succeeded"
        lro.result = result
        lro.finished_at = time.time()

    def _finish_failed(
        self, lro: Lro, exc: ModeldeckError, *, status: str = "Failed", reset: bool = False
    ) -> None:
        lro.status = OperationStatus.FAILED
        lro.message = f"{status}: {exc.message}"
        lro.error = exc.to_dict()
        lro.finished_at = time.time()
        if reset:
            lro.then = None


def _json_or_none(resp: httpx.Response) -> dict[str, Any] | None:
    if not resp.content:
        return None
    try:
        data = resp.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _short_url(url: str) -> str:
    return url.split("?", 1)[0]
