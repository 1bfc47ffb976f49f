# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many small files in one module call: directories, whole files, owner/group/mode of existing files, and
lines of configuration files.

A role that looped ``ansible.builtin.file``, ``copy`` and ``lineinfile`` over a list paid one remote module
execution per item (``copy``: two). :func:`apply_entries` does the same work on the server in one process and
returns one result per entry, shaped as a loop's result (``changed``, ``failed``, ``skipped``, ``msg``, ``item``),
so what registered a loop's ``results`` reads this one's unchanged.

Entries run in order. In check mode nothing is written, and what an earlier entry would have created or
written is what a later one sees (a file in a directory the run would create, two line entries of one file).
Whole files are written with :func:`_fsutil.atomic_write` (owner and group set before the rename): the old file
stays whole when a write fails.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat

from ansible_collections.sesdf.esus.plugins.module_utils import _fsutil
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

STATES = ("directory", "file", "attributes", "lines")
MODE_RE = re.compile(r"^0?[0-7]{3}$")


def parse_mode(mode):
    """An octal mode string ('0644', '644') as an int; None stays None."""
    if mode is None:
        return None
    text = str(mode)
    if not MODE_RE.match(text):
        raise PecError(f"mode {text!r} is not an octal mode such as '0644'")
    return int(text, 8)


def _uid(owner):
    if owner is None:
        return None
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise PecError(f"there is no user {owner!r} on this server") from None


def _gid(group):
    if group is None:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise PecError(f"there is no group {group!r} on this server") from None


def _name_of(uid, gid):
    try:
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        owner = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return owner, group


def describe(st):
    """'owner:group 0644' of a stat result: what a diff shows of a path's attributes."""
    owner, group = _name_of(st.st_uid, st.st_gid)
    return f"{owner}:{group} {stat.S_IMODE(st.st_mode):04o}"


def set_lines(text, pairs):
    """``text`` with each (regexp, line) applied as ``lineinfile`` does with ``state: present``: the last line
    matching ``regexp`` becomes ``line``; when none matches and ``line`` is not already there, ``line`` is
    appended. Returns the new text."""
    lines = text.splitlines()
    for regexp, line in pairs:
        pattern = re.compile(regexp)
        matches = [i for i, current in enumerate(lines) if pattern.search(current)]
        if matches:
            lines[matches[-1]] = line
        elif line not in lines:
            lines.append(line)
    new = "\n".join(lines)
    return new + "\n" if lines else new


class _Run:
    """One call: the entries' results and what check mode would have made of the file system."""

    def __init__(self, check_mode):
        self.check_mode = check_mode
        self.planned_dirs = set()
        self.planned_text = {}

    # -- what the run sees of the file system (the real one, or the one check mode would leave)
    def exists(self, path):
        return os.path.lexists(path) or path in self.planned_dirs or path in self.planned_text

    def is_dir(self, path):
        return os.path.isdir(path) or path in self.planned_dirs

    def read_text(self, path):
        if path in self.planned_text:
            return self.planned_text[path]
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()

    # -- owner, group, mode of a path that exists (or would)
    def attributes(self, path, uid, gid, mode, entry_diff):
        if not os.path.lexists(path):  # created by this check-mode run: the creation is the change
            return True
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise PecError(f"{path} is a symbolic link; this module does not follow links: point it at the target")
        want_uid = st.st_uid if uid is None else uid
        want_gid = st.st_gid if gid is None else gid
        want_mode = stat.S_IMODE(st.st_mode) if mode is None else mode
        if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (want_uid, want_gid, want_mode):
            return False
        owner, group = _name_of(want_uid, want_gid)
        entry_diff.setdefault("before", describe(st) + "\n")
        entry_diff.setdefault("after", f"{owner}:{group} {want_mode:04o}\n")
        if not self.check_mode:
            if (st.st_uid, st.st_gid) != (want_uid, want_gid):
                os.lchown(path, want_uid, want_gid)
            os.chmod(path, want_mode)
        return True

    # -- one entry
    def apply(self, entry):
        path = os.path.normpath(entry["path"])
        state = entry["state"]
        uid, gid, mode = _uid(entry.get("owner")), _gid(entry.get("group")), parse_mode(entry.get("mode"))
        diff = {"before_header": path, "after_header": path}
        result = {"path": path, "state": state, "changed": False, "failed": False, "skipped": False, "msg": ""}
        if state == "directory":
            changed = self._directory(path, uid, gid, mode, diff)
        elif state == "file":
            changed = self._file(path, entry.get("content"), uid, gid, mode, diff)
        elif state == "attributes":
            if not self.exists(path):
                if entry.get("missing", "skip") == "fail":
                    raise PecError(f"{path} does not exist; create it, or set missing: skip")
                result.update(skipped=True, msg=f"{path} does not exist: nothing to do")
                return result
            changed = self.attributes(path, uid, gid, mode, diff)
        else:
            changed = self._lines(path, entry.get("lines") or [], uid, gid, mode, diff)
        result["changed"] = changed
        if changed:
            result["diff"] = diff
        return result

    def _directory(self, path, uid, gid, mode, diff):
        if self.is_dir(path):
            return self.attributes(path, uid, gid, mode, diff)
        if os.path.lexists(path):
            raise PecError(f"{path} exists and is not a directory; move it away and run again")
        diff.update(before="(absent)\n", after=f"directory {format(0o755 if mode is None else mode, '04o')}\n")
        if self.check_mode:
            self.planned_dirs.add(path)
            return True
        # each missing directory, the parents included, gets the entry's owner, group and mode (as
        # ansible.builtin.file does), whatever the umask
        missing = []
        current = path
        while not os.path.isdir(current):
            missing.append(current)
            current = os.path.dirname(current)
        for directory in reversed(missing):
            os.mkdir(directory, 0o700)
            if uid is not None or gid is not None:
                os.chown(directory, -1 if uid is None else uid, -1 if gid is None else gid)
            os.chmod(directory, 0o755 if mode is None else mode)
        return True

    def _parent_ready(self, path):
        parent = os.path.dirname(path) or "."
        if not self.is_dir(parent):
            raise PecError(f"the directory of {path} does not exist; create it first (an entry with state: directory)")

    def _write(self, path, text, uid, gid, mode):
        """Write ``text`` under ``path`` (or plan it, in check mode); a new file gets 0644 unless ``mode``."""
        if self.check_mode:
            self.planned_text[path] = text
            return
        if os.path.exists(path):  # what the entry leaves unset stays as the file has it
            st = os.stat(path)
            mode = stat.S_IMODE(st.st_mode) if mode is None else mode
            uid = st.st_uid if uid is None else uid
            gid = st.st_gid if gid is None else gid
        # bytes that were not UTF-8 in the file read go back as they were (surrogateescape, as read_text reads)
        data = text.encode("utf-8", "surrogateescape")
        _fsutil.atomic_write(path, data, mode=0o644 if mode is None else mode, uid=uid, gid=gid)

    def _file(self, path, content, uid, gid, mode, diff):
        if content is None:
            raise PecError(f"{path}: state file needs content")
        self._parent_ready(path)
        if self.exists(path) and not self.is_regular(path):
            raise PecError(f"{path} exists and is not a regular file; move it away and run again")
        before = self.read_text(path) if self.exists(path) else None
        if before == content:
            return self.attributes(path, uid, gid, mode, diff)
        diff.update(before="" if before is None else before, after=content)
        self._write(path, content, uid, gid, mode)
        return True

    def is_regular(self, path):
        return path in self.planned_text or (os.path.isfile(path) and not os.path.islink(path))

    def _lines(self, path, lines, uid, gid, mode, diff):
        if not self.exists(path):
            raise PecError(f"{path} does not exist; install the package that provides it, or create it")
        if not self.is_regular(path):
            raise PecError(f"{path} is not a regular file; this module edits regular files only")
        before = self.read_text(path)
        after = set_lines(before, [(p["regexp"], p["line"]) for p in lines])
        if after == before:
            return self.attributes(path, uid, gid, mode, diff)
        diff.update(before=before, after=after)
        self._write(path, after, uid, gid, mode)
        return True


def apply_entries(entries, check_mode=False):
    """Apply ``entries`` in order; returns one result per entry. An entry that fails (a missing user, a missing
    directory, a file system error) is recorded failed with its message and the next entries still run, as in a
    loop; the caller fails the task when any failed."""
    run = _Run(check_mode)
    results = []
    for entry in entries:
        try:
            result = run.apply(entry)
        except PecError as exc:
            result = _failed(entry, exc.msg)
        except OSError as exc:
            result = _failed(entry, f"{entry['path']}: {exc.strerror or exc}; nothing was lost, fix it and run again")
        result["item"] = entry.get("item") if entry.get("item") is not None else entry["path"]
        results.append(result)
    return results


def _failed(entry, msg):
    return {
        "path": entry["path"],
        "state": entry["state"],
        "changed": False,
        "failed": True,
        "skipped": False,
        "msg": msg,
    }
