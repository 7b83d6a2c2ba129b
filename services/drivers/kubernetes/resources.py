"""The driver's REST verbs on namespaced objects, and the write that loses nobody's change.

:class:`Resources` is the base of :class:`~.driver.KubernetesDriver`'s rooms: it turns
a kind and a name into the API path and the :class:`~.errors.Call` an error names, and
reads, lists, applies (server-side apply, ``force``: modeldeck owns these objects) and
deletes. :meth:`Resources._apply_guarded` writes what two operators' control planes can
both write under the resourceVersion just read, after the field-by-field check of
:mod:`.concurrency`.

Retries: a 409 on such a write (written meanwhile) is read, checked and written again
through :func:`conflict_attempts`, the one such loop of the driver; 429 and 5xx answers
are retried (honouring ``Retry-After``) in one place, :meth:`.client.KubeApi.request`.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ...api.domain import ClusterSpec
from ...api.errors import Conflict, NotFound
from . import concurrency as cc
from . import manifests as mf
from .client import APPLY, JSON, KubeApi
from .errors import GATEWAY_API_GROUP, Call


@dataclass(frozen=True)
class Kind:
    prefix: str  # "/api/v1" or "/apis/GROUP/VERSION"
    plural: str
    rbac: str  # resource as RBAC names it (plural.group)


KINDS: dict[str, Kind] = {
    "ConfigMap": Kind("/api/v1", "configmaps", "configmaps"),
    "Secret": Kind("/api/v1", "secrets", "secrets"),
    "Service": Kind("/api/v1", "services", "services"),
    "Pod": Kind("/api/v1", "pods", "pods"),
    "Event": Kind("/api/v1", "events", "events"),
    "Deployment": Kind("/apis/apps/v1", "deployments", "deployments.apps"),
    "HorizontalPodAutoscaler": Kind(
        "/apis/autoscaling/v2", "horizontalpodautoscalers", "horizontalpodautoscalers.autoscaling"
    ),
    "HTTPRoute": Kind(
        f"/apis/{GATEWAY_API_GROUP}/v1", "httproutes", f"httproutes.{GATEWAY_API_GROUP}"
    ),
}
#: What ``delete_resources`` removes, in order (the route first: traffic stops first).
OWNED_KINDS = (
    "HTTPRoute",
    "HorizontalPodAutoscaler",
    "Deployment",
    "Service",
    "ConfigMap",
    "Secret",
)
#: How many times a write under a resourceVersion is tried when it gets a 409.
CONFLICT_ATTEMPTS = 6


async def conflict_attempts(attempts: int = CONFLICT_ATTEMPTS) -> AsyncIterator[bool]:
    """The attempts of a read-check-write whose write may get a 409 (someone wrote between
    the read and the write): yields ``last`` (True for the final one), pausing a little
    longer before each new attempt. The caller re-raises the 409 of the last attempt."""
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(0.05 * attempt)
        yield attempt == attempts - 1


class Resources:
    """REST verbs on the objects of one namespace, and the guarded write (see module doc)."""

    spec: ClusterSpec
    api: KubeApi
    namespace: str
    #: (kind, name) -> the fields of the object as this control plane knows them (its
    #: own last write, or what it first listed): the base of the next write's check.
    _seen: dict[tuple[str, str], dict[str, Any]]

    def _path(self, kind: str, name: str | None = None, sub: str | None = None) -> str:
        k = KINDS[kind]
        path = f"{k.prefix}/namespaces/{self.namespace}/{k.plural}"
        if name:
            path += f"/{name}"
        if sub:
            path += f"/{sub}"
        return path

    def _call(self, verb: str, kind: str, name: str | None = None) -> Call:
        return Call(verb, KINDS[kind].rbac, self.namespace, name)

    async def _get(self, kind: str, name: str) -> dict:
        return await self.api.request("GET", self._path(kind, name), self._call("get", kind, name))

    async def _get_or_none(self, kind: str, name: str) -> dict | None:
        try:
            return await self._get(kind, name)
        except NotFound:
            return None

    async def _list(
        self, kind: str, selector: str | None = None, field_selector: str | None = None
    ) -> list[dict]:
        data = await self._list_raw(kind, selector, field_selector)
        return data.get("items") or []

    async def _list_raw(
        self, kind: str, selector: str | None = None, field_selector: str | None = None
    ) -> dict:
        query = [("labelSelector", selector), ("fieldSelector", field_selector)]
        return await self.api.request(
            "GET", self._path(kind), self._call("list", kind), query=query
        )

    async def _apply(self, obj: dict) -> dict:
        kind, name = obj["kind"], obj["metadata"]["name"]
        out = await self.api.request(
            "PATCH",
            self._path(kind, name),
            self._call("patch", kind, name),
            query=[("fieldManager", mf.MANAGER), ("force", "true")],
            body=obj,
            content_type=APPLY,
        )
        return out if isinstance(out, dict) else await self._get(kind, name)

    def _merge_or_refuse(
        self,
        known: dict[str, Any] | None,
        now: dict[str, Any],
        mine: dict[str, Any],
        *,
        obj: dict,
        what: str,
        fix: str,
        **how: Any,
    ) -> dict[str, Any]:
        """:func:`.concurrency.merge` (``how``: its options), or the Conflict naming this
        cluster when someone else changed a field this write changes too."""
        merged, clash = cc.merge(known, now, mine, **how)
        if clash:
            raise cc.conflict(
                cluster=self.spec.name,
                what=what,
                obj=obj,
                fields=clash,
                base=known,
                now=now,
                fix=fix,
            )
        return merged

    async def _apply_guarded(
        self,
        obj: dict,
        fields_of: Callable[[dict], dict[str, Any]],
        build: Callable[[dict[str, Any]], dict],
        what: str,
        fix: str,
        *,
        view: dict[str, Any] | None = None,
        base: dict[str, Any] | None = None,
        unmergeable: tuple[str, ...] = (),
        attempts: int = CONFLICT_ATTEMPTS,
    ) -> dict:
        """Apply ``obj`` without losing anyone's write (see :mod:`.concurrency`).

        ``view``: the fields as this control plane's records have them (default: those of
        ``obj``); ``base``: as they were before this change (default: as this control
        plane last knew the object); ``build`` makes the object to write from merged
        fields. Raises Conflict when someone else changed a field this write changes too.
        """
        kind, name = obj["kind"], obj["metadata"]["name"]
        key = (kind, name)
        mine = fields_of(obj) if view is None else view
        async for last in conflict_attempts(attempts):
            current = await self._get_or_none(kind, name)
            if current is None:
                body = copy.deepcopy(obj)
            else:
                now = fields_of(current)
                known = self._seen.get(key) if base is None else base
                merged = self._merge_or_refuse(
                    known, now, mine, obj=current, what=what, fix=fix, unmergeable=unmergeable
                )
                if kind == "Secret" and merged == now:  # nothing to change: no write
                    self._seen[key] = dict(mine)
                    return current
                body = copy.deepcopy(obj if merged == fields_of(obj) else build(merged))
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                out = await self._apply(cc.stamp(body))
            except Conflict:  # 409: written meanwhile (or created meanwhile): check again
                if last:
                    raise
                continue
            self._seen[key] = dict(mine)
            return out
        raise AssertionError("unreachable")  # pragma: no cover

    async def _watch(
        self,
        kind: str,
        selector: str,
        rv: str | None,
        timeout_s: int,
        *,
        read_timeout: float = 120.0,
        bookmarks: bool = False,
    ) -> AsyncIterator[dict]:
        """The events (``{"type", "object"}``) of a ``watch=true`` of ``kind`` from the
        resourceVersion ``rv``, until the server ends it (after ``timeout_s`` seconds, or
        at once with an ERROR event such as 410 Gone). Undecodable lines are skipped."""
        query: list[tuple[str, Any]] = [
            ("labelSelector", selector),
            ("watch", "true"),
            ("resourceVersion", rv),
        ]
        if bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        query.append(("timeoutSeconds", timeout_s))
        async for raw in self.api.stream_lines(
            self._path(kind), self._call("watch", kind), query=query, read_timeout=read_timeout
        ):
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            yield event

    async def _replace_annotations(
        self,
        kind: str,
        name: str,
        changes: dict[str, str | None],
        manager: str,
        check: Callable[[dict], None] | None = None,
    ) -> dict | None:
        """Set (a value) or remove (None) annotations of an object that is written by
        replacing it (HTTPRoute: RBAC grants ``update``, no ``patch``): read, change the
        metadata only, replace under the resourceVersion read; a 409 (written meanwhile)
        is retried on the fresh object. ``check`` sees each object read before the change
        and may refuse it (raise). The object as written (None: it is not there)."""
        async for last in conflict_attempts():
            current = await self._get_or_none(kind, name)
            if current is None:
                return None
            if check is not None:
                check(current)
            meta = current.setdefault("metadata", {})
            held = dict(meta.get("annotations") or {})
            wanted = {k: v for k, v in {**held, **changes}.items() if v is not None}
            if wanted == held:
                return current
            meta["annotations"] = wanted
            try:
                out = await self.api.request(
                    "PUT",
                    self._path(kind, name),
                    self._call("update", kind, name),
                    query=[("fieldManager", manager)],
                    body=current,
                    content_type=JSON,
                )
                return out if isinstance(out, dict) else current
            except Conflict:  # written meanwhile: again on the fresh object
                if last:
                    raise
        return None  # pragma: no cover

    async def _delete(self, kind: str, name: str) -> bool:
        try:
            await self.api.request(
                "DELETE",
                self._path(kind, name),
                self._call("delete", kind, name),
                query=[("propagationPolicy", "Background")],
            )
        except NotFound:
            return False
        return True

    async def _delete_selected(self, kind: str, selector: str) -> list[str]:
        names = [o["metadata"]["name"] for o in await self._list(kind, selector)]
        await asyncio.gather(*(self._delete(kind, n) for n in names))
        return names
