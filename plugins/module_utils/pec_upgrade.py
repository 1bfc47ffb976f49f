# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upgrade of a PEC e-SUS install: the plan (upgrade, current, refuse), preflight gates and the installer run.

Pure decisions live in functions that take plain values, so pytest tests them without a server.
"""

from __future__ import annotations

import hashlib
import locale as _locale
import os
import re
import shutil
import subprocess

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, compare_versions, version_tuple
from ansible_collections.sesdf.esus.plugins.module_utils.pec_host import existing_parent

DECISION_UPGRADE = "upgrade"
DECISION_CURRENT = "current"
DECISION_REFUSE = "refuse"

_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_SECRET_FLAG_RE = re.compile(r"^-{1,2}(password|senha|pass)\b", re.IGNORECASE)


def normalize_version(version):
    parts = version_tuple(version)
    return ".".join(str(p) for p in parts) if parts else None


def plan(installed, target):
    """What to do to go from the installed version to the target: (decision, message)."""
    if installed is None:
        return DECISION_REFUSE, "no PEC e-SUS install found on this host: nothing to upgrade (install the PEC first)"
    if version_tuple(target) is None:
        raise PecError(f"target version {target!r} is not a version number (e.g. 4.5.2)")
    if version_tuple(installed) is None:
        return DECISION_REFUSE, (
            f"installed PEC version {installed!r} is not a version number: check /etc/pec.config and the database "
            "(an interrupted install?) before upgrading"
        )
    cmp = compare_versions(installed, target)
    if cmp == 0:
        return DECISION_CURRENT, f"PEC already at {normalize_version(target)}: nothing to do"
    if cmp > 0:
        return DECISION_REFUSE, (
            f"installed PEC {normalize_version(installed)} is newer than the target {normalize_version(target)}: "
            "a downgrade is never done; raise upgrade_target_version or leave this server alone"
        )
    return DECISION_UPGRADE, f"PEC {normalize_version(installed)} will be upgraded to {normalize_version(target)}"


def installed_version(config_version, db_version):
    """The installed version as the installer config and the database see it.

    Both must agree when both are known: when they differ, an earlier update was interrupted and an upgrade
    on top of it is refused (the returned message says so)."""
    cfg, db = normalize_version(config_version), normalize_version(db_version)
    if cfg and db and cfg != db:
        return None, (
            f"/etc/pec.config says {cfg} but the database says {db}: an earlier update was probably interrupted; "
            "fix or restore this server by hand before upgrading"
        )
    return cfg or db, None


def check_flags(flags):
    """Installer flags: a list of strings without any secret. Raises PecError otherwise."""
    for flag in flags:
        if _SECRET_FLAG_RE.match(str(flag)) or "password=" in str(flag).lower():
            raise PecError(
                "upgrade_installer_flags must not carry a password: it would be visible in the process list and logs. "
                "The installer reads the database credentials from the existing install in update mode"
            )
    return [str(f) for f in flags]


def check_sha256(expected):
    if not expected or not _SHA256_RE.match(str(expected).strip()):
        raise PecError(
            "a SHA-256 checksum of the installer is required (upgrade_installer_sha256, 64 hex digits): "
            "take it from the SHA256SUMS published with the installer in the CTINF shared folder"
        )
    return str(expected).strip().lower()


def file_sha256(path, chunk=1024 * 1024):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def installer_status(path, expected_sha256):
    """Installer jar on the server: exists, size, sha256 and whether it matches. Never raises for a bad file."""
    result = {
        "path": path,
        "exists": False,
        "size_bytes": None,
        "sha256": None,
        "expected_sha256": expected_sha256,
        "matches": False,
    }
    if not path or not os.path.isfile(path):
        return result
    result["exists"] = True
    result["size_bytes"] = os.path.getsize(path)
    try:
        result["sha256"] = file_sha256(path)
    except OSError as exc:
        result["error"] = f"cannot read {path}: {exc}"
        return result
    result["matches"] = result["sha256"] == expected_sha256
    return result


def tree_size(root, exclude_dirs=()):
    """Bytes under root, not following symlinks, skipping the excluded directories (absolute paths)."""
    excluded = {os.path.realpath(d) for d in exclude_dirs}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [
            d
            for d in dirnames
            if os.path.realpath(os.path.join(dirpath, d)) not in excluded
            and not os.path.islink(os.path.join(dirpath, d))
        ]
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += st.st_size
    return total


def disk_needs(needs, margin_bytes, statvfs=os.statvfs, stat=os.stat):
    """needs: list of (purpose, path, bytes). Adds them up per file system and compares with its free space.

    Returns (filesystems, problems): one entry per file system with what it must hold and what it has."""
    by_dev = {}
    for purpose, path, size in needs:
        probe = existing_parent(path)
        dev = stat(probe).st_dev
        entry = by_dev.get(dev)
        if entry is None:
            st = statvfs(probe)
            entry = {
                "measured_at": probe,
                "free_bytes": st.f_bavail * st.f_frsize,
                "required_bytes": margin_bytes,
                "needs": [],
            }
            by_dev[dev] = entry
        entry["required_bytes"] += int(size or 0)
        entry["needs"].append({"purpose": purpose, "path": path, "bytes": int(size or 0)})
    problems = []
    for entry in by_dev.values():
        if entry["free_bytes"] < entry["required_bytes"]:
            what = ", ".join(f"{n['purpose']} {human(n['bytes'])} at {n['path']}" for n in entry["needs"])
            problems.append(
                f"not enough free disk on the file system of {entry['measured_at']}: "
                f"{human(entry['free_bytes'])} free, "
                f"{human(entry['required_bytes'])} needed ({what}, plus a margin of {human(margin_bytes)}); "
                "free space (old logs, old backups copied off-host) or point the backup/staging directories elsewhere"
            )
    return list(by_dev.values()), problems


def human(size):
    size = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def locale_available(name, runner=None):
    """Whether a locale (e.g. pt_BR.UTF-8) is installed, compared the way glibc normalizes names."""

    def norm(value):
        lang, _dot, charset = value.partition(".")
        return lang + "." + charset.lower().replace("-", "") if charset else lang

    runner = runner or (
        lambda: subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=30, check=False).stdout
    )
    try:
        available = runner().split()
    except (OSError, subprocess.TimeoutExpired):
        try:
            _locale.setlocale(_locale.LC_ALL, name)
            return True
        except _locale.Error:
            return False
    return norm(name) in {norm(a) for a in available}


def find_java(java_bin=None, jre_directory=None, which=shutil.which):
    """The java executable that will launch the installer: the configured one, the system one, the PEC's JRE."""
    candidates = []
    if java_bin:
        candidates.append(java_bin)
    found = which("java")
    if found:
        candidates.append(found)
    if jre_directory:
        candidates.append(os.path.join(jre_directory, "bin", "java"))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def tail(text, lines=40):
    parts = (text or "").rstrip().splitlines()
    return parts[-lines:]


def run_installer(java, installer, flags, cwd, timeout):
    """Run the installer in update mode with no stdin (it must not wait for a prompt). Returns (rc, output)."""
    cmd = [java, "-jar", installer, *check_flags(flags)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LANG", "pt_BR.UTF-8")
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise PecError(
            f"the installer did not finish within {timeout}s (it may be waiting for a prompt: check "
            "upgrade_installer_flags); last output: " + " | ".join(tail(out, 10)),
            rc=None,
            cmd=cmd,
            stdout_lines=tail(out),
        ) from exc
    except OSError as exc:
        raise PecError(f"cannot run {java}: {exc}; install a Java runtime (upgrade_jre_package)") from exc
    return proc.returncode, proc.stdout, cmd
