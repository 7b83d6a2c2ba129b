"""The environment store: registered environments, and the built ones replicas run in.

A deployment's environment (inline, curated, registered ``azureml:NAME:VERSION``) is
resolved before anything changes (every problem refused then); a local pool builds it
into ``DATA_DIR/envs`` (keyed by content: the same lines are built once), a Kubernetes
pod in its init container. Built environments no deployment uses go after a grace time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...api import validation
from ...api.domain import DeploymentSpec, DriverKind, Environment
from ...api.errors import Conflict, InvalidInput, NotFound
from ...drivers.base import KeepsLogs, Progress
from ..dataplane.logstore import ENVIRONMENT
from .operations import message_of

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("modeldeck.daemon")

#: registered environments: azureml:NAME:VERSION, azureml:NAME@latest (NAME alone: latest)
ENV_REF_RE = re.compile(
    r"^(?:azureml:)?([a-zA-Z0-9][-a-zA-Z0-9_.]*?)(?::([-a-zA-Z0-9_.]+)|@latest)?$"
)
#: how long an environment no deployment uses is kept (``MODELDECK_ENV_GRACE_S``)
ENV_GRACE_S = 24 * 3600.0
#: Azure's name for the environment of an inline definition (its version is the content hash)
ANONYMOUS_ENV = "CliV2AnonymousEnvironment"


def _env_grace_s() -> float:
    """``MODELDECK_ENV_GRACE_S``: how long an unused built environment is kept."""
    raw = os.environ.get("MODELDECK_ENV_GRACE_S", "").strip()
    if not raw:
        return ENV_GRACE_S
    try:
        value = float(raw)
        if not 0 <= value <= 365 * 86400:
            raise ValueError
    except ValueError:
        raise InvalidInput(
            "MODELDECK_ENV_GRACE_S",
            raw,
            "must be a number of seconds from 0 to 31536000",
            "set it to e.g. 3600, or unset it for the default of 86400 (one day)",
        ) from None
    return value


class EnvironmentStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store
        #: built environments an operation is about to hand to replicas: never pruned
        self.busy: dict[str, int] = {}
        self.grace_s = _env_grace_s()

    def root(self) -> Path:
        root = self.engine.data_dir / "envs"
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        return root

    def registered(self, ref: str, field: str = "environment") -> Environment:
        m = ENV_REF_RE.match(ref)
        if m is None:
            raise InvalidInput(
                field,
                ref,
                "is not an environment reference",
                "write azureml:NAME:VERSION or azureml:NAME@latest",
            )
        name, version = m.group(1), m.group(2)
        env = self.store.environment(name, version)
        if env is None:
            known = sorted({e.ref for e in self.store.environments(name)})
            raise InvalidInput(
                field,
                ref,
                "names no registered environment"
                + (f" (registered: {', '.join(known)})" if known else ""),
                "register it first: modeldeck environment create -f env.yml "
                "(see modeldeck environment list)",
            )
        return env

    def _environment_spec(self, spec: DeploymentSpec) -> Any:
        """The environment a local pool builds for ``spec`` (None: modeldeck's own Python,
        as for a deployment with no environment or with an image only)."""
        from ... import environments as envs
        from ...environments.spec import check_conda_document

        inline = spec.environment_inline
        if inline is not None:
            conda = check_conda_document(
                inline.get("conda_file"), "environment (inline)", field="environment.conda_file"
            )
            base = inline.get("base_dir")
            return envs.EnvironmentSpec(
                name=str(inline.get("name") or f"{spec.endpoint_name}-{spec.name}"),
                image=inline.get("image"),
                conda_file=conda,
                base_dir=Path(base) if base else None,
            )
        ref = spec.environment
        if not ref:
            return None
        if envs.is_curated_reference(ref):
            return envs.spec_from_reference(ref)
        if ref.startswith("azureml:"):
            asset = self.registered(ref)
            if asset.conda_file is None:
                return None
            return self._asset_spec(asset)
        return None  # an image: Kubernetes uses it; a local pool runs modeldeck's Python

    @staticmethod
    def _asset_spec(asset: Environment) -> Any:
        from ... import environments as envs

        return envs.EnvironmentSpec(
            name=asset.name,
            version=asset.version,
            image=asset.image,
            conda_file=asset.conda_file,
            base_dir=Path(asset.base_dir) if asset.base_dir else None,
        )

    async def resolve(self, spec: DeploymentSpec, cluster: str) -> Any:
        """What to build before ``spec``'s replicas start (None: nothing): on a local pool
        by :meth:`build`, on Kubernetes by the pods' init container (the same
        resolution: both back ends install the same lines). Every problem is refused here,
        before anything changes."""
        if self.engine.cluster_row(cluster).spec.driver not in (
            DriverKind.POOL,
            DriverKind.KUBERNETES,
        ):
            return None
        env = self._environment_spec(spec)
        if env is None:
            return None
        from ... import environments as envs

        return await asyncio.to_thread(envs.resolve, env)

    def release(self, key: str | None) -> None:
        if key is not None:
            left = self.busy.get(key, 0) - 1
            if left > 0:
                self.busy[key] = left
            else:
                self.busy.pop(key, None)

    async def build(
        self, endpoint: str, name: str, resolved: Any, progress: Progress
    ) -> tuple[str | None, str | None]:
        """Build (or reuse) ``resolved`` into DATA_DIR/envs: (its key, its python). uv's
        lines go to the deployment's log and the operation's progress message. The caller
        releases the key (:meth:`release`) once the deployment's record names it."""
        if resolved is None:
            return None, None
        if self.engine.cluster_row(self.engine.endpoint_row(endpoint).cluster).spec.driver is not (
            DriverKind.POOL
        ):
            # Kubernetes: the pods' init container builds it (services/drivers/kubernetes/manifests.py)
            progress(0.01, f"environment {resolved.key[:12]}: built in the pods")
            return None, None
        from ... import environments as envs

        key = resolved.key
        self.busy[key] = self.busy.get(key, 0) + 1
        driver = self.engine.driver_for_endpoint(endpoint)
        writer = driver.logstore.log(endpoint, name) if isinstance(driver, KeepsLogs) else None
        short = key[:12]

        def emit(line: str) -> None:
            if writer is not None:
                writer.write(ENVIRONMENT, "log", line)
            progress(0.05, f"environment {short}: {line[:200]}")

        try:
            progress(
                0.02,
                f"environment {short}: {len(resolved.requirements)} package(s) on Python "
                f"{resolved.interpreter.version}",
            )
            built = await envs.build(resolved, root=self.root(), log=emit)
        except BaseException as exc:
            self.release(key)
            if writer is not None:
                writer.write(ENVIRONMENT, "system", f"environment {key}: {message_of(exc)}")
            raise
        what = "reused" if built.reused else "built"
        if writer is not None and built.reused:  # a build says so itself
            writer.write(
                ENVIRONMENT,
                "system",
                f"environment {key}: already built ({built.size_bytes} bytes); reusing it",
            )
        progress(0.1, f"environment {short} {what}; starting replicas")
        return key, str(built.python)

    def _users(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for (ep, dep), key in sorted(self.store.deployment_envs().items()):
            users.setdefault(key, []).append(f"{ep}/{dep}")
        return users

    async def list_all(self, name: str | None = None) -> list[Environment]:
        """Registered environments, then (no ``name``) the built environments of inline
        definitions as ``CliV2AnonymousEnvironment`` (version: the content key), each with
        its built size and the deployments that run in it."""
        from ... import environments as envs

        built = {b.key: b for b in await asyncio.to_thread(envs.list_built, self.root())}
        users = self._users()
        out: list[Environment] = []
        registered = [] if name == ANONYMOUS_ENV else self.store.environments(name)
        for env in registered:
            b = built.get(env.key or "")
            out.append(
                replace(
                    env,
                    size_bytes=b.size_bytes if b else None,
                    users=users.get(env.key or "", []),
                )
            )
        if name in (None, ANONYMOUS_ENV):
            keys = {e.key for e in self.store.environments()}
            for key, b in sorted(built.items(), key=lambda kv: kv[1].last_used):
                if key in keys:
                    continue
                out.append(
                    Environment(
                        name=ANONYMOUS_ENV,
                        version=key,
                        description=f"Python {b.python}: " + " ".join(b.requirements),
                        created_at=b.last_used,
                        key=key,
                        size_bytes=b.size_bytes,
                        users=users.get(key, []),
                    )
                )
        return out

    async def get(self, name: str, version: str | None = None) -> Environment:
        if name == ANONYMOUS_ENV:
            for env in await self.list_all(ANONYMOUS_ENV):
                if env.version == version or version is None:
                    return env
            raise NotFound("environment", f"{name}:{version}")
        env = self.store.environment(name, version)
        if env is None:
            raise NotFound(
                "environment",
                name if version is None else f"{name}:{version}",
                fix="see the registered ones: modeldeck environment list",
            )
        for listed in await self.list_all(name):
            if listed.version == env.version:
                return listed
        return env

    async def create(self, env: Environment) -> Environment:
        """Register ``env`` (the next version when it has none); its content is resolved
        first, so a conda file modeldeck cannot build is refused before it is recorded."""
        from ... import environments as envs
        from ...environments.spec import check_conda_document

        validation.name(env.name, "name")
        if env.name == ANONYMOUS_ENV:
            raise InvalidInput(
                "name", env.name, "is the name of inline environments", "choose another name"
            )
        if env.version and not re.fullmatch(r"[a-zA-Z0-9][-a-zA-Z0-9_.]{0,63}", env.version):
            raise InvalidInput(
                "version",
                env.version,
                "must be letters, digits, '-', '_' or '.' (at most 64)",
                "write --version 1",
            )
        if env.conda_file is None and not env.image:
            raise InvalidInput(
                "environment", env.name, "has none of image or conda_file", "give one or both"
            )
        env = replace(env, tags=validation.tags(env.tags), description=env.description or "")
        key: str | None = None
        if env.conda_file is not None:
            check_conda_document(env.conda_file, env.name)
            resolved = await asyncio.to_thread(envs.resolve, self._asset_spec(env))
            key = resolved.key
        async with self.engine.admission.lock:
            version = env.version or self.store.next_environment_version(env.name)
            if self.store.environment(env.name, version) is not None:
                raise Conflict(
                    f"environment {env.name}:{version} already exists",
                    fix="give another --version, or leave it out for the next one",
                )
            env = replace(env, version=version, key=key, created_at=time.time())
            self.store.insert_environment(env)
        return await self.get(env.name, version)

    async def archive(self, name: str, version: str) -> Environment:
        if self.store.environment(name, version) is None:
            raise NotFound("environment", f"{name}:{version}")
        self.store.archive_environment(name, version)
        return await self.get(name, version)

    async def prune(self, older_than_s: float = 0.0) -> list[Environment]:
        """Remove the built environments no deployment runs in (and none is about to),
        unused for ``older_than_s``; what was removed."""
        from ... import environments as envs

        keep = set(self.store.deployment_envs().values()) | set(self.busy)
        removed = await asyncio.to_thread(envs.prune, self.root(), keep, max(0.0, older_than_s))
        if removed:
            log.info("pruned %d unused environment(s)", len(removed))
        return [
            Environment(
                name=ANONYMOUS_ENV,
                version=b.key,
                key=b.key,
                size_bytes=b.size_bytes,
                created_at=b.last_used,
            )
            for b in removed
        ]

    async def prune_loop(self) -> None:
        """Unused environments go once they have been unused for the grace time."""
        while True:
            with contextlib.suppress(Exception):
                await self.prune(self.grace_s)
            await asyncio.sleep(max(1.0, min(3600.0, self.grace_s / 4)))
