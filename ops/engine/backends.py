"""The state a self-managed backend keeps, read directly: update history, checkpoints, locks.

A self-managed ("DIY") backend, a folder (`file://`) or an object store (`s3://`), keeps each
stack's state in `.pulumi/stacks/<project>/<stack>.json`, a copy of it per update beside the
update's record in `.pulumi/history/<project>/<stack>/<stack>-<unix nanos>.{history,checkpoint}.json`,
and a lock per running update in `.pulumi/locks/<org>/<project>/<stack>/<id>.json`. The CLI
reads the history but cannot export an earlier state from it, and names a lock without
saying whether its update still runs: both need the objects themselves.
"""
from __future__ import annotations

import gzip
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qs, unquote, urlparse

from ops.errors import OpsError

BOOKKEEPING = ".pulumi"
HISTORY_SUFFIXES = (".history.json", ".history.json.gz")


def _decode(name: str, data: bytes) -> Any:
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    elif name.endswith(".zst"):
        raise OpsError(f"{name} is zstd-compressed; this command reads plain or gzip state files")
    return json.loads(data)


class Store:
    """Objects of a backend by key (slash-separated, relative to the backend's root)."""

    url: str

    def list(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError

    def read_json(self, key: str) -> Any:
        return _decode(key, self.read(key))


class FileStore(Store):
    def __init__(self, url: str, root: Path):
        self.url, self.root = url, root

    def list(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        # gocloud's file blobs keep their metadata in `<name>.attrs` beside each object.
        return sorted(str(p.relative_to(self.root)).replace(os.sep, "/")
                      for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".attrs"))

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


class S3Store(Store):
    """An S3 bucket (or S3-compatible server) as the CLI addresses it: `s3://bucket[/prefix]?…`.

    The query parameters are gocloud.dev's (`endpoint`, `region`, `s3ForcePathStyle` or
    `use_path_style`, `disableSSL` or `disable_https`, `profile`); credentials come from the
    environment, as they do for the CLI.
    """

    def __init__(self, url: str):
        import boto3  # only an object-store backend pays for it
        from botocore.config import Config

        parsed = urlparse(url)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        self.url, self.bucket = url, parsed.netloc
        self.prefix = unquote(parsed.path).strip("/")
        endpoint = query.get("endpoint")
        insecure = query.get("disableSSL", query.get("disable_https", "")).lower() == "true"
        if endpoint and "://" not in endpoint:
            endpoint = ("http://" if insecure else "https://") + endpoint
        path_style = (query.get("s3ForcePathStyle", query.get("use_path_style", "")).lower() == "true")
        session = boto3.session.Session(profile_name=query.get("profile"))
        self.client = session.client(
            "s3", endpoint_url=endpoint, region_name=query.get("region"),
            config=Config(s3={"addressing_style": "path" if path_style else "auto"},
                          retries={"max_attempts": 3}))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix.rstrip("/") + "/")):
            keys += [item["Key"][strip:] for item in page.get("Contents", [])]
        return sorted(keys)

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()


# Self-managed backends by scheme: what each is, and whether platform reads its objects.
SELF_MANAGED = {"file": "folder", "s3": "S3 bucket", "gs": "Google Cloud Storage bucket",
                "azblob": "Azure Blob Storage container"}
READABLE = ("file", "s3")  # gs and azblob: no server to prove a reader against offline
CLOUD_SCHEMES = ("https", "http")  # Pulumi Cloud, or a self-hosted Pulumi Cloud service


@dataclass(frozen=True)
class Backend:
    """The backend a URL names, told by its scheme, and what platform can read of it.

    Pulumi Cloud keeps each update's state and reports a running update itself (the CLI asks
    it). A self-managed backend keeps them as objects platform reads directly: a folder
    (`file://`) and an S3 bucket (`s3://`) are read; a Google Cloud Storage (`gs://`) or Azure
    Blob Storage (`azblob://`) backend is refused where those objects are needed (its locks,
    an earlier update's state), with a message naming it. No backend is taken for another.
    """

    url: str
    scheme: str

    @classmethod
    def of(cls, url: str) -> "Backend":
        scheme = urlparse(url).scheme.lower()
        if scheme not in SELF_MANAGED and scheme not in CLOUD_SCHEMES:
            raise OpsError(f"the backend {_shown(url)} is not one platform knows: file://, s3://, "
                           "gs://, azblob:// or Pulumi Cloud (https://)")
        return cls(url, scheme)

    @property
    def is_cloud(self) -> bool:
        return self.scheme in CLOUD_SCHEMES

    def describe(self) -> str:
        kind = "Pulumi Cloud" if self.is_cloud else f"the {SELF_MANAGED[self.scheme]}"
        return f"{kind} {_shown(self.url)}"

    @property
    def readable(self) -> bool:
        """Whether platform reads this backend's objects itself (file:// and s3://)."""
        return self.scheme in ("file", "s3")

    def store(self, what: str) -> Store:
        """The backend's objects, for `what` (a sentence naming the stack and the need)."""
        if self.scheme == "file":
            parsed = urlparse(self.url)
            return FileStore(self.url, Path(os.path.expanduser(unquote(parsed.netloc + parsed.path))))
        if self.scheme == "s3":
            return S3Store(self.url)
        where = ("Pulumi Cloud keeps them in its service" if self.is_cloud
                 else "platform reads a self-managed backend's objects itself, and does so "
                      "for file:// and s3:// backends only")
        raise OpsError(f"{what} is not supported on {self.describe()}: {where}")


def _shown(url: str) -> str:
    """A backend URL as it may be printed: no query (options, perhaps credentials)."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path}"


def open_store(url: str) -> Optional[Store]:
    """The objects of a self-managed backend platform reads (file://, s3://), else None."""
    backend = Backend.of(url)
    return backend.store("") if backend.scheme in READABLE else None


@dataclass(frozen=True)
class SavedUpdate:
    """One update's record and the state it wrote, as a self-managed backend keeps them."""

    record_key: str
    checkpoint_key: str
    nanos: int  # when the record was written: orders the updates


@dataclass(frozen=True)
class Lock:
    key: str
    pid: int
    username: str
    hostname: str
    timestamp: str

    @property
    def here(self) -> bool:
        return self.hostname == socket.gethostname()

    def describe(self) -> str:
        return f"{self.username}@{self.hostname} (pid {self.pid}) since {self.timestamp}"


class StackState:
    """What a self-managed backend holds for one stack of one project."""

    def __init__(self, store: Store, project: str, stack: str, organization: str = "organization"):
        self.store, self.project, self.stack, self.organization = store, project, stack, organization

    @property
    def history_dir(self) -> str:
        return f"{BOOKKEEPING}/history/{self.project}/{self.stack}"

    @property
    def lock_dir(self) -> str:
        return f"{BOOKKEEPING}/locks/{self.organization}/{self.project}/{self.stack}"

    def saved_updates(self) -> list[SavedUpdate]:
        """Every update of the stack with the state it wrote, oldest first (as the CLI orders
        the history: by file name, whose number is the time it was written)."""
        keys = set(self.store.list(self.history_dir))
        saved = []
        for key in sorted(keys):
            suffix = next((s for s in HISTORY_SUFFIXES if key.endswith(s)), None)
            if suffix is None:
                continue
            base = key[: -len(suffix)]
            checkpoint = base + suffix.replace("history", "checkpoint")
            nanos = base.rsplit("-", 1)[-1]
            saved.append(SavedUpdate(key, checkpoint if checkpoint in keys else "",
                                     int(nanos) if nanos.isdigit() else 0))
        return sorted(saved, key=lambda s: (s.nanos, s.record_key))

    def current(self) -> Optional[dict[str, Any]]:
        """The stack's latest deployment, or None when the backend holds no such stack."""
        base = f"{BOOKKEEPING}/stacks/{self.project}/{self.stack}.json"
        keys = set(self.store.list(f"{BOOKKEEPING}/stacks/{self.project}"))
        for key in (base, base + ".gz"):
            if key in keys:
                return deployment_of(self.store.read_json(key))["deployment"]
        return None

    def record(self, saved: SavedUpdate) -> dict[str, Any]:
        return self.store.read_json(saved.record_key)

    def checkpoint(self, saved: SavedUpdate) -> dict[str, Any]:
        """The versioned checkpoint `{"version": N, "checkpoint": {"latest": deployment, …}}`."""
        if not saved.checkpoint_key:
            raise OpsError(f"stack '{self.stack}': the backend kept no state for that update")
        return self.store.read_json(saved.checkpoint_key)

    def locks(self) -> list[Lock]:
        found = []
        for key in self.store.list(self.lock_dir):
            try:
                content = self.store.read_json(key)
            except (OSError, ValueError):
                content = {}
            found.append(Lock(key=key, pid=int(content.get("pid") or 0),
                              username=str(content.get("username", "?")),
                              hostname=str(content.get("hostname", "?")),
                              timestamp=str(content.get("timestamp", "?"))))
        return found


def deployment_of(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What `pulumi stack import` takes, from a checkpoint file: `{"version", "deployment"}`."""
    return {"version": checkpoint.get("version", 3),
            "deployment": (checkpoint.get("checkpoint") or {}).get("latest") or {}}


def parse_time(value: str) -> Optional[datetime]:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
