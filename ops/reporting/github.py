"""The few GitHub REST calls CI needs: one comment per stack on a pull request, one issue per
drifted stack, one pull request with the stack files a run changed, through PyGithub
(pagination by GitHub's Link headers, retries with backoff on server errors, and GitHub's rate
limits waited out: Retry-After, or X-RateLimit-Reset once X-RateLimit-Remaining is 0, on a 403
or a 429). Credentials come from the environment Actions
sets (GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL); the token is never printed.
"""
from __future__ import annotations

import os
import time
import urllib.parse
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import requests
from github import Auth, Github, GithubException, GithubRetry, UnknownObjectException

from ops.errors import OpsError

DEFAULT_API = "https://api.github.com"
TIMEOUT_SECONDS = 30
PER_PAGE = 100  # GitHub's most per page: the fewest calls
RETRIES = 5
# The longest one rate-limit wait may be: past it the step fails rather than hold a CI job.
MAX_WAIT_SECONDS = 300.0


class _Retry(GithubRetry):
    """PyGithub's retry policy (403 rate limits, 5xx with exponential backoff), with GitHub's
    primary rate limit also honoured when it is answered with 429 and no Retry-After: the
    documented signal is X-RateLimit-Remaining 0, to wait until X-RateLimit-Reset."""

    def get_retry_after(self, response) -> Optional[float]:
        seconds = super().get_retry_after(response)
        if seconds is None and response.headers.get("X-RateLimit-Remaining") == "0":
            reset = response.headers.get("X-RateLimit-Reset", "")
            if reset.isdigit():
                seconds = max(0.0, int(reset) - time.time()) + 1  # +1: the reset's own second
        return None if seconds is None else min(seconds, MAX_WAIT_SECONDS)


def retry_policy() -> _Retry:
    return _Retry(total=RETRIES, backoff_factor=1.0, max_rate_limit_wait=MAX_WAIT_SECONDS,
                  status_forcelist=[429, *range(500, 600)],
                  allowed_methods=_Retry.DEFAULT_ALLOWED_METHODS | {"GET", "POST", "PATCH", "PUT"})


class GitHub:
    """One repository's issues and pull requests."""

    def __init__(self, repository: str, token: str, api_url: str = DEFAULT_API):
        self.repository = repository  # owner/name
        self.api_url = api_url
        self._client = Github(auth=Auth.Token(token), base_url=api_url.rstrip("/"), lazy=True,
                              per_page=PER_PAGE, timeout=TIMEOUT_SECONDS,
                              user_agent="platform-ci", retry=retry_policy())
        self._repo = self._client.get_repo(repository)

    @classmethod
    def from_environment(cls, environ: Optional[dict[str, str]] = None) -> "GitHub":
        env = os.environ if environ is None else environ
        missing = [v for v in ("GITHUB_TOKEN", "GITHUB_REPOSITORY") if not env.get(v)]
        if missing:
            raise OpsError(f"posting to GitHub needs {' and '.join(missing)} in the environment "
                           "(GitHub Actions: `env: GITHUB_TOKEN: ${{ github.token }}`)")
        return cls(env["GITHUB_REPOSITORY"], env["GITHUB_TOKEN"], env.get("GITHUB_API_URL") or DEFAULT_API)

    @contextmanager
    def _calling(self, method: str, path: str) -> Iterator[None]:
        """GitHub's refusals and unreachability as one message naming the call (never the token)."""
        shown = f"{urllib.parse.urlparse(self.api_url).path.rstrip('/')}/repos/{self.repository}{path}"
        try:
            yield
        except GithubException as error:
            detail = error.data.get("message", error.data) if isinstance(error.data, dict) else error.data
            raise OpsError(f"GitHub answered {error.status} to {method} {shown}: "
                           f"{str(detail)[:300]}") from None
        except requests.exceptions.RetryError as error:  # retried as often as allowed
            raise OpsError(f"GitHub failed {method} {shown} {RETRIES + 1} times: "
                           f"{_reason(error.args[0] if error.args else error)}") from None
        except (requests.RequestException, OSError) as error:
            raise OpsError(f"cannot reach GitHub at {self.api_url}: {_reason(error)}") from None

    def upsert_comment(self, issue: int, body: str, mine: Callable[[str], bool]) -> tuple[str, str]:
        """Edit the one comment `mine` recognises, or create it: ("created"|"updated"|"unchanged", url)."""
        thread = self._repo.get_issue(issue)
        with self._calling("GET", f"/issues/{issue}/comments"):
            found = next((c for c in thread.get_comments() if mine(c.body or "")), None)
        if found is not None:
            if found.body == body:
                return "unchanged", found.html_url or ""
            with self._calling("PATCH", f"/issues/comments/{found.id}"):
                found.edit(body)
            return "updated", found.html_url or ""
        with self._calling("POST", f"/issues/{issue}/comments"):
            created = thread.create_comment(body)
        return "created", created.html_url or ""

    def pull_request_head(self, number: int) -> str:
        with self._calling("GET", f"/pulls/{number}"):
            return self._repo.get_pull(number).head.sha or ""

    def _open_issues(self, label: str, mine: Callable[[str], bool]) -> list:
        with self._calling("GET", f"/issues?state=open&labels={urllib.parse.quote(label)}"):
            # `mine` first: an attribute a listed issue lacks (a pull request's) is fetched.
            return [issue for issue in self._repo.get_issues(state="open", labels=[label])
                    if mine(issue.body or "") and issue.pull_request is None]

    def upsert_issue(self, title: str, body: str, label: str, mine: Callable[[str], bool]) -> tuple[str, str]:
        """Edit the one open issue with `label` that `mine` recognises, or open it."""
        for issue in self._open_issues(label, mine)[:1]:
            if issue.body == body and issue.title == title:
                return "unchanged", issue.html_url or ""
            with self._calling("PATCH", f"/issues/{issue.number}"):
                issue.edit(title=title, body=body)
            return "updated", issue.html_url or ""
        with self._calling("POST", "/issues"):
            created = self._repo.create_issue(title=title, body=body, labels=[label])
        return "created", created.html_url or ""

    def close_issues(self, label: str, mine: Callable[[str], bool], comment: str) -> list[str]:
        """Close the open issues with `label` that `mine` recognises, saying why; their URLs."""
        closed = []
        for issue in self._open_issues(label, mine):
            with self._calling("POST", f"/issues/{issue.number}/comments"):
                issue.create_comment(comment)
            with self._calling("PATCH", f"/issues/{issue.number}"):
                issue.edit(state="closed")
            closed.append(issue.html_url or "")
        return closed

    def propose_files(self, branch: str, title: str, body: str, files: dict[str, bytes]) -> str:
        """A new branch `branch` from the default branch's head with `files` (path -> content),
        one commit each made through the API (no git credentials in the checkout), and a pull
        request of it into the default branch: its URL."""
        with self._calling("GET", ""):
            base = self._repo.default_branch
        with self._calling("GET", f"/git/ref/heads/{base}"):
            head = self._repo.get_git_ref(f"heads/{base}").object.sha
        with self._calling("POST", "/git/refs"):
            self._repo.create_git_ref(f"refs/heads/{branch}", head)
        for path, content in files.items():
            existing = None
            with self._calling("GET", f"/contents/{path}?ref={branch}"):
                try:
                    existing = self._repo.get_contents(path, ref=branch)
                except UnknownObjectException:  # a new file: 404 is no error here
                    pass
            with self._calling("PUT", f"/contents/{path}"):
                if existing is None:
                    self._repo.create_file(path, title, content, branch=branch)
                else:
                    self._repo.update_file(path, title, content, existing.sha, branch=branch)
        with self._calling("POST", "/pulls"):
            return self._repo.create_pull(base=base, head=branch, title=title, body=body).html_url or ""


def _reason(error: Exception) -> str:
    """What failed, without the request (whose headers hold the token)."""
    reason = getattr(error, "reason", None) or (error.args[0] if error.args else error)
    return str(reason).split(" (Caused by ")[0][:300]
