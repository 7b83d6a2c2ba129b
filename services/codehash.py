"""The content digest of a tree of files: what names content-addressed copies.

One rule, used by every place that names something after the files it holds:

* the local code store's copies (``DATA_DIR/code/ENDPOINT/DEPLOYMENT/DIGEST``,
  computed while :func:`modeldeck.services.inputs.copy` copies, chunk by chunk);
* the files a Kubernetes deployment ships to its pods (``AppFiles.digest`` in
  ``drivers/kubernetes/manifests.py``: host, environment, code and model together,
  then the model's ``storage_uri``);
* Azure ML code assets (``modeldeck-<digest>``, ``azureml/assets.py``).

The rule: the sha256 of, in sorted path order, each file's relative path, NUL, its
bytes, NUL, and each folder's relative path, NUL, NUL (so an empty folder counts).

One exception, kept on purpose: Azure ML code assets were named without the NUL after a
file's bytes (``file_end=b""``). Those names are stored in users' workspaces and reused
when the same folder is deployed again, so their rule stays as it was; a change would
upload every code folder once more under a new name.
"""

from __future__ import annotations

import hashlib


class TreeDigest:
    """The digest of a tree, fed in path order: :meth:`folder`, :meth:`file` (or
    :meth:`begin`, :meth:`update`..., :meth:`end` for a file read in chunks)."""

    __slots__ = ("_end", "_h")

    def __init__(self, *, file_end: bytes = b"\0") -> None:
        self._h = hashlib.sha256()
        self._end = file_end

    def folder(self, rel: str) -> None:
        self._h.update(rel.encode() + b"\0\0")

    def begin(self, rel: str) -> None:
        self._h.update(rel.encode() + b"\0")

    def update(self, data: bytes) -> None:
        """Bytes of the file begun, or (after the files) any extra material."""
        self._h.update(data)

    def end(self) -> None:
        self._h.update(self._end)

    def file(self, rel: str, data: bytes) -> None:
        self.begin(rel)
        self.update(data)
        self.end()

    def hexdigest(self) -> str:
        return self._h.hexdigest()
