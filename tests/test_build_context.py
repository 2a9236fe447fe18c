"""An image built from a service's Dockerfile is tagged from exactly what the builder receives:
the build context less what `.dockerignore` excludes."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.build_context import context_digest, context_files
from infra.project import PROJECT_ROOT

from tests.conftest import single

GATEWAY = PROJECT_ROOT / "apps" / "api-gateway"


@pytest.fixture
def context(tmp_path) -> Path:
    copy = tmp_path / "api-gateway"
    shutil.copytree(GATEWAY, copy, ignore=shutil.ignore_patterns("bin"))
    return copy


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    return folder


def test_the_gateway_context_holds_its_go_sources_and_no_tests_docs_or_benchmarks():
    files = context_files(GATEWAY)
    sources = sorted(p.name for p in GATEWAY.glob("*.go") if not p.name.endswith("_test.go"))
    assert files == sorted([".dockerignore", "Dockerfile", "go.mod", "go.sum", *sources])


def test_a_change_the_builder_never_sees_keeps_the_tag(context):
    before = context_digest(context)
    (context / "README.md").write_text("edited\n")
    (context / "run_test.go").write_text("package main\n")
    write(context, {"bench/notes.txt": "new\n"})
    assert context_digest(context) == before


def test_a_change_of_a_built_file_changes_the_tag(context):
    before = context_digest(context)
    (context / "main.go").write_text((context / "main.go").read_text() + "\n// edited\n")
    assert context_digest(context) != before


def test_a_renamed_built_file_changes_the_tag(context):
    before = context_digest(context)
    (context / "main.go").rename(context / "entry.go")
    assert context_digest(context) != before


@pytest.mark.parametrize("ignore, expected", [
    ("", ["Dockerfile", "a.md", "docs/b.md", "src/c.go"]),
    ("# a comment\n\n*.md\n", [".dockerignore", "Dockerfile", "docs/b.md", "src/c.go"]),
    ("**/*.md\n", [".dockerignore", "Dockerfile", "src/c.go"]),
    ("/docs\n", [".dockerignore", "Dockerfile", "a.md", "src/c.go"]),
    ("docs/\n", [".dockerignore", "Dockerfile", "a.md", "src/c.go"]),
    ("*\n!src\n", [".dockerignore", "Dockerfile", "src/c.go"]),
    ("*\n!*.md\n", [".dockerignore", "Dockerfile", "a.md"]),
    ("src/?.go\n", [".dockerignore", "Dockerfile", "a.md", "docs/b.md"]),
    ("[a-b].md\n", [".dockerignore", "Dockerfile", "docs/b.md", "src/c.go"]),
    ("docs\n!docs/b.md\n", [".dockerignore", "Dockerfile", "a.md", "docs/b.md", "src/c.go"]),
    ("./src/../docs\n", [".dockerignore", "Dockerfile", "a.md", "src/c.go"]),
    ("Dockerfile\n.dockerignore\n", [".dockerignore", "Dockerfile", "a.md", "docs/b.md",
                                     "src/c.go"]),
])
def test_dockerignore_patterns_follow_dockers_rules(tmp_path, ignore, expected):
    write(tmp_path, {"Dockerfile": "FROM scratch\n", "a.md": "a", "docs/b.md": "b",
                     "src/c.go": "c"})
    if ignore:
        (tmp_path / ".dockerignore").write_text(ignore)
    assert context_files(tmp_path) == expected


def test_a_built_image_is_tagged_from_its_context(run_stack_with):
    run = run_stack_with("api-gateway.staging", image={"build": {
        "context": "apps/api-gateway", "repository": "registry.example.com/platform/api-gateway"}})
    image = single(run, "docker:index/image:Image").inputs
    assert image["imageName"] == ("registry.example.com/platform/api-gateway:"
                                  + context_digest(GATEWAY))
