"""Admission of a Go service's images (the stable one, and a canary release's), checked by every
`platform preview` and `platform up` before the engine runs.

The environment's stack file says what it admits (`platform:images`): images pinned by digest,
from the registries it lists, signed by its signer (a cosign public key, or a keyless
issuer and subject). In production each rule refuses; elsewhere each is a warning.

The signature can only be checked against the registry, with cosign, and a CrossGuard policy
runs inside the engine, offline, on the planned inputs: it cannot reach a registry, nor run a
tool. So the pack holds the digest and registry rules (also for a raw `pulumi preview
--policy-pack policy`), and this check holds the signature one. It repeats the two offline rules
first, so a refused image's registry is never contacted.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from ops.errors import OpsError
from ops.project import StackInfo
from policy.images import allowed_by, is_pinned

PRODUCTION = "production"  # the policy pack's rule too (policy/stack_context.py)
COSIGN = Path("tools") / "engine" / "bin" / "cosign"
PINNED, REGISTRY, SIGNED = ("images-pinned-by-digest", "images-from-allowed-registries",
                            "images-signed-by-trusted-identity")


def cosign_of(root: Path) -> Optional[Path]:
    """The cosign `make signing-tools` builds, else one on PATH."""
    built = root / COSIGN
    if built.is_file():
        return built
    found = shutil.which("cosign")
    return Path(found) if found else None


def admit(session, info: StackInfo, config_file: Optional[Path] = None) -> None:
    """Refuse (production) or warn about (elsewhere) an image the environment does not admit:
    the stable image, and a canary release's beside it."""
    if info.kind != "go-service":
        return
    from ops.stack_config import canary_image, image_ref, validated  # the config models: Go services only
    images = validated(session.project, session.project.stack(info.env)).images
    # What the update would run: the stable image, and a canary release's.
    admit_image(session, info, images, image_ref(session.project.root, info.name, config_file))
    canary = canary_image(session.project.root, info.name, config_file)
    if canary is not None:
        admit_image(session, info, images, canary)


def admit_image(session, info: StackInfo, images, ref: Optional[str]) -> None:
    from ops.stack_config import IMAGE
    production = info.env == PRODUCTION
    shown = ref or "(built at `up` time)"

    def breach(rule: str, problem: str, fix: str) -> None:
        if production:
            raise OpsError(f"stack '{info.name}': image {shown} {problem} (rule {rule}-in-production, "
                           f"platform:images of Pulumi.{info.env}.yaml); nothing was previewed or "
                           f"applied. Fix: {fix}")
        session.err.write(f"warning: stack '{info.name}': image {shown} {problem} (rule {rule}, "
                          f"platform:images of Pulumi.{info.env}.yaml). Fix: {fix}\n")

    if ref is None or not is_pinned(ref):
        return breach(PINNED, "is not pinned by digest", f"set {IMAGE}.ref to registry/repository@sha256:"
                      f"<digest> (`platform promote {info.name}`)")
    if images is None:
        if production:
            session.err.write(f"warning: stack '{info.name}': environment '{info.env}' sets no "
                              f"platform:images: no registry or signer is checked\n")
        return
    if not allowed_by(ref, images.registries):
        return breach(REGISTRY, f"comes from a registry '{info.env}' does not allow "
                      f"({', '.join(images.registries)})",
                      "push it to one of them and set that digest (`platform promote`), or add its "
                      f"registry to platform:images.registries of Pulumi.{info.env}.yaml")
    if images.signer is None:
        if production:
            session.err.write(f"warning: stack '{info.name}': environment '{info.env}' sets no "
                              f"platform:images.signer: no signature is checked\n")
        return
    signer = images.signer
    trusted = f"key {signer.key}" if signer.key else f"{signer.subject} (issuer {signer.issuer})"
    cosign = cosign_of(session.project.root)
    if cosign is None:
        return breach(SIGNED, f"cannot be checked for a signature by {trusted}: cosign is missing "
                      f"({COSIGN}, nor on PATH)", "`make signing-tools` builds it")
    from tools.images import Identity, VerificationError, verify_image
    try:
        verify_image(ref, key=session.project.root / signer.key if signer.key else None,
                     identity=None if signer.key else Identity(signer.subject, signer.issuer),
                     cosign=cosign)
    except VerificationError as error:
        detail = str(error).split(": ", 1)[-1]
        return breach(SIGNED, f"is not signed by {trusted} (cosign: {detail})",
                      "deploy only digests the images workflow built, pushed and signed on main, "
                      f"promoted by `platform promote {info.name}`")
    session.err.write(f"{info.name}: image {ref} admitted: signed by {trusted}\n")
