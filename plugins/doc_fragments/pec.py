# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by every sesdf.esus module that talks to a PEC e-SUS install."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  action_group:
    description: Use C(group/sesdf.esus.pec) in C(module_defaults) to set the PEC options of every such module at once.
    support: full
    membership:
      - sesdf.esus.pec
options:
  pec_root:
    description:
      - Install directory of the PEC e-SUS APS.
    type: path
    default: /opt/e-SUS
  pec_config_path:
    description:
      - JSON file the PEC installer writes with the installed version (seen on 5.3; unconfirmed for 4.5.2).
    type: path
    default: /etc/pec.config
  app_service:
    description:
      - systemd unit of the PEC application (unconfirmed for 4.5.2).
    type: str
    default: e-SUS-PEC.service
  db_service:
    description:
      - systemd unit of the PEC's own PostgreSQL (unconfirmed for 4.5.2).
    type: str
    default: e-SUS-AB-PostgreSQL.service
  pg_bin_dir:
    description:
      - Directory with the PEC's PostgreSQL client tools (C(psql), C(pg_dump), C(pg_restore)).
      - When not set, the first C(database/postgresql-*/bin) under O(pec_root) is used.
    type: path
  db_host:
    description:
      - Database host. When not set, read from C(spring.datasource.url) in the PEC's C(application.properties).
    type: str
  db_port:
    description:
      - Database port. When not set, read from the install (the PEC uses 5433).
    type: int
  db_name:
    description:
      - Database name. When not set, read from the install (C(esus)).
    type: str
  db_user:
    description:
      - Database user. When not set, C(spring.datasource.username) from the install.
    type: str
  db_password:
    description:
      - Database password. When not set, C(spring.datasource.password) from the install.
      - It is handed to the client tools through a private C(PGPASSFILE), never on a command line.
    type: str
  http_url:
    description:
      - Base URL of the PEC application, as seen from the server itself.
    type: str
    default: http://127.0.0.1:8080
notes:
  - Names marked unconfirmed for 4.5.2 come from 5.x installs; override them when a 4.5.2 server differs.
"""
