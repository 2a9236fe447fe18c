"""Worker stacks (Cloudflare) and the real engine: why they stay proven by the mocked tests.

The Worker stacks would be previewed offline with `pulumi-resource-cloudflare`, built like the
Kubernetes provider. Its module, github.com/pulumi/pulumi-cloudflare/provider/v6 (and /v5),
is refused by the Go module proxy this project builds from, at the requirements.txt pin and
at every other version. This test keeps that fact honest: it fails as soon as the module is
served, so that the offline preview gets built then.
"""

from __future__ import annotations

import os
import subprocess

from tools.engine import versions

MODULE = "github.com/pulumi/pulumi-cloudflare/provider/v6"


def test_the_cloudflare_provider_module_is_still_not_served(tmp_path):
    pin = versions.requirement_pins()["pulumi-cloudflare"]
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOMODCACHE": str(tmp_path / "mod"),
           "GOPATH": str(tmp_path / "gopath")}
    for query in (f"v{pin}", "latest"):
        result = subprocess.run(["go", "mod", "download", "-json", f"{MODULE}@{query}"],
                                capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        answer = result.stdout + result.stderr
        assert result.returncode != 0, (
            f"{MODULE}@{query} is served now: build pulumi-resource-cloudflare in tools/engine "
            "and preview the Worker stacks offline here")
        assert "not available" in answer or "404" in answer or "410" in answer \
            or "unknown revision" in answer or "no matching versions" in answer, answer
