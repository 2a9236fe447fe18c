"""python -m tools.images services|build|push|sign|attest|verify

  services                               the Go services found under apps/
  changed --base REF [--head REF] [--github-output FILE]
                                         the services whose image a change rebuilds, one a
                                         line (with --github-output: `services=<JSON list>`)
  build [SERVICE ...]                    each into build/images/<service> (an OCI layout); prints
                                         `<service> sha256:<digest>`
  push --registry HOST:PORT [SERVICE ...]   prints `<registry>/<service>@sha256:<digest>`
  sign --registry HOST:PORT [SERVICE ...] (--key cosign.key | --keyless)
  attest --registry HOST:PORT [SERVICE ...] (--key cosign.key | --keyless) [--workflow NAME]
                                         the SBOM (SPDX) and a SLSA provenance, signed
  verify IMAGE@DIGEST ... (--key cosign.pub | --certificate-identity ID)

With --key (offline) nothing is uploaded to a transparency log and verification does not look
for one; the key's password is read from COSIGN_PASSWORD. --keyless is for CI on GitHub
(the workflow's OIDC identity; needs `id-token: write`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import toolchain
from .build import DEFAULT_OUT, build_images, built_image
from .changes import changed_paths, changed_services
from .registry import push_image
from .services import discover_services, select
from .signing import (
    GITHUB_ISSUER,
    PROVENANCE_TYPE,
    SBOM_TYPE,
    Identity,
    KeyPair,
    Signer,
    VerificationError,
    Workflow,
    attest_image,
    provenance,
    sbom_predicate,
    sign_image,
    verify_image,
)
from .source import source_of


def signer_of(args: argparse.Namespace) -> Signer:
    if args.keyless:
        return Signer()
    return Signer(KeyPair(args.key, args.key.with_suffix(".pub"), os.environ.get("COSIGN_PASSWORD", "")))


def pushed(args: argparse.Namespace):
    """The built images of the chosen services with their references in args.registry."""
    for service in select(discover_services(), args.services):
        image = built_image(service.name, args.out)
        yield image, f"{args.registry}/{image.service}@{image.digest}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.images", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("services", help="the Go services found under apps/")
    changed = commands.add_parser("changed", help="the services whose image a change rebuilds")
    changed.add_argument("--base", required=True, help="the commit before the change")
    changed.add_argument("--head", default="HEAD", help="the commit after it (default: HEAD)")
    changed.add_argument("--github-output", type=Path, metavar="FILE",
                         help="also append `services=<JSON list>` to FILE (a job's outputs)")
    build = commands.add_parser("build", help="build images into OCI layouts")
    build.add_argument("--source", help="the repository URL the images name (default: CI's, or git's origin)")
    build.add_argument("--revision", help="the commit the images name (default: CI's GITHUB_SHA, or HEAD)")
    build.add_argument("--epoch", type=int, help="SOURCE_DATE_EPOCH (default: the commit's time)")
    for name in ("push", "sign", "attest"):
        sub = commands.add_parser(name, help=f"{name} the built images")
        sub.add_argument("--registry", required=True, help="HOST:PORT[/PATH] to push to")
        if name != "push":
            how = sub.add_mutually_exclusive_group(required=True)
            how.add_argument("--key", type=Path, help="cosign private key (offline: no transparency log)")
            how.add_argument("--keyless", action="store_true", help="the CI workflow's OIDC identity (GitHub)")
        if name == "attest":
            sub.add_argument("--workflow", default="python -m tools.images attest",
                             help="what ran, when not on GitHub (there: the workflow file and ref)")
    for sub in (build, *[commands.choices[n] for n in ("push", "sign", "attest")]):
        sub.add_argument("services", nargs="*", metavar="SERVICE", help="default: every Go service")
        sub.add_argument("--out", type=Path, default=DEFAULT_OUT, help="image layouts (default: build/images)")
    verify = commands.add_parser("verify", help="verify signatures by digest")
    verify.add_argument("images", nargs="+", metavar="IMAGE@DIGEST")
    trust = verify.add_mutually_exclusive_group(required=True)
    trust.add_argument("--key", type=Path, help="cosign public key")
    trust.add_argument("--certificate-identity", help="keyless: the signing workflow's identity")
    verify.add_argument("--certificate-oidc-issuer", default=GITHUB_ISSUER)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)

    try:
        if args.command == "services":
            for service in discover_services():
                print(f"{service.name} {service.path.relative_to(toolchain.REPO_ROOT)}")
        elif args.command == "changed":
            paths = changed_paths(args.base, args.head)
            names = [s.name for s in changed_services(discover_services(), paths)]
            for name in names:
                print(name)
            if args.github_output:
                with args.github_output.open("a") as output:
                    output.write(f"services={json.dumps(names)}\n")
        elif args.command == "build":
            select(discover_services(), args.services)  # an unknown name is refused first
            source = source_of(toolchain.REPO_ROOT, args.source, args.revision, args.epoch)
            build_images(args.services, out=args.out, source=source)
        elif args.command == "push":
            for service in select(discover_services(), args.services):
                print(push_image(built_image(service.name, args.out), args.registry))
        elif args.command == "sign":
            signer = signer_of(args)
            for _, ref in pushed(args):
                sign_image(ref, signer)
                print(f"{ref} signed: {signer.describe()}")
        elif args.command == "attest":
            signer = signer_of(args)
            for image, ref in pushed(args):
                workflow = Workflow.from_environment(image.source.repository, local=args.workflow)
                attest_image(ref, sbom_predicate(image), SBOM_TYPE, signer)
                attest_image(ref, provenance(image, workflow), PROVENANCE_TYPE, signer)
                print(f"{ref} attested: SBOM ({SBOM_TYPE}), provenance ({PROVENANCE_TYPE}: workflow "
                      f"{workflow.path}, commit {image.source.revision}); {signer.describe()}")
        elif args.command == "verify":
            identity = Identity(args.certificate_identity, args.certificate_oidc_issuer) if args.certificate_identity else None
            failed = 0
            for ref in args.images:
                try:
                    verify_image(ref, key=args.key, identity=identity)
                    note = " (offline: transparency log not checked)" if args.key else ""
                    print(f"{ref} verified: signed by {args.key or identity.certificate_identity}{note}")
                except VerificationError as err:
                    print(f"images: {err}", file=sys.stderr)
                    failed += 1
            return 1 if failed else 0
    except (toolchain.ToolError, LookupError, ValueError) as err:
        print(f"images: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
