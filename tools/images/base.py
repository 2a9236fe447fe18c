"""The base of every service image: an empty file system plus the CA bundle, run as the numeric
non-root user; made here, the same bytes on every machine, never pulled.

The CA bundle is the NSS roots of Go's golang.org/x/crypto/x509roots/fallback module, pinned by
tools/engine/ca-certificates/go.sum and written by that component (not the machine's Debian or
Ubuntu bundle, which differ between machines and would change the digest). The layer is an
uncompressed tar with fixed owners, modes and times: compressing it would tie the digest to
the zlib of the machine.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from .layout import CONFIG, LAYER, MANIFEST, Layout, canonical

NONROOT = "65532:65532"  # the UID:GID the GoService Deployment runs as (runAsUser/runAsGroup)
CA_BUNDLE_PATH = "etc/ssl/certs/ca-certificates.crt"  # the first file Go's crypto/x509 reads on Linux
# The name ko records as the base (org.opencontainers.image.base.name). `.invalid` never
# resolves: the base is read from ko's cache (see build.py), never pulled.
BASE_REPOSITORY = "base.invalid/static-ca-certificates"


def ca_layer(bundle: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        parts = CA_BUNDLE_PATH.split("/")
        for depth in range(1, len(parts)):
            folder = tarfile.TarInfo("/".join(parts[:depth]) + "/")
            folder.type, folder.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(folder)
        entry = tarfile.TarInfo(CA_BUNDLE_PATH)
        entry.mode, entry.size = 0o644, len(bundle)
        tar.addfile(entry, io.BytesIO(bundle))
    return out.getvalue()  # TarInfo defaults: uid/gid 0, mtime 0, no user or group names


def write_base(layout: Layout, bundle: Path, os: str = "linux", architecture: str = "amd64") -> dict:
    """Writes the base image into layout; returns its manifest descriptor."""
    layer_tar = ca_layer(bundle.read_bytes())
    layer = layout.write_blob(layer_tar, LAYER)
    config = layout.write_blob(canonical({
        "architecture": architecture,
        "os": os,
        "config": {"User": NONROOT},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},  # uncompressed: diff_id = digest
        "history": [{"created_by": "tools/images: CA bundle from golang.org/x/crypto/x509roots/fallback"}],
    }), CONFIG)
    manifest = layout.write_blob(canonical({
        "schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [layer],
    }), MANIFEST)
    manifest["platform"] = {"architecture": architecture, "os": os}
    layout.write_index([manifest])
    return manifest
