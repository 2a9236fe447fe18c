"""requirements.txt and the engine toolchain's Go modules name the same Pulumi releases.

Checked from the files alone, so `make test` catches a pin moved without tools/engine (or
the reverse) before `make e2e` builds anything; the e2e suite checks the built binaries.
"""

from __future__ import annotations

import pytest

from tools.engine import versions

PSEUDO = "v4.0.0-20260115033456-f47bc2d6f199"  # committed 2026-01-15 03:34:56 UTC = 1768448096


def test_requirements_pin_what_the_engine_builds():
    pins = versions.requirement_pins()
    built = versions.built_versions()
    assert built.pulumi_cli == pins["pulumi"]
    assert built.kubernetes_provider == versions.plugin_version(pins["pulumi-kubernetes"])


def test_the_kubernetes_provider_is_a_release_a_runner_can_install():
    # A commit build's plugin is not on Pulumi's plugin server: runners need a released pin.
    pin = versions.requirement_pins()["pulumi-kubernetes"]
    assert not versions.COMMIT_BUILD.match(pin), f"pulumi-kubernetes=={pin} is a commit build"
    assert versions.built_versions().kubernetes_provider == pin


@pytest.mark.parametrize("module_version, pinned, release", [
    ("v3.260.0", "3.260.0", "3.260.0"),
    (PSEUDO, "4.25.0a1768448096", "4.25.0-alpha.1768448096"),
    (PSEUDO, "4.25.0", "4.25.0"),  # the release tagged at that commit
    ("v1.2.3-0.20260115033456-f47bc2d6f199", "1.2.4a1768448096", "1.2.4-alpha.1768448096"),
])
def test_a_module_version_is_released_as_the_pinned_build_of_the_same_commit(module_version, pinned, release):
    assert versions.release_version("pkg", module_version, pinned) == release


@pytest.mark.parametrize("module_version, pinned, message", [
    ("v3.260.0", "3.272.0", "requirements.txt pins pkg==3.272.0 but tools/engine builds 3.260.0"),
    (PSEUDO, "4.34.2", "pins pkg==4.34.2, not that commit's release 4.25.0 or its build X.Y.Za1768448096"),
    ("v4.0.0-20260115033456-0123456789ab", "4.25.0", "not that commit's build X.Y.Za1768448096"),
    (PSEUDO, "4.25.0a1768448095", "from commit f47bc2d6f199"),
    (PSEUDO, None, "committed 2026-01-15 03:34:56 UTC"),
])
def test_any_other_pair_is_a_mismatch_that_says_what_to_align(module_version, pinned, message):
    with pytest.raises(versions.VersionMismatch, match=message):
        versions.release_version("pkg", module_version, pinned)


def test_runners_install_the_released_cli_and_plugins_the_engine_build_is_held_to(tmp_path):
    # One pin file: what CI installs (.github/actions/pulumi) is what the offline build makes.
    built, released = versions.built_versions(), versions.released_versions()
    assert released["pulumi"] == built.pulumi_cli
    assert released["plugin-kubernetes"] == built.kubernetes_provider
    pins = versions.requirement_pins()
    assert released["plugin-cloudflare"] == pins["pulumi-cloudflare"]
    assert released["plugins"].split() == [f"{name}:{released[f'plugin-{name}']}"
                                           for name in versions.PLUGIN_PACKAGES]
    output = tmp_path / "github-output"
    assert versions.main(["--released", "--github-output", str(output)]) == 0
    assert dict(line.split("=", 1) for line in output.read_text().splitlines()) == released


def test_a_missing_pin_is_named(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pulumi==3.260.0\npulumi-kubernetes==4.25.0\n")
    with pytest.raises(versions.VersionMismatch, match="pins no version of pulumi-cloudflare, pulumi-docker"):
        versions.released_versions(requirements)
