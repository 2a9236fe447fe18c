"""OCI image layouts (index.json, oci-layout, blobs/sha256/...) read and written with the
standard library: what `build` writes per service and what the tests inspect."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


def canonical(document: dict) -> bytes:
    """JSON as the blobs we write hold it: sorted keys, no spaces (one text, one digest)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Layout:
    path: Path

    # -- reading --------------------------------------------------------------------------
    def index(self) -> dict:
        return json.loads((self.path / "index.json").read_text())

    def descriptor(self) -> dict:
        """The layout's one image manifest."""
        manifests = self.index()["manifests"]
        if len(manifests) != 1 or manifests[0]["mediaType"] not in (MANIFEST, DOCKER_MANIFEST):
            raise ValueError(f"{self.path}: expected one image manifest, found "
                             f"{[m['mediaType'] for m in manifests]}")
        return manifests[0]

    @property
    def digest(self) -> str:
        return self.descriptor()["digest"]

    def blob(self, digest: str) -> bytes:
        algorithm, hexdigest = digest.split(":", 1)
        data = (self.path / "blobs" / algorithm / hexdigest).read_bytes()
        if hashlib.new(algorithm, data).hexdigest() != hexdigest:
            raise ValueError(f"{self.path}: blob {digest} does not match its digest")
        return data

    def manifest(self) -> dict:
        return json.loads(self.blob(self.digest))

    def config(self) -> dict:
        return json.loads(self.blob(self.manifest()["config"]["digest"]))

    def layers(self) -> list[bytes]:
        """Each layer as an uncompressed tar."""
        out = []
        for layer in self.manifest()["layers"]:
            data = self.blob(layer["digest"])
            out.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
        return out

    def files(self) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
        """The image's file system: every path of every layer, later layers winning."""
        tree: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
        for layer in self.layers():
            with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
                for member in tar.getmembers():
                    content = tar.extractfile(member).read() if member.isfile() else None
                    tree[member.name.lstrip("./").rstrip("/")] = (member, content)
        return tree

    # -- writing --------------------------------------------------------------------------
    def write_blob(self, data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path / "blobs" / "sha256" / digest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def write_index(self, manifests: list[dict]) -> None:
        (self.path / "oci-layout").write_bytes(canonical(OCI_LAYOUT))
        (self.path / "index.json").write_bytes(
            canonical({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}))
