"""What the verifiers read on a lab host, in one place: shell, SQL, JSON files, data fingerprints, profiles.

Every helper takes a testinfra ``host`` or a container name and goes through ``podman exec`` (the lab's hosts
are podman containers named as in the inventory; the Ansible backend costs seconds per command). SQL runs as
the database superuser over the PEC database's local socket: the verifiers read what the PEC holds, they never
need the PEC's own password.

Importable from every scenario's tests (the base Molecule config puts molecule/shared on PYTHONPATH):
    from labhost import sh, sql, read_json, fingerprint, not_view_only
"""

from __future__ import annotations

import json
import subprocess

PG_BIN = "$(ls -d /opt/e-SUS/database/postgresql-*/bin | head -1)"
PSQL = f"runuser -u postgres -- {PG_BIN}/psql -h /var/run/postgresql -p 5433 -X -q -A -t -F '|' -v ON_ERROR_STOP=1"
VIEW_ONLY_PROFILE = "Visualização de prontuário"
PEC_PROPERTIES = "/opt/e-SUS/webserver/config/application.properties"

# tb_lotacao -> tb_ator_papel -> tb_prof -> tb_usuario, with each lotação's profiles (the PEC's identity chain)
_LOTACAO_PROFILES = (
    "SELECT u.ds_login, coalesce(string_agg(pf.no_perfil, ',' ORDER BY pf.no_perfil), '') FROM tb_lotacao l"
    " JOIN tb_ator_papel ap ON ap.co_seq_ator_papel = l.co_ator_papel JOIN tb_prof p ON p.co_seq_prof = ap.co_prof"
    " JOIN tb_usuario u ON u.co_seq_usuario = p.co_usuario"
    " LEFT JOIN rl_ator_papel_perfil r ON r.co_ator_papel = l.co_ator_papel"
    " LEFT JOIN tb_perfil pf ON pf.co_seq_perfil = r.co_perfil GROUP BY l.co_ator_papel, u.ds_login"
    " ORDER BY u.ds_login"
)


def name_of(target):
    """The container name of a testinfra host (its inventory name) or of a ``podman://name`` string."""
    if isinstance(target, str):
        return target.removeprefix("podman://")
    return target.backend.get_hostname()


def run(target, script, stdin=None):
    """Run a bash script as root on the host; the CompletedProcess (rc, stdout, stderr), never raises."""
    return subprocess.run(
        ["podman", "exec", "-i", name_of(target), "bash", "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def sh(target, script, stdin=None):
    """Run a bash script as root on the host and return its stdout without the trailing newline.

    A non-zero exit fails the test with the script and its stderr.
    """
    proc = run(target, script, stdin)
    assert proc.returncode == 0, f"{name_of(target)}: {script!r} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout.rstrip("\n")


def sql(target, query, db="esus"):
    """One or more SQL statements (stdin, never argv quoting), the output as '|'-separated text lines."""
    query = query.strip()
    if not query.endswith(";"):
        query += ";"
    return sh(target, f"{PSQL} -d {db}", stdin=query + "\n").strip()


def sql_rows(target, query, db="esus"):
    """The rows of a query as lists of column texts."""
    return [line.split("|") for line in sql(target, query, db).splitlines() if line]


def read_json(target, path):
    return json.loads(sh(target, f"cat {path}"))


def pec_app_password(target):
    """The PEC's database password (the canary the tests look for where it must never appear)."""
    return sh(target, f"sed -n 's/^spring.datasource.password=//p' {PEC_PROPERTIES}")


def fingerprint(target, tables, db="esus"):
    """{table: 'count:md5'} over every row of each table, ordered, so any changed, lost or added row shows."""
    queries = "\n".join(
        f"SELECT '{table}', count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))"  # noqa: S608
        f" FROM {table} x;"
        for table in tables
    )
    return dict(sql_rows(target, queries, db))


def lotacao_profiles(target, db="esus"):
    """[(login, 'profile,profile')] for every lotação of the PEC, one pair per lotação."""
    return [tuple(row) for row in sql_rows(target, _LOTACAO_PROFILES, db)]


def not_view_only(target, view_profile=VIEW_ONLY_PROFILE, db="esus"):
    """The lotações whose profiles are anything but exactly the view-only one: [(login, profiles)]."""
    return [(login, profiles) for login, profiles in lotacao_profiles(target, db) if profiles != view_profile]


def patient_data_now(target, snapshot_path, db="esus"):
    """(before, now): the prepare-time patient-data fingerprint (shared/tasks/patient_snapshot.yml) and the
    same lines recomputed now on the columns recorded then. Equal lists mean no record was lost or changed."""
    before = sh(target, f"cat {snapshot_path}").splitlines()
    queries = []
    for line in before:
        table, cols = line.split("|")[:2]
        queries.append(
            f"SELECT '{table}', '{cols}', count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), ''))"  # noqa: S608
            f" FROM (SELECT ({cols})::text AS r FROM {table}) s;"
        )
    return before, sql(target, "\n".join(queries), db).splitlines()
