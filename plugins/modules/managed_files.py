#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: managed_files
short_description: Directories, whole files, permissions and configuration lines of many paths in one call
version_added: 0.3.0
description:
  - Applies a list of entries in order, on the server, in one module execution. Each entry is a directory, a whole
    file (its content), the owner, group and mode of a path that may exist, or lines of a configuration file.
  - It does what a loop over M(ansible.builtin.file), M(ansible.builtin.copy) with
    O(ansible.builtin.copy#module:content) and M(ansible.builtin.lineinfile) does, without one remote execution
    per item (two for C(copy)). It returns one result per entry, shaped as a loop's result, so code that read a
    loop's C(results) reads these.
  - A whole file is written under a temporary name in its directory, with its owner, group and mode, and renamed
    over the final name; a failed write leaves the old file whole.
  - An entry that fails is reported in its result, the following entries still run, and the task fails at the end,
    as a loop does.
  - Symbolic links are not followed; an entry on a link fails.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Writes nothing. An entry sees what the earlier entries would have created or written.
  diff_mode:
    support: full
    details: One diff per changed entry (the file's text, or owner, group and mode), as a loop returns them.
options:
  entries:
    description:
      - What to apply, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description:
          - The path the entry is about.
        type: path
        required: true
      state:
        description:
          - V(directory) creates the directory (and missing parents) and sets its owner, group and mode.
          - V(file) makes the file hold exactly O(entries[].content); its directory must exist (or be created by
            an earlier entry).
          - V(attributes) sets the owner, group and mode of a path that exists; a missing path is skipped, or fails
            with O(entries[].missing=fail).
          - V(lines) applies O(entries[].lines) to a regular file that exists.
        type: str
        required: true
        choices: [directory, file, attributes, lines]
      owner:
        description:
          - User name that owns the path. Unset keeps the current one (a new file or directory gets the module's
            user).
        type: str
      group:
        description:
          - Group name of the path. Unset keeps the current one.
        type: str
      mode:
        description:
          - Octal mode, as a string (V('0644')). Unset keeps the current one; a new file gets V('0644'), a new
            directory V('0755').
        type: str
      content:
        description:
          - The whole text of the file, for O(entries[].state=file).
        type: str
      lines:
        description:
          - For O(entries[].state=lines), applied in order, as M(ansible.builtin.lineinfile) with
            C(state=present) does. The last line that matches O(entries[].lines[].regexp) becomes
            O(entries[].lines[].line). When none matches and the line is not already in the file, it is
            appended.
        type: list
        elements: dict
        suboptions:
          regexp:
            description: Python regular expression searched in each line.
            type: str
            required: true
          line:
            description: The line the file must have.
            type: str
            required: true
      missing:
        description:
          - For O(entries[].state=attributes), what a missing path does.
        type: str
        choices: [skip, fail]
        default: skip
      item:
        description:
          - Anything the caller wants back in this entry's result as RV(results[].item), as a loop gives back its
            item. Defaults to the path.
        type: raw
notes:
  - Owner and group are names, resolved on the server; an unknown one fails that entry.
  - The content of a file reaches the task's result only in diff mode; still, set C(no_log) on a task that
    writes a secret.
seealso:
  - module: ansible.builtin.file
  - module: ansible.builtin.copy
  - module: ansible.builtin.lineinfile
"""

EXAMPLES = r"""
- name: Core dumps restricted (one call for the directory and its two files)
  sesdf.esus.managed_files:
    entries:
      - {path: /etc/systemd/coredump.conf.d, state: directory, owner: root, group: root, mode: "0755"}
      - path: /etc/systemd/coredump.conf.d/60-sesdf-cis.conf
        state: file
        owner: root
        group: root
        mode: "0644"
        content: |
          [Coredump]
          Storage=none
          ProcessSizeMax=0

- name: Password aging of new accounts, one result per setting
  sesdf.esus.managed_files:
    entries:
      - path: /etc/login.defs
        state: lines
        lines: [{regexp: '^\s*#?\s*PASS_MAX_DAYS\s', line: "PASS_MAX_DAYS\t365"}]
        item: {cis: 5.4.1.1}
      - path: /etc/login.defs
        state: lines
        lines: [{regexp: '^\s*#?\s*PASS_MIN_DAYS\s', line: "PASS_MIN_DAYS\t1"}]
        item: {cis: 5.4.1.2}
  register: login_defs

- name: Account files root-owned, wherever they exist
  sesdf.esus.managed_files:
    entries:
      - {path: /etc/passwd, state: attributes, owner: root, group: root, mode: "0644"}
      - {path: /etc/shadow, state: attributes, owner: root, group: shadow, mode: "0640"}
      - {path: /etc/security/opasswd, state: attributes, owner: root, group: root, mode: "0600"}
"""

RETURN = r"""
check_mode:
  description:
    - Whether this run only said what it would do (check mode, also when a task or an including task sets
      C(check_mode), which C(ansible_check_mode) does not show); the next tasks can then skip what needs the files.
  returned: always
  type: bool
  sample: false
results:
  description: One result per entry, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The entry's path, normalized.
      type: str
    state:
      description: The entry's state.
      type: str
    changed:
      description: Whether the entry changed the path (or would, in check mode).
      type: bool
    failed:
      description: Whether the entry failed; RV(results[].msg) says why and what to do.
      type: bool
    skipped:
      description: A missing path of a V(attributes) entry with O(entries[].missing=skip).
      type: bool
    msg:
      description: Why the entry failed or was skipped; empty otherwise.
      type: str
    item:
      description: The entry's O(entries[].item), or its path.
      type: raw
    diff:
      description:
        - Before and after of a changed entry. For attributes and directories, C(owner:group mode), always;
          for a whole file or lines, the text, only in diff mode (the task's own C(diff), shown with
          C(--diff), gathers them all).
      type: dict
      returned: when the entry changed
  sample:
    - {path: /etc/shadow, state: attributes, changed: true, failed: false, skipped: false, msg: "",
       item: /etc/shadow, diff: {before: "root:root 0644\n", after: "root:shadow 0640\n"}}
failed_entries:
  description: The paths of the entries that failed.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.managed_files import STATES, apply_entries

LINE_SPEC = dict(regexp=dict(type="str", required=True), line=dict(type="str", required=True))
ENTRY_SPEC = dict(
    path=dict(type="path", required=True),
    state=dict(type="str", required=True, choices=list(STATES)),
    owner=dict(type="str"),
    group=dict(type="str"),
    mode=dict(type="str"),
    content=dict(type="str"),
    lines=dict(type="list", elements="dict", options=LINE_SPEC),
    missing=dict(type="str", choices=["skip", "fail"], default="skip"),
    item=dict(type="raw"),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(entries=dict(type="list", elements="dict", required=True, options=ENTRY_SPEC)),
        supports_check_mode=True,
    )
    results = apply_entries(module.params["entries"], check_mode=module.check_mode)
    failed = [r["path"] for r in results if r["failed"]]
    out = {
        "changed": any(r["changed"] for r in results),
        "results": results,
        "failed_entries": failed,
        "check_mode": module.check_mode,
    }
    if module._diff:
        out["diff"] = [r["diff"] for r in results if r.get("diff")]
    else:  # a file's text is returned only when asked for (--diff)
        for r in results:
            if r["state"] in ("file", "lines"):
                r.pop("diff", None)
    if failed:
        module.fail_json(msg="; ".join(r["msg"] for r in results if r["failed"]), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
