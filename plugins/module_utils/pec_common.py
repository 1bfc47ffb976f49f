# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec, errors and version helpers shared by the sesdf.esus modules."""

from __future__ import annotations

import re


class PecError(Exception):
    """An expected failure, with a message that tells the operator what to do."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


def pec_argument_spec():
    """Options every module that talks to a PEC install accepts (see doc fragment sesdf.esus.pec)."""
    return dict(
        pec_root=dict(type="path", default="/opt/e-SUS"),
        pec_config_path=dict(type="path", default="/etc/pec.config"),
        app_service=dict(type="str", default="e-SUS-PEC.service"),
        db_service=dict(type="str", default="e-SUS-AB-PostgreSQL.service"),
        pg_bin_dir=dict(type="path"),
        db_host=dict(type="str"),
        db_port=dict(type="int"),
        db_name=dict(type="str"),
        db_user=dict(type="str"),
        db_password=dict(type="str", no_log=True),
        http_url=dict(type="str", default="http://127.0.0.1:8080"),
    )


_VERSION_RE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")


def version_tuple(version):
    """'4.5.2' -> (4, 5, 2). Trailing text ('4.5.2-SNAPSHOT') is ignored. None when not a version."""
    if version is None:
        return None
    match = _VERSION_RE.match(str(version))
    if not match:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def normalize_version(version):
    """'4.5.2-SNAPSHOT' -> '4.5.2', 'v4.5' -> '4.5'; None when not a version."""
    parts = version_tuple(version)
    return ".".join(str(p) for p in parts) if parts else None


def compare_versions(left, right):
    """-1, 0 or 1 like cmp(); missing components count as 0 (4.5 == 4.5.0)."""
    a, b = version_tuple(left), version_tuple(right)
    if a is None or b is None:
        raise PecError(f"cannot compare versions {left!r} and {right!r}: not a version number")
    width = max(len(a), len(b))
    a += (0,) * (width - len(a))
    b += (0,) * (width - len(b))
    return (a > b) - (a < b)
