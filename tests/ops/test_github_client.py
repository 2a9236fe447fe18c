"""The GitHub client `platform` posts with (PyGithub) against the loopback stand-in: it pages
through every page GitHub's Link headers name, waits out rate limits as GitHub documents them,
and retries server errors with backoff, then gives up with one message."""
from __future__ import annotations

import time

import pytest

from ops.errors import OpsError
from ops.reporting.github import MAX_WAIT_SECONDS, RETRIES, GitHub

RATE_LIMITED = {"message": "API rate limit exceeded for installation ID 1."}


@pytest.fixture
def client(github) -> GitHub:
    return GitHub.from_environment()


def mine(marker: str):
    return lambda body: marker in body


def gaps(github) -> list[float]:
    """Seconds between one request and the next, in the order the stand-in saw them."""
    times = [seen[0] for seen in github.seen]
    return [later - earlier for earlier, later in zip(times, times[1:])]


def test_comments_are_found_on_every_page(github, client):
    github.comments[7] = [{"id": i, "body": f"comment {i}", "html_url": f"u{i}"} for i in range(1, 251)]
    github.comments[7].append({"id": 251, "body": "marker: staging", "html_url": "u251"})
    assert client.upsert_comment(7, "marker: staging", mine("marker: staging")) == ("unchanged", "u251")
    pages = [path for method, path in github.requests if method == "GET"]
    assert len(pages) == 3 and "page=3" in pages[-1] and "per_page=100" in pages[0]


def test_issues_are_found_on_every_page(github, client):
    github.issues = [{"number": n, "title": f"t{n}", "body": f"issue {n}", "labels": ["drift"],
                      "state": "open", "html_url": f"i{n}"} for n in range(1, 150)]
    assert client.upsert_issue("t149", "issue 149", "drift", mine("issue 149")) == ("unchanged", "i149")


def test_a_429_with_retry_after_is_waited_out_then_the_call_succeeds(github, client):
    github.answers = [(429, {"Retry-After": "1"}, {"message": "You have exceeded a secondary rate limit."})]
    assert client.upsert_comment(3, "marker: staging", mine("marker")) [0] == "created"
    assert [status for *_, status in github.seen] == [429, 200, 201]
    assert gaps(github)[0] >= 1.0


def test_a_429_at_the_primary_limit_waits_until_the_reset(github, client):
    github.answers = [(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 1)},
                       RATE_LIMITED)]
    assert client.upsert_comment(3, "marker: staging", mine("marker"))[0] == "created"
    assert [status for *_, status in github.seen] == [429, 200, 201]
    assert gaps(github)[0] >= 1.0


def test_a_403_rate_limit_waits_until_the_reset(github, client):
    github.answers = [(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 1)},
                       RATE_LIMITED)]
    assert client.upsert_comment(3, "marker: staging", mine("marker"))[0] == "created"
    assert [status for *_, status in github.seen] == [403, 200, 201]
    assert gaps(github)[0] >= 1.0


def test_a_rate_limit_resetting_past_the_longest_wait_fails_at_once(github, client):
    reset = int(time.time() + MAX_WAIT_SECONDS + 60)
    github.answers = [(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}, RATE_LIMITED)]
    started = time.monotonic()
    with pytest.raises(OpsError, match="^GitHub answered 403 to GET /repos/example/platform/issues/3/"
                                       "comments: API rate limit exceeded"):
        client.upsert_comment(3, "marker: staging", mine("marker"))
    assert time.monotonic() - started < 10


def test_a_refusal_that_is_no_rate_limit_is_not_retried(github, client):
    github.fail_with = 403
    with pytest.raises(OpsError, match="Resource not accessible by integration"):
        client.upsert_comment(3, "marker: staging", mine("marker"))
    assert len(github.seen) == 1


def test_server_errors_are_retried_with_backoff(github, client):
    github.answers = [(502, {}, {"message": "Server Error"})] * 2
    assert client.upsert_issue("t", "issue body", "drift", mine("issue body"))[0] == "created"
    assert [status for *_, status in github.seen] == [502, 502, 200, 201]
    assert gaps(github)[1] >= 1.0  # the second retry waits (urllib3: the first one is at once)


def test_server_errors_that_persist_end_in_one_message(github, client, monkeypatch):
    monkeypatch.setattr("urllib3.util.retry.Retry.get_backoff_time", lambda self: 0)
    github.answers = [(503, {}, {"message": "Unavailable"})] * (RETRIES + 1)
    with pytest.raises(OpsError, match=rf"^GitHub failed GET /repos/example/platform/issues/3/comments "
                                       rf"{RETRIES + 1} times: too many 503 error responses"):
        client.upsert_comment(3, "marker: staging", mine("marker"))
    assert len(github.seen) == RETRIES + 1
