"""Version arithmetic used to refuse downgrades and compare the PEC's version sources."""

from __future__ import annotations

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, compare_versions, version_tuple


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("4.2.8", "4.5.2", -1),
        ("4.5.2", "4.5.2", 0),
        ("4.5.10", "4.5.9", 1),
        ("4.5", "4.5.0", 0),
        ("5.0.8", "4.5.5", 1),
        ("4.5.2-SNAPSHOT", "4.5.2", 0),
    ],
)
def test_compare_versions(left, right, expected):
    assert compare_versions(left, right) == expected


def test_version_tuple_rejects_text():
    assert version_tuple("desconhecida") is None
    assert version_tuple(None) is None
    with pytest.raises(PecError, match="not a version"):
        compare_versions("x", "4.5.2")
