"""Every dependency is pinned with its hashes, and the pins agree with what the code asks for.

The *.in files name what PayWave needs; `make lock` compiles each into its *.txt with
every transitive dependency pinned `==` and its sha256 hashes, so an install (and an
audit made elsewhere) gets exactly the files that were locked, or fails.
"""

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKED = sorted(ROOT.glob("requirements*.txt"))


def _entries(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (pinned version, hashes) of a compiled file."""
    text = path.read_text().replace("\\\n", " ")
    entries = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        spec, *options = line.split(" --hash=")
        requirement = Requirement(spec.strip())
        pins = [s for s in requirement.specifier if s.operator == "=="]
        assert len(pins) == 1, f"{path.name}: {spec} is not pinned with =="
        entries[canonicalize_name(requirement.name)] = (pins[0].version, options)
    return entries


def _wanted(path: Path) -> dict[str, str]:
    wanted = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            (pin,) = requirement.specifier
            wanted[canonicalize_name(requirement.name)] = pin.version
    return wanted


def test_every_locked_file_has_its_source() -> None:
    assert [p.name for p in LOCKED] == [
        "requirements-bench.txt",
        "requirements-dev.txt",
        "requirements-mutation.txt",
        "requirements-ops.txt",
        "requirements.txt",
    ]
    for path in LOCKED:
        assert path.with_suffix(".in").exists()


@pytest.mark.parametrize("path", LOCKED, ids=[p.name for p in LOCKED])
def test_every_dependency_is_pinned_with_hashes(path: Path) -> None:
    entries = _entries(path)

    assert entries
    for name, (_, hashes) in entries.items():
        assert hashes, f"{path.name}: {name} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h.strip()) for h in hashes), name


@pytest.mark.parametrize("path", LOCKED, ids=[p.name for p in LOCKED])
def test_the_lock_holds_what_its_source_asks_for(path: Path) -> None:
    """An edit to a *.in file without `make lock` fails here."""
    locked = _entries(path)

    for name, version in _wanted(path.with_suffix(".in")).items():
        assert locked.get(name, ("missing",))[0] == version, f"{path.name}: {name}"


def test_the_files_agree_on_every_shared_dependency() -> None:
    versions: dict[str, set[str]] = {}
    for path in LOCKED:
        for name, (version, _) in _entries(path).items():
            versions.setdefault(name, set()).add(version)

    assert {name: v for name, v in versions.items() if len(v) > 1} == {}
