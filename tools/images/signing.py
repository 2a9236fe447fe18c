"""Signing, attesting and verifying pushed images with cosign.

Two ways to sign, one code path:
- keyless (on GitHub): cosign takes the workflow's OIDC token (`id-token: write`), Fulcio
  issues a short-lived certificate naming the workflow, the signature is logged in Rekor;
  verification names that identity and issuer (`Identity`).
- with a key pair (offline, tests and `make e2e`): no certificate authority nor transparency
  log can be reached, so nothing is uploaded (`--tlog-upload=false`, and
  `--use-signing-config=false`, which cosign v3 requires for that) and verification skips the
  log (`--insecure-ignore-tlog=true`). Every message of this module says when that is so.

What is attached to each digest: the signature, the SBOM as an SPDX attestation
(`--type spdxjson`) and a SLSA v1 provenance attestation naming the workflow, the repository
and the commit (`--type slsaprovenance1`).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import toolchain
from .build import GO_ENV, GO_FLAGS, GO_LDFLAGS, PLATFORM, BuiltImage
from .registry import is_loopback, registry_of

SBOM_TYPE = "spdxjson"
PROVENANCE_TYPE = "slsaprovenance1"
PREDICATE_TYPES = {SBOM_TYPE: "https://spdx.dev/Document", PROVENANCE_TYPE: "https://slsa.dev/provenance/v1"}
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_BUILD_TYPE = "https://actions.github.io/buildtypes/workflow/v1"
LOCAL_BUILD_TYPE = "urn:platform:tools.images:local:v1"
OFFLINE_NOTE = "offline: key pair, no transparency log"


@dataclass(frozen=True)
class KeyPair:
    private_key: Path  # cosign.key, encrypted with password
    public_key: Path  # cosign.pub: what verification and admission trust
    password: str = ""


def generate_key_pair(directory: Path, password: str) -> KeyPair:
    """A cosign key pair in directory (for tests and offline runs; CI signs keyless)."""
    toolchain.ensure("cosign")
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "cosign.key").exists():
        raise FileExistsError(f"{directory / 'cosign.key'} exists: a new key pair is made in an empty folder")
    toolchain.run("cosign", ["generate-key-pair"], cwd=directory,
                  env={**os.environ, "COSIGN_PASSWORD": password}, what="cosign generate-key-pair")
    return KeyPair(directory / "cosign.key", directory / "cosign.pub", password)


@dataclass(frozen=True)
class Signer:
    """Who signs: a key pair (offline) or, with none, the ambient keyless identity (GitHub)."""
    key: KeyPair | None = None

    @property
    def offline(self) -> bool:
        return self.key is not None

    def describe(self) -> str:
        return f"key {self.key.public_key} ({OFFLINE_NOTE})" if self.key else "keyless (OIDC identity, Rekor)"

    def flags(self) -> list[str]:
        if self.key is None:
            return []
        return ["--key", str(self.key.private_key), "--tlog-upload=false", "--use-signing-config=false"]

    def env(self) -> dict[str, str]:
        return {**os.environ, "COSIGN_PASSWORD": self.key.password if self.key else ""}


@dataclass(frozen=True)
class Identity:
    """A keyless signer to trust: the workflow's certificate identity and its OIDC issuer, e.g.
    https://github.com/OWNER/REPO/.github/workflows/deploy.yml@refs/heads/main."""
    certificate_identity: str
    oidc_issuer: str = GITHUB_ISSUER


def registry_flags(ref: str) -> list[str]:
    # Plain HTTP and no TLS checks only for a registry on loopback.
    return ["--allow-insecure-registry", "--allow-http-registry"] if is_loopback(registry_of(ref)) else []


def sign_image(ref: str, signer: Signer) -> None:
    """Signs ref (registry/repository@sha256:...) and stores the signature in its registry."""
    require_digest(ref)
    toolchain.ensure("cosign")
    toolchain.run("cosign", ["sign", *signer.flags(), *registry_flags(ref), "--yes", ref],
                  env=signer.env(), what=f"cosign sign of {ref}")


def attest_image(ref: str, predicate: dict, predicate_type: str, signer: Signer) -> None:
    """Attaches a signed in-toto attestation of predicate_type (SBOM_TYPE, PROVENANCE_TYPE)."""
    require_digest(ref)
    toolchain.ensure("cosign")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(predicate, file)
        file.flush()
        toolchain.run("cosign", ["attest", *signer.flags(), *registry_flags(ref), "--type", predicate_type,
                                 "--predicate", file.name, "--yes", ref],
                      env=signer.env(), what=f"cosign attest --type {predicate_type} of {ref}")


@dataclass(frozen=True)
class Workflow:
    """What built and pushed the image: on GitHub the workflow file at its ref and the run;
    offline the command that ran (`make e2e`, a test)."""
    path: str  # .github/workflows/deploy.yml, or the local command
    repository: str
    ref: str | None = None  # refs/heads/main
    run: str | None = None  # the run's URL

    @classmethod
    def from_environment(cls, repository: str, local: str = "local") -> "Workflow":
        env = os.environ
        workflow_ref = env.get("GITHUB_WORKFLOW_REF")  # owner/repo/.github/workflows/x.yml@refs/heads/main
        if not workflow_ref:
            return cls(path=local, repository=repository)
        path, _, ref = workflow_ref.split("/", 2)[2].partition("@")
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        run = f"{server}/{env.get('GITHUB_REPOSITORY')}/actions/runs/{env.get('GITHUB_RUN_ID')}/attempts/{env.get('GITHUB_RUN_ATTEMPT', '1')}"
        return cls(path=path, repository=repository, ref=ref, run=run)

    @property
    def on_github(self) -> bool:
        return self.ref is not None

    @property
    def builder_id(self) -> str:
        return f"{self.repository}/{self.path}@{self.ref}" if self.on_github else f"urn:platform:local:{self.path}"


def provenance(image: BuiltImage, workflow: Workflow) -> dict:
    """The SLSA v1 provenance predicate of a built image (cosign supplies the subject, the digest)."""
    source = image.source
    return {
        "buildDefinition": {
            "buildType": GITHUB_BUILD_TYPE if workflow.on_github else LOCAL_BUILD_TYPE,
            "externalParameters": {
                "workflow": {"path": workflow.path, "repository": workflow.repository, "ref": workflow.ref},
                "service": f"apps/{image.service}",
            },
            "internalParameters": {
                "go": {"env": GO_ENV, "flags": GO_FLAGS, "ldflags": GO_LDFLAGS, "platform": PLATFORM},
                "sourceDateEpoch": source.epoch,
                "uncommittedChanges": image.dirty,
            },
            "resolvedDependencies": [{
                "uri": f"git+{source.repository}" + (f"@{workflow.ref}" if workflow.ref else ""),
                "digest": {"gitCommit": source.revision},
            }],
        },
        "runDetails": {
            "builder": {"id": workflow.builder_id, "version": tool_versions()},
            "metadata": {"invocationId": workflow.run or f"local:{workflow.path}"},
        },
    }


def tool_versions() -> dict[str, str]:
    from tools.engine import versions
    built = versions.built_versions()
    go = subprocess.run([os.environ.get("GO", "go"), "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
    return {"ko": f"v{built.ko}", "cosign": f"v{built.cosign}", "go": go}


def sbom_predicate(image: BuiltImage) -> dict:
    return json.loads(image.sbom.read_text())


class VerificationError(Exception):
    """The image is not signed (or attested) by whom it must be."""


def trust_flags(key: Path | None, identity: Identity | None) -> list[str]:
    if (key is None) == (identity is None):
        raise ValueError("verify against exactly one of a public key or a keyless identity")
    if key is not None:
        return ["--key", str(key), "--insecure-ignore-tlog=true"]
    return ["--certificate-identity", identity.certificate_identity,
            "--certificate-oidc-issuer", identity.oidc_issuer]


def verify_image(ref: str, key: Path | None = None, identity: Identity | None = None,
                 cosign: Path | None = None) -> list[dict]:
    """The verified signature payloads of ref; VerificationError (with cosign's reason) when
    it carries no signature of the key or identity given. This is the check admission makes
    (with the `cosign` it found: admission never starts a build of one)."""
    require_digest(ref)
    if cosign is None:
        toolchain.ensure("cosign")
        cosign = toolchain.tool("cosign")
    args = ["verify", *trust_flags(key, identity), *registry_flags(ref), "--output", "json", ref]
    result = subprocess.run([str(cosign), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise VerificationError(f"{ref} is not signed by {key or identity.certificate_identity}: "
                                f"{reason(result.stderr)}")
    return json.loads(result.stdout)  # one JSON list of the verified payloads


def verify_attestation(ref: str, predicate_type: str, key: Path | None = None,
                       identity: Identity | None = None) -> list[dict]:
    """The verified in-toto statements of predicate_type attached to ref."""
    require_digest(ref)
    toolchain.ensure("cosign")
    args = ["verify-attestation", *trust_flags(key, identity), *registry_flags(ref), "--type", predicate_type, ref]
    result = subprocess.run([str(toolchain.tool("cosign")), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise VerificationError(f"{ref} has no {predicate_type} attestation signed by "
                                f"{key or identity.certificate_identity}: {reason(result.stderr)}")
    statements = []
    for line in result.stdout.splitlines():
        if line.strip():
            envelope = json.loads(line)
            statements.append(json.loads(base64.b64decode(envelope["payload"])))
    return statements


def reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors[-1].removeprefix("Error:").strip() if errors else (lines[-1] if lines else "cosign failed"))


def require_digest(ref: str) -> None:
    if "@sha256:" not in ref:
        raise ValueError(f"{ref}: sign and verify images by digest (registry/repository@sha256:...), never by tag")
