"""Fixtures for the `platform` command's tests: small git repositories made from this project,
and GitHub's API as a stand-in on loopback."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from ops.cli import main

from tests.e2e.harness import REPO_ROOT, tracked_files

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "CI test", "GIT_AUTHOR_EMAIL": "ci@example.com",
                "GIT_COMMITTER_NAME": "CI test", "GIT_COMMITTER_EMAIL": "ci@example.com"}


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                            env={**os.environ, **GIT_IDENTITY})
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


@dataclass
class ProjectRepo:
    """A git repository holding a copy of this project's files, on branch `main`."""

    root: Path

    def write(self, path: str, content: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)

    def read(self, path: str) -> str:
        return (self.root / path).read_text()

    def commit(self, message: str = "change") -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.root, "rev-parse", "HEAD")

    def branch(self, name: str) -> None:
        git(self.root, "checkout", "-q", "-b", name)

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def platform(self, *args: str, stdin: Optional[str] = None) -> tuple[int, str, str]:
        """`platform --project-dir <repo> ARGS` in this process: (exit code, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin = io.StringIO(stdin) if stdin is not None else saved[0]
        sys.stdout, sys.stderr = out, err
        try:
            code = main(["--project-dir", str(self.root), *args])
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
        return code, out.getvalue(), err.getvalue()

    def affected(self, *args: str, stdin: Optional[str] = None) -> dict:
        code, out, err = self.platform("affected", "--json", *args, stdin=stdin)
        assert code == 0, err
        return json.loads(out)


@pytest.fixture(scope="session")
def project_template(tmp_path_factory) -> Path:
    """This project's tracked files (and the Worker bundle, a build output) committed once."""
    root = tmp_path_factory.mktemp("template") / "project"
    for name in tracked_files(REPO_ROOT):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the project as it is")
    return root


@pytest.fixture
def repo(project_template: Path, tmp_path: Path) -> ProjectRepo:
    """A fresh copy of the template repository, on branch `main`."""
    root = tmp_path / "project"
    shutil.copytree(project_template, root, symlinks=True)
    return ProjectRepo(root)


class GitHubStandIn(ThreadingHTTPServer):
    """The slice of GitHub's REST API that `platform` calls, on loopback, holding its state
    in memory: pull request comments, issues, and the branches, files and pull requests of one
    repository (`branches`: each branch's files by path; `main` is the default branch, seeded
    by the test). Like GitHub it pages lists
    with Link headers and gives each object its API `url`; `answers` are canned answers
    (status, headers, body) given, in order, before any request is served, such as a rate
    limit; `seen` records each request with the time it arrived."""

    token = "test-token"
    repository = "example/platform"

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _GitHubHandler)
        self.comments: dict[int, list[dict]] = {}
        self.issues: list[dict] = []
        self.pulls: dict[int, dict] = {}
        self.branches: dict[str, dict[str, bytes]] = {"main": {}}
        self.heads: dict[str, str] = {"main": hashlib.sha1(b"main").hexdigest()}
        self.requests: list[tuple[str, str]] = []
        self.seen: list[tuple[float, str, str, int]] = []  # (time, method, path, status)
        self.answers: list[tuple[int, dict[str, str], object]] = []
        self.next_id = 1000
        self.fail_with: Optional[int] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def repo_url(self) -> str:
        return f"{self.url}/repos/{self.repository}"

    def environment(self) -> dict[str, str]:
        return {"GITHUB_TOKEN": self.token, "GITHUB_REPOSITORY": self.repository, "GITHUB_API_URL": self.url}

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def comment_view(self, comment: dict) -> dict:
        return {**comment, "url": f"{self.repo_url}/issues/comments/{comment['id']}"}

    def issue_view(self, issue: dict) -> dict:
        return {**issue, "url": f"{self.repo_url}/issues/{issue['number']}"}

    def file_view(self, path: str, content: bytes) -> dict:
        return {"type": "file", "path": path, "name": path.rsplit("/", 1)[-1], "encoding": "base64",
                "content": base64.b64encode(content).decode(), "sha": blob_sha(content),
                "url": f"{self.repo_url}/contents/{path}"}

    def commit(self, branch: str, message: str) -> dict:
        self.heads[branch] = hashlib.sha1(f"{self.heads[branch]}{message}".encode()).hexdigest()
        return {"sha": self.heads[branch], "message": message}


def blob_sha(content: bytes) -> str:
    """git's id of a blob, as GitHub gives a file's `sha`."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class _GitHubHandler(BaseHTTPRequestHandler):
    server: GitHubStandIn

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, payload, headers: Optional[dict[str, str]] = None) -> None:
        # Recorded before the answer leaves: the client may act on it before this thread runs on.
        self.server.seen.append((time.monotonic(), self.command, self.path, status))
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _page(self, items: list, query: dict) -> None:
        """One page of a list, with GitHub's Link header to the next one."""
        page, per_page = int(query.get("page", ["1"])[0]), int(query.get("per_page", ["30"])[0])
        headers = {}
        if page * per_page < len(items):
            following = {**{k: v[0] for k, v in query.items()}, "page": str(page + 1),
                         "per_page": str(per_page)}
            next_url = f"{self.server.url}{urlparse(self.path).path}?{urlencode(following)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._send(200, items[(page - 1) * per_page:page * per_page], headers)

    def _route(self, method: str) -> None:
        server = self.server
        url = urlparse(self.path)
        server.requests.append((method, self.path))
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        # GitHub takes the token under either scheme (PyGithub sends `token`).
        if self.headers.get("Authorization") not in (f"Bearer {server.token}", f"token {server.token}"):
            return self._send(401, {"message": "Bad credentials"})
        if server.answers:
            status, headers, payload = server.answers.pop(0)
            return self._send(status, payload, headers)
        if server.fail_with:
            return self._send(server.fail_with, {"message": "Resource not accessible by integration"})
        prefix = f"/repos/{server.repository}"
        if not url.path.startswith(prefix):
            return self._send(404, {"message": "Not Found"})
        path, query = url.path[len(prefix):], parse_qs(url.query)
        parts = path.strip("/").split("/")
        if parts[0] == "issues" and len(parts) == 3 and parts[2] == "comments":
            comments = server.comments.setdefault(int(parts[1]), [])
            if method == "GET":
                return self._page([server.comment_view(c) for c in comments], query)
            comment = {"id": server.new_id(), "body": body["body"],
                       "html_url": f"https://github.test/pull/{parts[1]}#c{server.next_id}"}
            comments.append(comment)
            return self._send(201, server.comment_view(comment))
        if parts[:2] == ["issues", "comments"] and method == "PATCH":
            for comment in (c for cs in server.comments.values() for c in cs):
                if comment["id"] == int(parts[2]):
                    comment["body"] = body["body"]
                    return self._send(200, server.comment_view(comment))
            return self._send(404, {"message": "Not Found"})
        if parts == ["issues"] and method == "GET":
            label = query.get("labels", [""])[0]
            found = [server.issue_view(i) for i in server.issues
                     if i["state"] == "open" and label in i["labels"]]
            return self._page(found, query)
        if parts == ["issues"] and method == "POST":
            issue = {"number": server.new_id(), "title": body["title"], "body": body["body"],
                     "labels": body.get("labels", []), "state": "open",
                     "html_url": f"https://github.test/issues/{server.next_id}"}
            server.issues.append(issue)
            return self._send(201, server.issue_view(issue))
        if parts[0] == "issues" and len(parts) == 2:
            for issue in server.issues:
                if issue["number"] == int(parts[1]):
                    if method == "PATCH":
                        issue.update({k: v for k, v in body.items() if k in ("title", "body", "state")})
                    return self._send(200, server.issue_view(issue))
        if parts[0] == "pulls" and len(parts) == 2 and method == "GET" and int(parts[1]) in server.pulls:
            return self._send(200, server.pulls[int(parts[1])])
        if parts == [""] and method == "GET":
            return self._send(200, {"full_name": server.repository, "name": server.repository.split("/")[1],
                                    "default_branch": "main", "url": server.repo_url})
        return self._route_git(method, parts, query, body)

    def _route_git(self, method: str, parts: list[str], query: dict, body) -> None:
        """Branches, files and pull requests."""
        server = self.server
        if parts[:3] == ["git", "ref", "heads"] and method == "GET":
            branch = "/".join(parts[3:])
            if branch not in server.heads:
                return self._send(404, {"message": "Not Found"})
            return self._send(200, {"ref": f"refs/heads/{branch}", "url": f"{server.repo_url}/git/refs/heads/{branch}",
                                    "object": {"sha": server.heads[branch], "type": "commit"}})
        if parts == ["git", "refs"] and method == "POST":
            branch = body["ref"].removeprefix("refs/heads/")
            if branch in server.heads:
                return self._send(422, {"message": "Reference already exists"})
            source = next(b for b, sha in server.heads.items() if sha == body["sha"])
            server.branches[branch], server.heads[branch] = dict(server.branches[source]), body["sha"]
            return self._send(201, {"ref": body["ref"], "object": {"sha": body["sha"], "type": "commit"},
                                    "url": f"{server.repo_url}/git/{body['ref']}"})
        if parts[0] == "contents" and len(parts) > 1:
            path = "/".join(parts[1:])
            branch = (query.get("ref") or [body.get("branch", "main") if body else "main"])[0]
            files = server.branches.get(branch)
            if files is None:
                return self._send(404, {"message": "No commit found for the ref"})
            if method == "GET":
                if path not in files:
                    return self._send(404, {"message": "Not Found"})
                return self._send(200, server.file_view(path, files[path]))
            if method == "PUT":
                if path in files and body.get("sha") != blob_sha(files[path]):
                    return self._send(409, {"message": f"{path} does not match {body.get('sha')}"})
                created = path not in files
                files[path] = base64.b64decode(body["content"])
                return self._send(201 if created else 200, {"content": server.file_view(path, files[path]),
                                                            "commit": server.commit(branch, body["message"])})
        if parts == ["pulls"] and method == "POST":
            if body["head"] not in server.branches:
                return self._send(422, {"message": "Validation Failed: head"})
            number = server.new_id()
            server.pulls[number] = {
                "number": number, "title": body["title"], "body": body.get("body"), "state": "open",
                "head": {"ref": body["head"], "sha": server.heads[body["head"]]}, "base": {"ref": body["base"]},
                "url": f"{server.repo_url}/pulls/{number}", "html_url": f"https://github.test/pull/{number}"}
            return self._send(201, server.pulls[number])
        return self._send(404, {"message": "Not Found"})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PATCH(self):
        self._route("PATCH")

    def do_PUT(self):
        self._route("PUT")


@pytest.fixture
def github(monkeypatch):
    """A GitHub stand-in on loopback, with the environment Actions would set pointing at it."""
    server = GitHubStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def cloudflare_analytics(monkeypatch):
    """Cloudflare's GraphQL Analytics API as a stand-in on loopback (tests/ops/cloudflare_analytics.py),
    with the API token `platform` reads set to the one it accepts."""
    from tests.ops.cloudflare_analytics import start

    server = start()
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", server.token)
    yield server
    server.shutdown()
    server.server_close()
