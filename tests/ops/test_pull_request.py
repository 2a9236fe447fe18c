"""`platform pull-request`: the stack files a CI run changed, proposed as one pull request
through GitHub's REST API (the stand-in on loopback), as images.yml and rollback.yml run it."""
from __future__ import annotations

import pytest


@pytest.fixture
def proposing(repo, github, monkeypatch, tmp_path):
    """The repository checked out in the working folder; GitHub's default branch holds the same
    stack files; a pull request description written."""
    monkeypatch.chdir(repo.root)
    github.branches["main"] = {p.name: p.read_bytes() for p in repo.root.glob("Pulumi.*.yaml")}
    (tmp_path / "body.md").write_text("Why: the rollback changed what runs.\n")
    return repo, github, str(tmp_path / "body.md")


def test_the_changed_stack_files_become_one_pull_request_on_a_new_branch(proposing, tmp_path):
    repo, github, body = proposing
    stack_file = "Pulumi.api-gateway.staging.yaml"
    repo.write(stack_file, repo.read(stack_file).replace("min_replicas: 2", "min_replicas: 3"))
    summary = tmp_path / "summary.md"

    code, _, err = repo.platform("pull-request", "--branch", "rollback/api-gateway.staging-7",
                                 "--title", "api-gateway.staging: keep the rollback", "--body-file", body,
                                 "--summary", str(summary))
    assert code == 0, err
    (pull,) = github.pulls.values()
    assert (pull["head"]["ref"], pull["base"]["ref"]) == ("rollback/api-gateway.staging-7", "main")
    assert pull["title"] == "api-gateway.staging: keep the rollback"
    assert pull["body"] == "Why: the rollback changed what runs.\n"
    branch = github.branches["rollback/api-gateway.staging-7"]
    assert branch[stack_file] == (repo.root / stack_file).read_bytes()
    assert b"min_replicas: 3" in branch[stack_file]
    changed = {p for p in branch if branch[p] != github.branches["main"][p]}
    assert changed == {stack_file}  # one file, on top of main as GitHub has it
    assert github.branches["main"][stack_file] != branch[stack_file]
    assert pull["html_url"] in summary.read_text() and pull["html_url"] in err


def test_nothing_changed_makes_no_branch_and_no_pull_request(proposing):
    repo, github, body = proposing
    code, _, err = repo.platform("pull-request", "--branch", "b", "--title", "t", "--body-file", body)
    assert code == 0, err
    assert "no stack file changed: no pull request" in err
    assert list(github.branches) == ["main"] and not github.pulls
    assert not [r for r in github.requests if r[0] != "GET"]


def test_a_branch_that_exists_is_one_message_naming_the_call(proposing):
    repo, github, body = proposing
    github.branches["taken"], github.heads["taken"] = {}, "1" * 40
    stack_file = "Pulumi.staging.yaml"
    repo.write(stack_file, repo.read(stack_file) + "\n")
    code, _, err = repo.platform("pull-request", "--branch", "taken", "--title", "t", "--body-file", body)
    assert code == 1
    assert "error: GitHub answered 422 to POST /repos/example/platform/git/refs: Reference already exists" in err
    assert "Traceback" not in err and not github.pulls


def test_a_file_to_propose_that_is_not_there_is_refused_before_any_call(proposing):
    repo, github, body = proposing
    code, _, err = repo.platform("pull-request", "Pulumi.nope.yaml", "--branch", "b", "--title", "t",
                                 "--body-file", body)
    assert code == 1
    assert "error: nothing to propose from Pulumi.nope.yaml: no such file" in err
    assert not github.requests
