"""Container images of the Go services under apps/: built from source without a Docker daemon
(ko), pushed (crane), signed and attested (cosign), and verified; the one home of all four.

    python -m tools.images build|push|sign|attest|verify ...   (see __main__.py)

The functions below are what `platform` commands and the e2e suite call.
"""

from .build import BuiltImage, build_image, build_images, built_image
from .layout import Layout
from .registry import LoopbackRegistry, push_image
from .services import Service, discover_services
from .signing import (
                      PROVENANCE_TYPE,
                      SBOM_TYPE,
                      Identity,
                      KeyPair,
                      Signer,
                      VerificationError,
                      Workflow,
                      attest_image,
                      generate_key_pair,
                      provenance,
                      sbom_predicate,
                      sign_image,
                      verify_attestation,
                      verify_image,
)
from .source import Source, source_of
from .toolchain import ToolError

__all__ = [
    "PROVENANCE_TYPE", "SBOM_TYPE", "BuiltImage", "Identity", "KeyPair", "Layout", "LoopbackRegistry",
    "Service", "Signer", "Source", "ToolError", "VerificationError", "Workflow", "attest_image",
    "build_image", "build_images", "built_image", "discover_services", "generate_key_pair",
    "provenance", "push_image", "sbom_predicate", "sign_image", "source_of", "verify_attestation",
    "verify_image",
]
