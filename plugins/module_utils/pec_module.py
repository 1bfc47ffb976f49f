# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The prologue every database module shares: read the install, open the PEC's database, turn an expected
failure (PecError) into ``fail_json`` with the queries run so far."""

from __future__ import annotations

import contextlib

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall


class PecSession:
    """What the body of :func:`pec_database` gets: the install, its connection, the client, executed queries."""

    def __init__(self, install, conn, client):
        self.install = install
        self.conn = conn
        self.client = client

    @property
    def executed_queries(self):
        return self.client.executed_queries if self.client else []


@contextlib.contextmanager
def pec_database(module, timeout=60, failure=None):
    """``with pec_database(module) as pec: ... pec.client.query(...)``.

    A PecError raised while opening the install or the database, or in the body, ends the module with
    ``fail_json(msg, executed_queries, **details)``; ``failure`` (a dict, or a callable taking the PecError and
    returning the fields to use instead of its details) adds fields to that failure.
    """
    session = PecSession(None, None, None)
    try:
        session.install = PecInstall(module.params)
        session.conn = session.install.connection()
        with PgClient(session.install.pg_bin_dir(), session.conn, timeout=timeout) as client:
            session.client = client
            yield session
    except PecError as exc:
        fields = failure(exc) if callable(failure) else {**exc.details, **(failure or {})}
        module.fail_json(msg=exc.msg, executed_queries=session.executed_queries, **fields)
