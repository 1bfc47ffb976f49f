"""Hand-made UBS for the report tests: what the control node knows about each one (host variables)."""

from __future__ import annotations

import copy
import datetime

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
