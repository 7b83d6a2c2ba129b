"""The models of the local workspace: versioned copies under ``DATA_DIR/models``.

A model is copied (checked first: no devices, no links out of the folder, a size cap;
a daemon stop cancels the copy) before it is named, so a large copy never holds the
admission lock; a version in use by a deployment is not deleted.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from ... import inputs
from ...api import validation
from ...api.domain import Model, ModelSpec
from ...api.errors import Conflict, InvalidInput, NotFound
from .admission import Admission
from .store.db import Store

MODEL_REF_RE = re.compile(r"^(?:azureml:)?([a-zA-Z][-a-zA-Z0-9_.]*?)(?::(\d+)|@latest)?$")


class Models:
    def __init__(
        self, store: Store, data_dir: Path, admission: Admission, copies: set[threading.Event]
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.admission = admission
        #: the copies in progress (shared with the code store: the daemon's stop ends them)
        self._copies = copies

    def list_all(self, name: str | None = None) -> list[Model]:
        return self.store.models(name)

    def get(self, name: str, version: int | None = None) -> Model:
        model = self.store.model(name, version)
        if model is None:
            raise NotFound("model", name if version is None else f"{name}:{version}")
        return model

    def archive(self, name: str, version: int, archived: bool = True) -> Model:
        self.get(name, version)  # NotFound first
        self.store.archive_model(name, version, archived)
        return self.get(name, version)

    async def create(self, spec: ModelSpec) -> Model:
        spec = replace(spec, tags=validation.tags(spec.tags))
        validation.model_spec(spec)
        src = Path(spec.path)
        if not src.is_absolute():
            raise InvalidInput(
                "path", spec.path, "must be absolute on the control plane", "pass a full path"
            )
        # copy first, outside the admission lock (a model can be large), then name it;
        # the walk refuses devices, /proc, links that leave the folder and sizes over the cap
        # before a byte is copied, and a cancelled request stops the copy (inputs.copy_async)
        checked = await asyncio.to_thread(inputs.scan, spec.path, "path", "model")
        incoming = self.data_dir / "models" / ".incoming" / uuid.uuid4().hex
        try:
            incoming.mkdir(parents=True)
            await inputs.copy_async(checked, incoming / src.name, running=self._copies)
        except OSError as exc:
            shutil.rmtree(incoming, ignore_errors=True)
            raise InvalidInput(
                "path", spec.path, f"cannot be copied ({exc.strerror or exc})"
            ) from None
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        try:
            async with self.admission.lock:
                if spec.version is not None:
                    version = int(spec.version)
                    if self.store.model(spec.name, version) is not None:
                        raise Conflict(
                            f"model '{spec.name}' version {version} already exists",
                            fix="leave the version out to register the next one",
                        )
                else:
                    version = self.store.next_model_version(spec.name)
                dest_dir = self.data_dir / "models" / spec.name / str(version)
                shutil.rmtree(dest_dir, ignore_errors=True)  # a leftover of an interrupted copy
                dest_dir.parent.mkdir(parents=True, exist_ok=True)
                os.replace(incoming, dest_dir)
                model = Model(
                    name=spec.name,
                    version=version,
                    path=str(dest_dir / src.name),
                    description=spec.description,
                    tags=dict(spec.tags),
                    type=spec.type,
                    original_path=str(src),
                    created_at=time.time(),
                )
                self.store.insert_model(model)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        return model

    async def delete(self, name: str, version: int) -> None:
        async with self.admission.lock:
            model = self.get(name, version)
            users = self.store.models_in_use(name, model.version)
            if users:
                raise Conflict(
                    f"model {name}:{model.version} is used by deployment(s) " + ", ".join(users),
                    fix="delete or update those deployments first",
                )
            self.store.delete_model(name, model.version)
        shutil.rmtree(Path(model.path).parent, ignore_errors=True)

    def resolve(self, ref: str) -> Model:
        m = MODEL_REF_RE.match(ref.strip())
        if not m:
            raise InvalidInput(
                "model", ref, "must be azureml:NAME:VERSION (or NAME:VERSION)", "name a model"
            )
        name, version = m.group(1), m.group(2)
        model = self.store.model(name, int(version) if version else None)
        if model is None:
            known = [f"{x.name}:{x.version}" for x in self.store.models(name)]
            raise InvalidInput(
                "model",
                ref,
                "is not a registered model version",
                "register it first: modeldeck model create --name NAME --path PATH"
                + (f" (registered: {', '.join(known)})" if known else ""),
            )
        return model
