"""Async calls to one cluster's API server through the official ``kubernetes`` client.

The official client does the transport (kubeconfig auth, TLS, exec credential
plugins and their refresh, urllib3 connection pool); this module keeps the
service layer async and each cluster isolated:

* every call runs in the cluster's own thread pool (a slow cluster cannot take
  the threads of another), under a bounded semaphore, with a time-out;
* 429 and 5xx answers are retried with exponential backoff that honours
  ``Retry-After`` (all our writes are idempotent: server-side apply, or updates
  guarded by resourceVersion);
* failures become typed errors (:mod:`.errors`);
* credentials never go over plain http to anything but loopback: a kubeconfig whose
  server is ``http://`` elsewhere and whose user has a token, an exec plugin, an auth
  provider or a password is refused before any connection (:mod:`..transport`);
* streams (``watch=true``, pod log ``follow=true``) run in their own threads and
  are read as async iterators of lines.

Bodies are plain dicts (JSON), not the client's typed models: what we send is
exactly the manifests of :mod:`.manifests`, and big lists are parsed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...api.errors import ModeldeckError
from ...retry import RETRY_STATUSES, parse_retry_after
from ...transport import cleartext_to_remote, refuse_cleartext_credentials
from .errors import Call, from_status, from_transport
from .kubeconfig import KubeContext, client_configuration

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON = "application/json"


class KubeApi:
    """One cluster (kubeconfig context); all methods are safe to call concurrently."""

    def __init__(
        self,
        ctx: KubeContext,
        cluster: str,
        *,
        concurrency: int = 8,
        timeout: tuple[float, float] = (5.0, 30.0),
        attempts: int = 5,
        max_backoff: float = 8.0,
        base_backoff: float = 0.2,
    ) -> None:
        import importlib.util

        if importlib.util.find_spec("kubernetes") is None:  # imported on first use, in a thread
            raise ImportError("the 'kubernetes' package is not installed")
        self.ctx = ctx
        self.cluster = cluster
        self.timeout = timeout
        self.attempts = attempts
        self.max_backoff = max_backoff
        self.base_backoff = base_backoff
        self._api_client: Any = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix=f"k8s-{cluster}"
        )
        self._concurrency = concurrency
        self._sem: asyncio.Semaphore | None = None
        self._closed = False

    @property
    def server(self) -> str:
        return self.ctx.server

    # ------------------------------------------------------------------ plumbing

    @property
    def _api(self) -> Any:
        """The official client, built on first use in a worker thread: loading credentials
        may run an exec plugin (kubelogin, gke-gcloud-auth-plugin), which must not block
        the event loop."""
        if self._api_client is None:
            with self._lock:
                if self._api_client is None:
                    from kubernetes import client
                    from urllib3.util.retry import Retry

                    self._refuse_cleartext()
                    cfg = client_configuration(self.ctx)
                    # One quick connect retry; status retries are ours (with Retry-After).
                    cfg.retries = Retry(
                        total=1,
                        connect=1,
                        read=0,
                        status=0,
                        other=0,
                        redirect=0,
                        respect_retry_after_header=False,
                    )
                    cfg.connection_pool_maxsize = self._concurrency + 16
                    self._api_client = client.ApiClient(cfg)
        return self._api_client

    def _refuse_cleartext(self) -> None:
        """Before the client is built (an exec plugin would already hand out a token)."""
        if not cleartext_to_remote(self.ctx.server):
            return
        users = {u.get("name"): u.get("user") or {} for u in self.ctx.config.get("users") or []}
        user = users.get(self.ctx.user) or {}
        secret = [
            k for k in ("token", "tokenFile", "exec", "auth-provider", "password") if user.get(k)
        ]
        if secret:
            refuse_cleartext_credentials(
                self.ctx.server,
                what=f"the credentials of kubeconfig user '{self.ctx.user}' ({', '.join(secret)})",
                field="kube_context",
                fix=f"set the server of context '{self.ctx.name}' to its https:// URL "
                "(kubectl config set-cluster); plain http is only for a server on this "
                "machine (kubectl proxy on http://127.0.0.1:8001)",
            )

    def _serialize(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None,
        body: Any,
        content_type: str | None,
        accept: str,
    ) -> tuple[str, str, dict, Any, Any]:
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type or JSON
        return self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=[(k, v) for k, v in (query or []) if v is not None],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )

    def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None,
        body: Any,
        content_type: str | None,
        accept: str,
        timeout: Any,
    ) -> tuple[int, bytes, Any]:
        """One request in the calling thread: (status, body, headers). Raises transport errors."""
        m, url, headers, data, post = self._serialize(
            method, path, query, body, content_type, accept
        )
        resp = self._api.call_api(m, url, headers, data, post, _request_timeout=timeout)
        raw = resp.read()
        return resp.status, raw, resp.headers

    def _send_bytes(
        self, method: str, path: str, body: bytes, headers: dict[str, str], timeout: Any
    ) -> tuple[int, bytes, dict[str, str]]:
        """One request with a body of bytes sent as they are (the generated client would
        JSON-encode a JSON body again): the API server's auth headers, then ``headers``."""
        import urllib3

        m, url, sent, _, _ = self._serialize(method, path, None, None, None, "*/*")
        sent.update(headers)
        resp = self._api.rest_client.pool_manager.request(
            m,
            url,
            body=body,
            headers=sent,
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            retries=False,
            preload_content=True,
        )
        return resp.status, resp.data, {k.lower(): v for k, v in resp.headers.items()}

    async def forward(
        self,
        method: str,
        path: str,
        call: Call,
        *,
        body: bytes,
        headers: dict[str, str],
        timeout: tuple[float, float],
    ) -> tuple[int, bytes, dict[str, str]]:
        """A request through one of the API server's proxies (``services/NAME:PORT/proxy``):
        (status, body, lower-cased headers) of whatever answered, never retried (a score
        is not idempotent). A ``Status`` the API server answers itself (403, 503 no
        endpoints) is raised typed; the backend's own answers (401, 500) are returned."""
        loop = asyncio.get_running_loop()
        try:
            async with self._semaphore():
                status, data, got = await loop.run_in_executor(
                    self._pool, self._send_bytes, method, path, body, headers, timeout
                )
        except ModeldeckError:
            raise
        except Exception as exc:
            raise _transport_error(exc, call, self) from None
        if status >= 400 and got.get("content-type", "").startswith("application/json"):
            try:
                answer = json.loads(data)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("kind") == "Status":
                raise from_status(status, data, call, cluster=self.cluster, context=self.ctx.name)
        return status, data, got

    def _semaphore(self) -> asyncio.Semaphore:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self._concurrency)
        return self._sem

    async def request(
        self,
        method: str,
        path: str,
        call: Call,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = JSON,
        timeout: Any = None,
        raw: bool = False,
    ) -> Any:
        """Send one request; returns the parsed JSON (or bytes with ``raw``), or raises typed."""
        loop = asyncio.get_running_loop()
        delay = self.base_backoff
        timeout = timeout or self.timeout
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._semaphore():
                    status, data, headers = await loop.run_in_executor(
                        self._pool,
                        self._send,
                        method,
                        path,
                        query,
                        body,
                        content_type,
                        accept,
                        timeout,
                    )
            except ModeldeckError:
                raise
            except Exception as exc:
                raise _transport_error(exc, call, self) from None
            if 200 <= status < 300:
                if raw:
                    return data
                if not data:
                    return None
                try:
                    return json.loads(data)
                except ValueError:
                    return data.decode("utf-8", "replace")
            if status in RETRY_STATUSES and attempt < self.attempts:
                wait = parse_retry_after(
                    headers.get("Retry-After") if hasattr(headers, "get") else None
                )
                if wait is None:
                    wait = delay * (1 + random.random() / 4)
                    delay = min(self.max_backoff, delay * 2)
                await asyncio.sleep(min(wait, self.max_backoff))
                continue
            raise from_status(status, data, call, cluster=self.cluster, context=self.ctx.name)
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream_lines(
        self,
        path: str,
        call: Call,
        *,
        query: list[tuple[str, Any]] | None = None,
        read_timeout: float = 120.0,
    ) -> AsyncIterator[bytes]:
        """The lines of a streaming GET (``watch=true``, log ``follow=true``), read in a thread.

        Ends when the server ends the stream. Errors before the first byte are typed.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=1024)
        stop = threading.Event()
        holder: dict[str, Any] = {}

        def put(item: tuple[str, Any]) -> None:
            if stop.is_set():
                return
            fut = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            with contextlib.suppress(Exception):
                fut.result()

        def run() -> None:
            try:
                m, url, headers, _, _ = self._serialize("GET", path, query, None, None, "*/*")
                resp = self._api.call_api(
                    m, url, headers, None, None, _request_timeout=(self.timeout[0], read_timeout)
                )
                holder["resp"] = resp
                if stop.is_set():  # the reader went away while the request was sent
                    return
                if not 200 <= resp.status < 300:
                    put(("status", (resp.status, resp.read(), resp.headers)))
                    return
                buf = b""
                for chunk in resp.response.stream(amt=None, decode_content=True):
                    if stop.is_set():
                        break
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        put(("line", line))
                if buf and not stop.is_set():
                    put(("line", buf))
            except Exception as exc:
                if not stop.is_set():
                    put(("error", exc))
            finally:
                # Only this thread touches the response: an unfinished stream's connection
                # is closed here, then its (closed) slot goes back to the pool. Released from
                # the event loop instead, a live connection could be handed to another
                # request while this thread still reads it or closes it ("Connection
                # aborted", ResponseNotReady: the request fails as if the cluster were down).
                resp = holder.get("resp")
                if resp is not None:
                    with contextlib.suppress(Exception):
                        resp.response.close()
                    with contextlib.suppress(Exception):
                        resp.response.release_conn()
                put(("end", None))

        thread = threading.Thread(target=run, name=f"k8s-stream-{self.cluster}", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "line":
                    yield value
                elif kind == "status":
                    status, data, _ = value
                    raise from_status(
                        status, data, call, cluster=self.cluster, context=self.ctx.name
                    )
                elif kind == "error":
                    if _is_read_timeout(value):
                        return
                    raise _transport_error(value, call, self)
                else:
                    return
        finally:
            stop.set()
            resp = holder.get("resp")
            if resp is not None:  # wake the reader thread; it closes and releases the connection
                with contextlib.suppress(Exception):
                    resp.response.shutdown()
            while not queue.empty():
                queue.get_nowait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._api_client is not None:
            with contextlib.suppress(Exception):
                self._api_client.rest_client.close()


def _is_read_timeout(exc: BaseException) -> bool:
    from urllib3.exceptions import ProtocolError, ReadTimeoutError

    return isinstance(exc, ReadTimeoutError | ProtocolError) and "timed out" in str(exc).lower()


def _transport_error(exc: BaseException, call: Call, api: KubeApi) -> ModeldeckError:
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ModeldeckError):  # refused before sending (e.g. credentials in clear)
        return exc
    if isinstance(exc, ApiException) and exc.status:
        return from_status(exc.status, exc.body, call, cluster=api.cluster, context=api.ctx.name)
    return from_transport(exc, call, cluster=api.cluster, server=api.server)
