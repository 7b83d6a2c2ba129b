"""Assets: models (registered and uploaded), and the code and environment versions a
deployment refers to (uploaded or registered on first use, named by their content)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .. import inputs
from ..api import validation
from ..api.domain import (
    DeploymentSpec,
    Model,
    ModelSpec,
)
from ..api.errors import (
    Conflict,
    InvalidInput,
    NotFound,
)
from ..codehash import TreeDigest
from ..scoring import is_mlflow_no_code
from . import mapping, storage
from .session import ARM_ID_PREFIX, Session


class AssetRoom(Session):
    """Models, and the ARM ids of a deployment's model, code and environment."""

    _default_env: str  # the environment of a deployment that names none

    async def _model_versions(self, name: str) -> list[Model]:
        items = await self.arm.list_all(  # archived ones too: the CLI filters, as az's list
            f"{self._ws}/models/{name}/versions",
            params={"listViewType": "All"},
            kind="model",
            name=name,
        )
        return sorted(
            (mapping.model_version_to_model(name, v) for v in items), key=lambda m: m.version
        )

    async def list_models(self, name: str | None = None) -> list[Model]:
        if name is not None:
            return await self._model_versions(name)
        containers = await self.arm.list_all(f"{self._ws}/models", kind="model")
        sem = asyncio.Semaphore(8)

        async def one(c: dict[str, Any]) -> list[Model]:
            async with sem:
                try:
                    return await self._model_versions(str(c.get("name")))
                except NotFound:
                    return []

        groups = await asyncio.gather(*(one(c) for c in containers))
        return [m for g in groups for m in g]

    async def _latest_version(self, name: str) -> str:
        """The newest version not archived (the container's latestVersion may be one)."""
        versions = [m for m in await self._model_versions(name) if not m.archived]
        if not versions:
            raise NotFound("model", name)
        return str(versions[-1].version)

    async def get_model(self, name: str, version: int | None = None) -> Model:
        v = str(version) if version is not None else await self._latest_version(name)
        res = await self.arm.get(
            f"{self._ws}/models/{name}/versions/{v}", kind="model", name=f"{name}:{v}"
        )
        return mapping.model_version_to_model(name, res)

    async def create_model(self, spec: ModelSpec) -> Model:
        remote = validation.is_remote_asset(spec.path)  # registered as given: no upload
        validation.model_spec(spec)
        container = await self._get_or_none(f"{self._ws}/models/{spec.name}", "model", spec.name)
        if spec.version is not None:
            version = str(spec.version)
            if await self._get_or_none(
                f"{self._ws}/models/{spec.name}/versions/{version}", "model", spec.name
            ):
                raise Conflict(
                    f"model {spec.name} version {version} already exists",
                    fix="leave out --version to register the next one",
                )
        elif container is None:
            version = "1"
        else:
            props = container.get("properties") or {}
            version = str(props.get("nextVersion") or int(props.get("latestVersion") or 0) + 1)
        if validation.is_registered_asset(spec.path):
            src_name, src_version = validation.parse_model_ref(spec.path)
            src = await self.get_model(src_name, int(src_version) if src_version else None)
            uri, original = src.path, spec.path
        elif remote:
            uri, original = spec.path, spec.path
        else:
            local = Path(spec.path).resolve()
            # the same input rules as the local store's (regular files, no link out, capped)
            checked = await asyncio.to_thread(inputs.scan, spec.path, "path", "model")
            upload = await storage.start_upload(
                self.arm, f"{self._ws}/models/{spec.name}/versions/{version}"
            )
            uri = await storage.upload_path(
                self._client(), self._retry, upload, checked, under=local.name
            )
            original = str(local)
        body = mapping.model_version_body(
            model_uri=uri,
            description=spec.description,
            tags=spec.tags,
            original_path=original,
            model_type=spec.type,
        )
        res = await self.arm.request(
            "PUT",
            f"{self._ws}/models/{spec.name}/versions/{version}",
            json=body,
            kind="model",
            name=f"{spec.name}:{version}",
        )
        return mapping.model_version_to_model(spec.name, res.json())

    async def archive_model(self, name: str, version: int, *, archived: bool = True) -> Model:
        """ARM has no archive action: the version is PUT back with ``isArchived`` (what
        azure-ai-ml's ``models.archive`` does)."""
        path = f"{self._ws}/models/{name}/versions/{version}"
        res = await self.arm.get(path, kind="model", name=f"{name}:{version}")
        props = {
            k: v
            for k, v in (res.get("properties") or {}).items()
            if k not in ("provisioningState",)  # read-only
        }
        body = {"properties": {**props, "isArchived": archived}}
        put = await self.arm.request("PUT", path, kind="model", name=f"{name}:{version}", json=body)
        return mapping.model_version_to_model(name, put.json())

    async def delete_model(self, name: str, version: int) -> None:
        await self.get_model(name, version)
        ref = f"azureml:{name}:{version}"
        users = [
            f"{d.endpoint_name}/{d.name}"
            for d in await self.list_deployments()
            if d.spec.model == ref
        ]
        if users:
            raise Conflict(
                f"model {name} version {version} is used by: {', '.join(users)}",
                fix="delete or update those deployments first",
            )
        await self.arm.request(
            "DELETE",
            f"{self._ws}/models/{name}/versions/{version}",
            kind="model",
            name=f"{name}:{version}",
        )

    async def _code_id(self, spec: DeploymentSpec) -> str | None:
        code = spec.code_configuration.code
        if not code or is_mlflow_no_code(code):  # no-code MLflow: Azure brings its own
            return None
        if code.startswith(ARM_ID_PREFIX):
            return code
        if validation.is_registered_asset(code):
            n, v = validation.parse_model_ref(code)
            return f"{self._ws}/codes/{n}/versions/{v or '1'}"
        if validation.is_remote_asset(code):  # a datastore URI or a URL: a code version on it
            digest = hashlib.sha256(code.encode()).hexdigest()[:24]
            return await self._code_version(f"modeldeck-{digest}", lambda: _given(code))
        folder = Path(code).expanduser().resolve()
        if not folder.is_dir():
            raise InvalidInput(
                "code_configuration.code",
                code,
                "is not a folder",
                "point code_configuration.code at the folder that holds the scoring script",
            )
        # the script inside the folder, the folder's files regular and inside it, capped
        inputs.check_code(str(folder), spec.code_configuration.scoring_script)
        checked = await asyncio.to_thread(
            inputs.scan, str(folder), "code_configuration.code", "code"
        )
        contents = await asyncio.to_thread(inputs.read_files, checked)
        digest = TreeDigest(file_end=b"")  # the names of assets already uploaded: see codehash
        for rel, data in sorted(contents.items()):
            digest.file(rel, data)
        name = f"modeldeck-{digest.hexdigest()[:24]}"

        async def upload() -> str:
            started = await storage.start_upload(self.arm, f"{self._ws}/codes/{name}/versions/1")
            return await storage.upload_path(
                self._client(), self._retry, started, checked, under=""
            )

        return await self._code_version(name, upload)

    async def _code_version(self, name: str, code_uri: Callable[[], Awaitable[str]]) -> str:
        """The ARM id of code version ``name``/1, registered on ``code_uri()`` first when it
        is not there yet (a name is its content's hash: an existing one is the same code)."""
        path = f"{self._ws}/codes/{name}/versions/1"
        if await self._get_or_none(path, "code", name) is None:
            uri = await code_uri()
            await self.arm.request(
                "PUT", path, json=mapping.code_version_body(uri), kind="code", name=name
            )
        return path

    async def _environment_id(self, spec: DeploymentSpec) -> str | None:
        if is_mlflow_no_code(spec.code_configuration.code):
            return None  # Azure builds it from the MLflow model, as modeldeck does locally
        env = spec.environment
        conda = (spec.environment_inline or {}).get("conda_file")
        if not env and conda is None:
            return self._default_env
        if env and env.startswith((ARM_ID_PREFIX, "azureml:")):
            return env
        image = env or mapping.CONDA_BASE_IMAGE
        material = image
        conda_text: str | None = None
        if conda is not None:  # JSON is YAML: the conda file as Azure reads it
            conda_text = json.dumps(conda, indent=2, sort_keys=True)
            material = f"{image}\n{conda_text}"
        name = f"modeldeck-{hashlib.sha256(material.encode()).hexdigest()[:24]}"
        path = f"{self._ws}/environments/{name}/versions/1"
        if await self._get_or_none(path, "environment", name) is None:
            await self.arm.request(
                "PUT",
                path,
                json=mapping.environment_version_body(image, conda_text),
                kind="environment",
                name=name,
            )
        return path

    async def _model_id(self, ref: str) -> str:
        if ref.startswith(ARM_ID_PREFIX) or ref.startswith("azureml://"):
            return ref
        name, version = validation.parse_model_ref(ref)
        v = version or await self._latest_version(name)
        await self.arm.get(
            f"{self._ws}/models/{name}/versions/{v}", kind="model", name=f"{name}:{v}"
        )
        return f"{self._ws}/models/{name}/versions/{v}"


async def _given(uri: str) -> str:
    return uri
