"""Hand-made UBS for the report tests: what the control node knows about each one (host variables)."""

from __future__ import annotations

import copy
import datetime
import os

from ansible_collections.sesdf.esus.plugins.module_utils import report_history

TODAY = datetime.date(2026, 12, 1)
MONTHS = ["2025-12"] + [f"2026-{m:02d}" for m in range(1, 12)]


def _state(produced="2026-11-30T03:00:00Z", stale=False, **data):
    return {
        "present": True,
        "produced_at": produced,
        "age_hours": 24.0,
        "cadence_hours": 168,
        "stale": stale,
        "data": data,
    }


def healthy_pec(version="4.5.2"):
    return {
        "installed": True,
        "role": "local_server",
        "version": {"config": version, "database": version, "http": version, "agree": True, "consensus": version},
        "services": {"app": {"active_state": "active"}, "database": {"active_state": "active"}},
        "database": {"reachable": True, "size_bytes": 123456789},
        "backup_status": {
            "last_success": "2026-11-30T02:00:00Z",
            "verified": True,
            "check": "ok",
            "age_hours": 14.5,
            "offhost": {
                "state": "ok",
                "method": "borg_ssh",
                "last_success": "2026-11-30T02:30:00Z",
                "pending_days": 0,
                "escrow": {"escrowed": True, "sources": ["vault_export"], "key_in_vault_export": True},
            },
            "repo_check": {"result": "ok", "checked_at": "2026-11-29T04:00:00Z"},
            "restore_drill": {
                "result": "ok",
                "finished_at": "2026-11-15T05:00:00Z",
                "duration_s": 900,
                "hashes_compared": True,
            },
        },
        "migration": None,
        "capabilities": {"create_lotes": {"supported": True, "missing": [], "manual": "Exportar > Lotes"}},
        "problems": [],
        "state": {
            "hardening": _state(
                mode="enforce",
                summary={"pass": 42, "fail": 0, "not_verifiable_here": 0},
                failed=[],
                not_verifiable_here=[],
                findings=[],
            ),
            # the maintenance job's own layout (no envelope): its date is finished_at
            "maintenance": _state(
                result="ok",
                started_at="2026-11-30T02:30:00-03:00",
                finished_at="2026-11-30T02:35:00-03:00",
                steps={"disk": {"status": "ok"}, "logrotate": {"status": "ok", "detail": "pec.log rotacionado"}},
            ),
            "cnes": _state(last_import={"date": "2026-11-29T06:00:00Z", "method": "api", "file": "XmlParaESUS31.zip"}),
            "profiles": _state(mismatches=0, items=[]),
            "lotes": _state(
                pending_lotes=0,
                deadline={
                    "month": "2026-11",
                    "deadline": "2026-12-10",
                    "units": [{"cnes": "0010001", "status": "em_dia", "pending_records": 0}],
                },
            ),
            # roles/upgrade records the last result and the ones before it (pec_state history)
            "upgrade": _state(
                last={
                    "version": version,
                    "target_version": "4.5.2",
                    "result": "at_target",
                    "message": None,
                    "soak": None,
                },
                history=[],
            ),
            "readiness": _state(
                verdict="apta",
                reasons=[],
                measured_mbps=52.3,
                measured_at="2026-11-28T10:00:00Z",
                group="ubs_aptas",
                agrees=True,
            ),
        },
        "production": {
            "months": MONTHS,
            "teams": [
                {
                    "ine": "0000123456",
                    "name": "Equipe Azul",
                    "months": {
                        m: {"produced": 100 + i * 10, "sent": 100 + i * 10, "pending": 0} for i, m in enumerate(MONTHS)
                    },
                },
                {
                    "ine": "0000654321",
                    "name": "Equipe São João",
                    "months": {"2026-11": {"produced": 80, "sent": 60, "pending": 20}},
                },
            ],
            "previous_month": {"month": "2026-11", "deadline": "2026-12-10", "complete": True, "days_left": 9},
        },
    }


def host(name, region="regiao_norte", pec="healthy", group="ubs_aptas", **hostvars):
    entry = {
        "host": name,
        "name": hostvars.pop("ubs", name.upper()),
        "cnes": hostvars.pop("cnes", "0010001"),
        "groups": ["ubs", region, group] if region else ["ubs", group],
        "pec": healthy_pec() if pec == "healthy" else pec,
        "target_version": "4.5.2",
        "deadline": "2026-11-20",
        "migration_date": "2027-02-01",
        "legacy": {},
    }
    entry.update(hostvars)
    return entry


def fleet():
    """One UBS of each case, in two regions, plus an inventory region with no UBS."""
    late = healthy_pec()
    late["backup_status"]["last_success"] = "2026-11-27T02:00:00Z"
    late["backup_status"]["age_hours"] = 86.0
    overdue = healthy_pec("4.2.8")
    overdue["state"]["upgrade"]["data"]["last"] = {
        "version": "4.2.8",
        "target_version": "4.5.2",
        "result": "failed",
        "message": "espaço insuficiente",
        "soak": None,
    }
    stale = healthy_pec()
    stale["state"]["hardening"] = _state(
        "2026-09-01T03:00:00Z", stale=True, mode="enforce", summary={"pass": 40, "fail": 0}
    )
    no_state = copy.deepcopy(healthy_pec())
    del no_state["state"]
    corrupt = healthy_pec()
    corrupt["state"]["maintenance"] = {
        "present": False,
        "produced_at": None,
        "stale": False,
        "error": "JSON inválido na linha 3",
        "data": {},
    }
    return [
        host("ubs-saudavel", ubs="UBS 1 Saudável & <Cia>", cnes="0010001"),
        host("ubs-backup", ubs="UBS 2 Backup Atrasado", cnes="0010002", pec=late),
        host("ubs-versao", ubs="UBS 3 Versão Vencida", cnes="0010003", pec=overdue, group="ubs_inaptas"),
        host("ubs-fora", ubs="UBS 4 Inacessível", cnes="0010004", pec=None),
        host("ubs-velho", region="regiao_sul", ubs="UBS 5 Estado Antigo", cnes="0020005", pec=stale),
        host("ubs-sem-estado", region="regiao_sul", ubs="UBS 6 Sem Estado", cnes="0020006", pec=no_state),
        host("ubs-corrompido", region="regiao_sul", ubs="UBS 7 Estado Danificado", cnes="0020007", pec=corrupt),
    ]


SETTINGS = {
    "region_prefix": "regiao_",
    "backup_max_age_hours": 26,
    "regions": ["regiao_leste", "regiao_norte", "regiao_sul"],
}


def synthetic_fleet(count=200, region="regiao_norte"):
    """``count`` UBS of one region, varied the same way on every call: some late backups, failing off-host copies,
    drills never done, PECs below the target, unreachable servers, three to five teams each with a year of
    production, and the CDS of the previous month per unit."""
    hosts = []
    for i in range(count):
        pec = healthy_pec("4.2.8" if i % 9 == 4 else "4.5.2")
        backup = pec["backup_status"]
        if i % 7 == 3:
            backup["last_success"], backup["age_hours"] = "2026-11-26T02:00:00Z", 110.0
        if i % 11 == 5:
            backup["offhost"]["state"] = "failed"
        if i % 13 == 6:
            backup["restore_drill"] = {"result": "never"}
        cnes = f"{5300000 + i:07d}"
        pec["state"]["lotes"]["data"]["deadline"]["units"] = [
            {"cnes": cnes, "status": ("em_dia", "enviado_com_atraso", "pendente", "atrasado")[i % 4 if i % 5 else 0]}
        ]
        pec["production"]["teams"] = [
            {
                "ine": f"{1000000000 + i * 10 + t:010d}",
                "name": f"ESF {t + 1}",
                "months": {m: {"produced": 150 + (i * 7 + t * 31 + j * 13) % 200} for j, m in enumerate(MONTHS)},
            }
            for t in range(3 + i % 3)
        ]
        pec["production"]["units"] = [
            {
                "cnes": cnes,
                "months": {
                    m: {"produced": 400, "sent": 400 - (j == 11) * (i % 30), "pending": (j == 11) * (i % 30)}
                    for j, m in enumerate(MONTHS)
                },
            }
        ]
        hosts.append(
            host(
                f"ubs-{region.removeprefix('regiao_')}-{i + 1:03d}",
                region=region,
                pec=None if i % 50 == 17 else pec,
                group="ubs_inaptas" if i % 3 == 0 else "ubs_aptas",
                ubs=f"UBS {region.removeprefix('regiao_').title()} {i + 1:03d}",
                cnes=cnes,
            )
        )
    return hosts


def write_day(directory, region, day, entries):
    folder = os.path.join(directory, region)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{day}.json.gz"), "wb") as handle:
        handle.write(report_history.encode(region, day, entries))


def nightly_year(directory, model, today=TODAY, days=365, region="regiao_norte"):
    """A year of nightly runs of ``model``'s region, each day a little different: the backup ages move, a
    pendency comes and goes, the CDS month follows the calendar."""
    base = {r["host"]: report_history.entry(r) for r in model["rows"] if r["region"] == region}
    for back in range(days, 0, -1):
        day = today - datetime.timedelta(days=back)
        cds_month = report_history.month_keys(day, 1, offset=1)[0]
        entries = {}
        for i, (name, item) in enumerate(sorted(base.items())):
            item = dict(item, b=(i + back) % 6, p=[(i + back) % 2, (i * back) % 3, back % 4])
            if "c" in item:
                item["c"] = {
                    "m": cds_month,
                    "u": dict.fromkeys(item["c"]["u"], ("em_dia", "atrasado")[(i + back) % 5 == 0]),
                }
            entries[name] = item
        write_day(directory, region, day.isoformat(), entries)
