"""The few GitHub REST calls CI needs: one comment per stack on a pull request, one issue per
drifted stack. Credentials come from the environment Actions sets (GITHUB_TOKEN,
GITHUB_REPOSITORY, GITHUB_API_URL); the token is never printed.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from ops.errors import OpsError

DEFAULT_API = "https://api.github.com"
TIMEOUT_SECONDS = 30


@dataclass
class GitHub:
    repository: str  # owner/name
    token: str
    api_url: str = DEFAULT_API

    @classmethod
    def from_environment(cls, environ: Optional[dict[str, str]] = None) -> "GitHub":
        env = os.environ if environ is None else environ
        missing = [v for v in ("GITHUB_TOKEN", "GITHUB_REPOSITORY") if not env.get(v)]
        if missing:
            raise OpsError(f"posting to GitHub needs {' and '.join(missing)} in the environment "
                           "(GitHub Actions: `env: GITHUB_TOKEN: ${{ github.token }}`)")
        return cls(env["GITHUB_REPOSITORY"], env["GITHUB_TOKEN"], env.get("GITHUB_API_URL") or DEFAULT_API)

    def request(self, method: str, path: str, body: Optional[dict[str, Any]] = None) -> Any:
        url = f"{self.api_url.rstrip('/')}/repos/{self.repository}{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Accept": "application/vnd.github+json", "Authorization": f"Bearer {self.token}",
            "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "platform-ci",
            **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # nosec B310 -- GITHUB_API_URL as Actions sets it
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("message", detail)
            except (json.JSONDecodeError, AttributeError):
                pass
            raise OpsError(f"GitHub answered {error.code} to {method} {urllib.parse.urlparse(url).path}: "
                           f"{str(detail)[:300]}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise OpsError(f"cannot reach GitHub at {self.api_url}: {reason}") from None
        return json.loads(payload) if payload else None

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        page = 1
        separator = "&" if "?" in path else "?"
        while True:
            items = self.request("GET", f"{path}{separator}per_page=100&page={page}") or []
            yield from items
            if len(items) < 100:
                return
            page += 1

    def upsert_comment(self, issue: int, body: str, mine: Callable[[str], bool]) -> tuple[str, str]:
        """Edit the one comment `mine` recognises, or create it: ("created"|"updated"|"unchanged", url)."""
        for comment in self._pages(f"/issues/{issue}/comments"):
            if mine(comment.get("body") or ""):
                if comment.get("body") == body:
                    return "unchanged", comment.get("html_url", "")
                updated = self.request("PATCH", f"/issues/comments/{comment['id']}", {"body": body})
                return "updated", updated.get("html_url", "")
        created = self.request("POST", f"/issues/{issue}/comments", {"body": body})
        return "created", created.get("html_url", "")

    def pull_request_head(self, number: int) -> str:
        return (self.request("GET", f"/pulls/{number}") or {}).get("head", {}).get("sha", "")

    def upsert_issue(self, title: str, body: str, label: str, mine: Callable[[str], bool]) -> tuple[str, str]:
        """Edit the one open issue with `label` that `mine` recognises, or open it."""
        for issue in self._pages(f"/issues?state=open&labels={urllib.parse.quote(label)}"):
            if "pull_request" not in issue and mine(issue.get("body") or ""):
                if issue.get("body") == body and issue.get("title") == title:
                    return "unchanged", issue.get("html_url", "")
                updated = self.request("PATCH", f"/issues/{issue['number']}", {"title": title, "body": body})
                return "updated", updated.get("html_url", "")
        created = self.request("POST", "/issues", {"title": title, "body": body, "labels": [label]})
        return "created", created.get("html_url", "")

    def close_issues(self, label: str, mine: Callable[[str], bool], comment: str) -> list[str]:
        """Close the open issues with `label` that `mine` recognises, saying why; their URLs."""
        closed = []
        for issue in list(self._pages(f"/issues?state=open&labels={urllib.parse.quote(label)}")):
            if "pull_request" not in issue and mine(issue.get("body") or ""):
                self.request("POST", f"/issues/{issue['number']}/comments", {"body": comment})
                self.request("PATCH", f"/issues/{issue['number']}", {"state": "closed"})
                closed.append(issue.get("html_url", ""))
        return closed
