"""Repository hygiene: nothing machine-specific, downloaded or vendored is tracked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Built from pieces so that this file does not match itself.
MACHINE_PATHS = ["/" + "work/", "/" + "root/", "/" + "home/", "/" + "tmp/bash_jobs", "C:" + "\\Users"]
BINARY_SUFFIXES = {".so", ".whl", ".deb", ".exe", ".dll", ".dylib", ".a", ".o", ".pyc", ".stl", ".dae"}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in out.decode().split("\0") if name]


def test_no_paths_of_a_developers_machine():
    offenders = []
    for path in tracked_files():
        if not path.is_file() or path.suffix in {".safetensors", ".png", ".npz"}:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        offenders += [f"{path.relative_to(REPO)}: {p}" for p in MACHINE_PATHS if p in text]
    assert not offenders, "machine-specific paths in tracked files:\n" + "\n".join(offenders)


def test_no_downloaded_binaries_or_build_outputs():
    bad = [str(p.relative_to(REPO)) for p in tracked_files() if p.suffix in BINARY_SUFFIXES]
    bad += [
        str(p.relative_to(REPO))
        for p in tracked_files()
        if p.relative_to(REPO).parts[0] in {".venv", "build", "install", "log"}
    ]
    assert not bad, f"binaries or build outputs tracked: {bad}"


def test_tracked_files_are_small():
    big = [
        (str(p.relative_to(REPO)), p.stat().st_size)
        for p in tracked_files()
        if p.is_file() and p.stat().st_size > 25 * 1024 * 1024
    ]
    assert not big, f"files over 25 MB: {big}"


DOCS = ["real_cell.md", "architecture.md", "training.md", "experiments.md", "benchmarks.md", "troubleshooting.md"]


def test_readme_is_a_manual_and_the_docs_hold_the_rest():
    readme = (REPO / "README.md").read_text()
    assert len(readme.encode()) <= 20 * 1024, f"README.md is {len(readme.encode())} bytes; at most 20 KB"
    for name in DOCS:
        assert (REPO / "docs" / name).is_file(), name
        assert f"docs/{name}" in readme, f"README.md does not point to docs/{name}"
    assert "```mermaid" in readme, "the diagram of nodes, topics and actions"


def test_documents_tell_history_by_runs_dates_and_versions():
    """Not by how the work was organised (numbered work items, work periods)."""
    # Built from pieces so that this file does not match itself.
    phrases = ["ses" + "sion ", "ses" + "sions ", "iss" + "ue #", "tick" + "et #", "spr" + "int "]
    offenders = []
    for path in tracked_files():
        if path.suffix != ".md":
            continue
        text = path.read_text(encoding="utf-8").lower()
        offenders += [f"{path.relative_to(REPO)}: {p!r}" for p in phrases if p in text]
    assert not offenders, offenders
