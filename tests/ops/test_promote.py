"""`platform promote`: a Go service's image set by digest in its stack file, never rebuilt:
CI's digest into the first environment (`--image`), then each later environment takes the
digest its predecessor runs, copied from that stack file with its comments and layout kept."""
from __future__ import annotations

import pytest

from infra.stack_files import load_stack_file

from tests.ops.conftest import ProjectRepo

STAGING, PRODUCTION = "api-gateway.staging", "api-gateway.production"
REPOSITORY = "registry.example.com/platform/api-gateway"
NEW = f"{REPOSITORY}@sha256:{'ab' * 32}"


def image(repo: ProjectRepo, stack: str):
    return load_stack_file(stack, repo.root)["config"]["platform:image"]


def stack_files(repo: ProjectRepo) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(repo.root.glob("Pulumi.*.yaml"))}


def test_ci_sets_a_new_digest_into_staging_and_only_that_line_changes(repo: ProjectRepo):
    before = repo.read(f"Pulumi.{STAGING}.yaml")
    code, out, err = repo.platform("promote", STAGING, "--image", NEW)
    assert code == 0, err
    assert image(repo, STAGING) == {"ref": NEW}
    after = repo.read(f"Pulumi.{STAGING}.yaml")
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(before.splitlines()) == len(after.splitlines()) and len(changed) == 1
    assert changed[0][1] == f"    ref: {NEW}"
    assert f"+    ref: {NEW}" in out  # the diff, as reviewed
    assert f"{STAGING}: " in out and f"-> {NEW} (from --image)" in out


def test_production_takes_the_digest_staging_runs(repo: ProjectRepo):
    assert repo.platform("promote", STAGING, "--image", NEW)[0] == 0
    staging_file = repo.read(f"Pulumi.{STAGING}.yaml")
    code, out, err = repo.platform("promote", PRODUCTION)
    assert code == 0, err
    assert image(repo, PRODUCTION) == image(repo, STAGING) == {"ref": NEW}
    assert f"-> {NEW} (from {STAGING})" in out
    assert repo.read(f"Pulumi.{STAGING}.yaml") == staging_file  # the source is only read
    text = repo.read(f"Pulumi.{PRODUCTION}.yaml")
    assert text.startswith("# Go-service stack: the api-gateway in production.")  # comments kept
    assert "# Public API only" in text


def test_promoting_what_already_runs_changes_nothing_and_says_so(repo: ProjectRepo):
    files = stack_files(repo)
    current = image(repo, PRODUCTION)["ref"]
    assert image(repo, STAGING)["ref"] == current  # the example stacks run one digest
    code, out, err = repo.platform("promote", PRODUCTION)
    assert code == 0, err
    assert out.strip() == f"{PRODUCTION} already runs {current}; nothing to do"
    assert stack_files(repo) == files


def test_a_dry_run_prints_the_change_and_writes_nothing(repo: ProjectRepo):
    files = stack_files(repo)
    code, out, err = repo.platform("promote", STAGING, "--image", NEW, "--dry-run")
    assert code == 0, err
    assert f"+    ref: {NEW}" in out and "nothing written (--dry-run)" in out
    assert stack_files(repo) == files


def test_a_promoted_image_replaces_a_build_at_up_time(repo: ProjectRepo):
    text = repo.read(f"Pulumi.{STAGING}.yaml")
    ref_line = f"    ref: {image(repo, STAGING)['ref']}\n"
    repo.write(f"Pulumi.{STAGING}.yaml", text.replace(ref_line, (
        "    build:\n      context: apps/api-gateway\n"
        f"      repository: {REPOSITORY}\n")))
    assert "build" in image(repo, STAGING)
    code, out, err = repo.platform("promote", STAGING, "--image", NEW)
    assert code == 0, err
    assert image(repo, STAGING) == {"ref": NEW}


def _staging_builds_at_up_time(repo: ProjectRepo) -> None:
    text = repo.read(f"Pulumi.{STAGING}.yaml")
    repo.write(f"Pulumi.{STAGING}.yaml", text.replace(
        f"    ref: {image(repo, STAGING)['ref']}\n",
        f"    build:\n      context: apps/api-gateway\n      repository: {REPOSITORY}\n"))


def _staging_runs_a_tag(repo: ProjectRepo) -> None:
    text = repo.read(f"Pulumi.{STAGING}.yaml")
    repo.write(f"Pulumi.{STAGING}.yaml", text.replace(
        f"    ref: {image(repo, STAGING)['ref']}\n", f"    ref: {REPOSITORY}:latest\n"))


REFUSALS = {
    "an_unknown_stack": (None, ["promote", "billing.production"],
                         "error: stack 'billing.production': no stack config file Pulumi.billing.production.yaml"),
    "an_environment_stack": (None, ["promote", "production"],
                             "error: stack 'production' is an environment stack: `platform promote` sets the image of a Go service"),
    "a_worker": (None, ["promote", "ai-worker.production"],
                 "error: stack 'ai-worker.production' is a cloudflare-worker stack"),
    "the_first_environment_without_an_image": (
        None, ["promote", STAGING],
        f"error: stack '{STAGING}': environment 'staging' comes first in the promotion order "
        "(staging -> production; Pulumi.staging.yaml sets no platform:promotion.after): nothing to "
        "promote from; set the image CI built with --image REF"),
    "an_image_set_into_a_later_environment": (
        None, ["promote", PRODUCTION, "--image", NEW],
        f"error: stack '{PRODUCTION}': platform:image.ref is promoted, never set: environment "
        f"'production' takes the digest 'staging' runs (`platform promote {PRODUCTION}` without --image)"),
    "an_image_by_tag": (
        None, ["promote", STAGING, "--image", f"{REPOSITORY}:v2"],
        f"error: stack '{STAGING}': invalid config (1 problem):\n  - platform:image.ref: "
        f"'{REPOSITORY}:v2' is not an image pinned by digest"),
    "a_predecessor_built_at_up_time": (
        _staging_builds_at_up_time, ["promote", PRODUCTION],
        f"error: stack '{PRODUCTION}': {STAGING} runs no image reference (an image built at `up` "
        f"time has no digest), not an image pinned by digest (platform:image.ref in "
        f"Pulumi.{STAGING}.yaml): nothing to promote; set a digest there first"),
    "a_predecessor_running_a_tag": (
        _staging_runs_a_tag, ["promote", PRODUCTION],
        f"error: stack '{PRODUCTION}': {STAGING} runs '{REPOSITORY}:latest', not an image pinned by digest"),
}


@pytest.mark.parametrize("prepare, args, message", REFUSALS.values(), ids=REFUSALS.keys())
def test_promote_refuses_with_one_message_and_writes_nothing(repo: ProjectRepo, prepare, args, message):
    if prepare:
        prepare(repo)
    files = stack_files(repo)
    code, out, err = repo.platform(*args)
    assert code == 1, (out, err)
    assert message in err, err
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in out + err
    assert stack_files(repo) == files


def test_a_stack_whose_environment_has_no_stack_of_the_service_is_named(repo: ProjectRepo):
    (repo.root / f"Pulumi.{STAGING}.yaml").unlink()
    files = stack_files(repo)
    code, out, err = repo.platform("promote", PRODUCTION)
    assert code == 1
    assert err.strip() == (f"error: stack '{PRODUCTION}': environment 'staging' comes before "
                           f"'production', but it has no stack {STAGING} (no Pulumi.{STAGING}.yaml) "
                           "to promote from")
    assert stack_files(repo) == files
