# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every sesdf.esus module documents: what each one means, stated once.

A module lists C(sesdf.esus.attributes) (and C(sesdf.esus.attributes.platform)) in its
C(extends_documentation_fragment) and states under C(attributes) only its own C(support) (and C(details)) of
C(check_mode) and C(diff_mode).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Runs in C(check_mode), predicting C(changed) without modifying the target.
  diff_mode:
    description: Returns details on what has changed (or would change, in C(check_mode)) when in diff mode.
"""

    # Every module of the collection runs on POSIX hosts (the UBS servers, Debian family, or the control node).
    PLATFORM = r"""
options: {}
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""
