"""regime: the flow of each UBS, bad inventory input, IT's version deadline on a synthetic calendar."""

import datetime

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.regime import decide, in_window, parse_window

TODAY = datetime.date(2026, 12, 1)
NIGHT = datetime.datetime(2026, 12, 1, 21, 0)
NOON = datetime.datetime(2026, 12, 1, 12, 0)


def params(**overrides):
    base = {
        "host": "ubs-1",
        "group_names": ["ubs", "regiao_norte", "ubs_aptas"],
        "pec_role": "local_server",
        "version": "4.2.8",
        "migration_date": "",
        "target_version": "",
        "upgrade_opens": "",
        "upgrade_deadline": "",
        "maintenance_window": "20:00-06:00",
    }
    base.update(overrides)
    return base


def flow(now=NOON, **overrides):
    return decide(params(**overrides), today=now.date(), now=now)


@pytest.mark.nt("NT-geral-2")
def test_apt_with_date_reached_migrates():
    result = flow(migration_date="2026-12-01")
    assert result["flow"] == "migracao" and result["migration"]["due"]


def test_apt_with_future_date_waits():
    result = flow(migration_date="2027-03-15")
    assert result["flow"] == "aguardando" and "2027-03-15" in result["reason"]


def test_apt_without_date_waits():
    assert flow()["flow"] == "aguardando"


@pytest.mark.nt("NT-geral-2")
def test_inapt_gets_the_local_regime():
    assert flow(group_names=["regiao_sul", "ubs_inaptas"])["flow"] == "local"


def test_migrated_gets_consultation_checks_whatever_its_group():
    assert flow(pec_role="consultation", migration_date="2026-01-01")["flow"] == "consulta"


def test_no_pec_is_nothing_to_do():
    assert flow(pec_role="none")["flow"] == "sem_pec"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"group_names": ["regiao_norte", "ubs_aptas", "ubs_inaptas"]}, "ubs-1: está em ubs_aptas e em ubs_inaptas"),
        ({"group_names": ["regiao_norte"]}, "ubs-1: não está em ubs_aptas nem em ubs_inaptas"),
        ({"group_names": ["regiao_marte", "ubs_aptas"]}, "ubs-1: região desconhecida regiao_marte"),
        ({"group_names": ["ubs_aptas"]}, "exatamente um grupo regiao_*"),
        ({"migration_date": "15/03/2027"}, "ubs-1: sesdf_esus_data_migracao='15/03/2027'"),
        ({"migration_date": "2027-02-30"}, "sesdf_esus_data_migracao"),
        ({"maintenance_window": "20h-6h"}, "sesdf_esus_janela_manutencao"),
        ({"target_version": "4.5.2"}, "sesdf_esus_prazo_atualizacao"),
        ({"target_version": "latest", "upgrade_deadline": "2027-01-31"}, "sesdf_esus_versao_alvo"),
    ],
)
def test_bad_inventory_names_the_host_and_the_variable(overrides, needle):
    with pytest.raises(PecError, match=needle.replace("*", r"\*")):
        flow(**overrides)


def upgrade(now, **overrides):
    base = {"group_names": ["regiao_sul", "ubs_inaptas"], "target_version": "4.5.2", "upgrade_deadline": "2026-12-31"}
    base.update(overrides)
    return flow(now=now, **base)["upgrade"]


def test_below_target_in_window_and_maintenance_hour_is_due():
    plan = upgrade(NIGHT)
    assert plan["below_target"] and plan["due"] and plan["days_left"] == 30


def test_outside_the_maintenance_hour_is_not_due():
    plan = upgrade(NOON)
    assert plan["below_target"] and not plan["due"] and "horário de manutenção" in plan["reason"]


def test_window_not_yet_open_is_not_due():
    plan = upgrade(NIGHT, upgrade_opens="2026-12-05")
    assert not plan["window_open"] and not plan["due"]


def test_overdue_is_negative_days_and_still_due():
    plan = upgrade(NIGHT, upgrade_deadline="2026-11-20")
    assert plan["days_left"] == -11 and plan["due"]


def test_at_target_is_not_due():
    plan = upgrade(NIGHT, version="4.5.2")
    assert plan["below_target"] is False and not plan["due"]


def test_unknown_version_is_never_upgraded_blind():
    plan = upgrade(NIGHT, version="")
    assert not plan["due"] and "não concordam" in plan["reason"]


def test_no_target_version_is_not_due():
    plan = flow(now=NIGHT, group_names=["regiao_sul", "ubs_inaptas"])["upgrade"]
    assert not plan["due"] and plan["target"] is None


def test_window_crossing_midnight():
    window = parse_window("h", "v", "20:00-06:00")
    assert in_window(window, datetime.datetime(2026, 1, 1, 23, 59))
    assert in_window(window, datetime.datetime(2026, 1, 2, 5, 59))
    assert not in_window(window, datetime.datetime(2026, 1, 2, 6, 0))


WORKFLOW = 'workflow "sesdf.esus Norte - migração aprovada pela CTINF" no AWX'


@pytest.mark.nt("NT-geral-2")
def test_apt_with_date_reached_waits_for_approval_when_the_run_does_not_migrate():
    result = flow(migration_date="2026-12-01", migrate_enabled=False, migrate_approval=WORKFLOW)
    assert result["flow"] == "aguardando_aprovacao" and result["migration"]["due"]
    ((waiting,),) = [result["approvals"]]
    assert waiting["flow"] == "migracao" and waiting["approve"] == WORKFLOW
    assert result["reason"] == waiting["msg"]
    assert (
        "2026-12-01 alcançada" in waiting["msg"]
        and "aprovação da CTINF" in waiting["msg"]
        and WORKFLOW in waiting["msg"]
    )


def test_switched_off_migration_does_not_touch_a_ubs_whose_date_has_not_come():
    result = flow(migration_date="2027-03-15", migrate_enabled=False)
    assert result["flow"] == "aguardando" and result["approvals"] == []


def test_switched_off_migration_leaves_migrated_and_inapt_ubs_in_their_flows():
    assert flow(pec_role="consultation", migration_date="2026-01-01", migrate_enabled=False)["flow"] == "consulta"
    inapt = flow(group_names=["regiao_sul", "ubs_inaptas"], migration_date="2026-01-01", migrate_enabled=False)
    assert inapt["flow"] == "local" and inapt["approvals"] == []


@pytest.mark.nt("NT-inapta-5")
def test_due_upgrade_waits_for_approval_when_the_run_does_not_upgrade():
    result = flow(
        now=NIGHT,
        group_names=["regiao_sul", "ubs_inaptas"],
        target_version="4.5.2",
        upgrade_deadline="2026-12-31",
        upgrade_enabled=False,
        upgrade_approval="workflow de atualização",
    )
    assert result["flow"] == "local" and result["upgrade"]["due"] is False
    ((waiting,),) = [result["approvals"]]
    assert waiting["flow"] == "atualizacao" and "de 4.2.8 para 4.5.2" in waiting["msg"]
    assert result["upgrade"]["reason"] == waiting["msg"] and "workflow de atualização" in waiting["msg"]


def test_switched_off_upgrade_asks_no_approval_outside_the_window_or_at_target():
    base = {"group_names": ["regiao_sul", "ubs_inaptas"], "target_version": "4.5.2", "upgrade_enabled": False}
    base["upgrade_deadline"] = "2026-12-31"
    assert flow(now=NOON, **base)["approvals"] == []
    assert flow(now=NIGHT, upgrade_opens="2026-12-05", **base)["approvals"] == []
    assert flow(now=NIGHT, version="4.5.2", **base)["approvals"] == []


def test_without_switches_the_run_migrates_and_upgrades_as_before():
    assert flow(migration_date="2026-12-01", migrate_enabled=None)["flow"] == "migracao"
    plan = upgrade(NIGHT, upgrade_enabled=True)
    assert plan["due"] and flow(migration_date="2026-12-01")["approvals"] == []
