"""The regions' execution environment: the build context `make ee` writes offline (ansible-builder create into
build/ee) lists exactly sesdf.esus and its dependencies, and the collection declares its own EE needs
(meta/execution-environment.yml) so that `ansible-builder introspect` finds them."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CONTEXT = REPO / "build" / "ee"
COLLECTIONS = REPO / "build" / "collections"


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def galaxy() -> dict:
    return yaml.safe_load((REPO / "galaxy.yml").read_text())


@pytest.fixture(scope="module")
def context() -> Path:
    if not (CONTEXT / "Containerfile").is_file():
        pytest.fail("no build context in build/ee: run `make ee` (ansible-builder create, offline)")
    return CONTEXT


@pytest.fixture(scope="module")
def introspected() -> dict:
    """What ansible-builder finds in the collection tree (build/collections links to this checkout)."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-builder"), "introspect", "--sanitize", str(COLLECTIONS)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return yaml.safe_load(out[out.index("---") :])


def test_meta_declares_existing_files():
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    for kind in ("python", "system"):
        assert (REPO / meta["dependencies"][kind]).is_file(), kind


def test_introspection_finds_exactly_the_collections_needs(introspected):
    suffix = "  # from collection sesdf.esus"
    assert introspected["python"] == [r + suffix for r in _lines(REPO / "meta" / "requirements.txt")]
    assert introspected["system"] == [r + suffix for r in _lines(REPO / "meta" / "bindep.txt")]


def test_context_collections_are_the_collection_and_its_dependencies(context, galaxy):
    reqs = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    tarball = f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    own = [c for c in reqs if c.get("type") == "file"]
    assert own == [{"name": f"/build/collections/{tarball}", "type": "file"}]
    deps = {c["name"]: c["version"] for c in reqs if c.get("type") != "file"}
    assert deps == galaxy["dependencies"]


def test_context_ships_the_collection_with_its_ee_metadata(context, galaxy):
    tarball = context / "_build" / "collections" / f"sesdf-esus-{galaxy['version']}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert {"meta/execution-environment.yml", "meta/requirements.txt", "meta/bindep.txt"} <= names
    # what the build context is made from stays out of the collection
    assert not {n for n in names if n.split("/")[0] in ("ee", "runner", "awx", "build")}


def test_containerfile_pins_ansible_as_the_lock_and_has_a_default_base(context):
    containerfile = (context / "Containerfile").read_text()
    lock = dict(ln.split("==", 1) for ln in _lines(REPO / "requirements.txt") if "==" in ln)
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile, re.M).group(1).split()
    assert refs == [f"ansible-core=={lock['ansible-core']}", f"ansible-runner=={lock['ansible-runner']}"]
    assert re.search(r'^ARG EE_BASE_IMAGE="[^"]+"', containerfile, re.M)
    assert "COPY _build/configs/ansible.cfg /etc/ansible/ansible.cfg" in containerfile
