"""What playbooks/awx_config.yml creates from awx/config.yml, read from its plan (awx_config_plan_file: the objects
computed by the playbook itself, written before AWX is reached): per region its own job templates and workflows,
so the regions run side by side and one region's jobs of a template one at a time; nothing typed free at launch;
a timeout on every template; CTINF's approval before every migration and upgrade; the report always produced and
the managers told."""

from __future__ import annotations

import pytest
import yaml
from awx_data import CONFIG, REPO, load_config, plan, write_config

REGIONS = {r["name"]: r for r in CONFIG["awx_regions"]}
RUNNER_JOB_TIMEOUT = yaml.safe_load((REPO / "runner" / "env" / "settings").read_text())["job_timeout"]


@pytest.fixture(scope="module")
def awx_plan(tmp_path_factory):
    proc, result = plan(tmp_path_factory.mktemp("plan"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return result


def _region_templates(awx_plan, region):
    return {jt["key"]: jt for jt in awx_plan["job_templates"] if jt["region"] == region}


def test_every_region_has_its_own_template_of_every_playbook_on_its_own_inventory(awx_plan):
    names = [jt["name"] for jt in awx_plan["job_templates"]]
    assert len(names) == len(set(names)) == len(REGIONS) * len(CONFIG["awx_job_templates"])
    for name, region in REGIONS.items():
        templates = _region_templates(awx_plan, name)
        assert set(templates) == {jt["key"] for jt in CONFIG["awx_job_templates"]}
        assert {jt["inventory"] for jt in templates.values()} == {f"sesdf.esus {region['label']}"}
        assert all(region["label"] in jt["name"] for jt in templates.values())


def test_no_template_runs_twice_at_once_nor_takes_free_variables_nor_another_inventory(awx_plan):
    for jt in awx_plan["job_templates"]:
        assert jt["allow_simultaneous"] is False, jt["name"]
        assert jt["ask_variables_on_launch"] is False, jt["name"]
        assert jt["ask_inventory_on_launch"] is False and jt["ask_credential_on_launch"] is False, jt["name"]


def test_every_template_has_a_timeout_within_the_runners_own(awx_plan):
    for jt in awx_plan["job_templates"]:
        assert 0 < jt["timeout"] <= RUNNER_JOB_TIMEOUT, jt["name"]


def test_what_varies_at_launch_is_a_survey_question():
    templates = {jt["key"]: jt for jt in CONFIG["awx_job_templates"]}
    harden = {q["variable"]: q for q in templates["endurecimento"]["survey"]}
    assert harden["hardening_mode"]["type"] == "multiplechoice"
    assert harden["hardening_mode"]["choices"] == ["audit", "enforce"]
    assert harden["hardening_mode"]["default"] == "audit"
    for jt in templates.values():
        for question in jt.get("survey", []):
            assert {"question_name", "variable", "type", "required"} <= set(question), question
            assert question["variable"] not in jt.get("extra_vars", {}), "a fixed extra var would override it"
            if question["type"] == "multiplechoice":
                assert question["default"] in question["choices"]


def test_surveys_reach_awx_enabled_with_their_spec(awx_plan):
    for jt in awx_plan["job_templates"]:
        if jt["key"] == "endurecimento":
            assert jt["survey_enabled"] is True
            assert [q["variable"] for q in jt["survey_spec"]["spec"]] == ["hardening_mode"]
        if jt["key"] == "regime":
            assert jt["survey_enabled"] is False


def _graph(workflow):
    nodes = {n["identifier"]: n for n in workflow["workflow_nodes"]}
    edges = {
        ident: {
            kind: [t["identifier"] for t in n["related"][f"{kind}_nodes"]] for kind in ("success", "failure", "always")
        }
        for ident, n in nodes.items()
    }
    for targets in edges.values():
        for kind_targets in targets.values():
            assert set(kind_targets) <= set(nodes)
    return nodes, edges


def _parents(edges, ident):
    return [(src, kind) for src, targets in edges.items() for kind, found in targets.items() if ident in found]


def _type(node):
    return node["unified_job_template"]["type"]


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_each_workflow_syncs_the_project_and_the_regions_inventory_first(awx_plan, region):
    workflows = [w for w in awx_plan["workflows"] if w["region"] == region]
    assert {w["key"] for w in workflows} == {w["key"] for w in CONFIG["awx_workflows"]}
    for workflow in workflows:
        nodes, edges = _graph(workflow)
        roots = [i for i in nodes if not _parents(edges, i)]
        assert [_type(nodes[i]) for i in roots] == ["project"]
        inventory = edges[roots[0]]["success"]
        assert [_type(nodes[i]) for i in inventory] == ["inventory_source"]
        source = nodes[inventory[0]]["unified_job_template"]["name"]
        assert source == f"sesdf.esus {REGIONS[region]['label']} (repositório)"
        # every job template of the workflow is the region's own
        own = {jt["name"] for jt in _region_templates(awx_plan, region).values()}
        assert {n["unified_job_template"]["name"] for n in nodes.values() if _type(n) == "job_template"} <= own


def _playbook(awx_plan, node):
    name = node["unified_job_template"]["name"]
    return next(jt["playbook"] for jt in awx_plan["job_templates"] if jt["name"] == name)


def _flows(awx_plan, node):
    name = node["unified_job_template"]["name"]
    return next(jt["flows"] for jt in awx_plan["job_templates"] if jt["name"] == name)


@pytest.mark.nt("NT-geral-2")
def test_a_migration_or_an_upgrade_runs_only_after_ctinf_approves(awx_plan):
    """A template runs a flow (migrate, upgrade) when its playbook can and its extra vars do not switch it off."""
    for jt in awx_plan["job_templates"]:
        switched_off = {f for f in ("migrate", "upgrade") if jt["extra_vars"].get(f"regime_{f}_enabled") is False}
        assert not set(jt["flows"]) & switched_off, jt["name"]
        if jt["playbook"] == "playbooks/site.yml":
            assert set(jt["flows"]) | switched_off == {"migrate", "upgrade"}, jt["name"]
    seen = set()
    for workflow in awx_plan["workflows"]:
        nodes, edges = _graph(workflow)
        for ident, node in nodes.items():
            if _type(node) == "job_template" and _flows(awx_plan, node):
                seen |= {(workflow["region"], flow) for flow in _flows(awx_plan, node)}
                parents = _parents(edges, ident)
                assert parents and all(_type(nodes[p]) == "workflow_approval" and k == "success" for p, k in parents)
                assert nodes[parents[0][0]]["unified_job_template"]["timeout"] > 0
        if any(_type(n) == "workflow_approval" for n in nodes.values()):
            assert workflow["approval"] and workflow["notification_templates_approvals"]
    assert seen == {(r, f) for r in REGIONS for f in ("migrate", "upgrade")}


def test_nobody_launches_a_migration_or_an_upgrade_but_through_the_approval(awx_plan):
    gated = {jt["name"] for jt in awx_plan["job_templates"] if jt["flows"]}
    assert len(gated) == 2 * len(REGIONS)
    for team in awx_plan["teams"]:
        assert team["job_templates"] and not set(team["job_templates"]) & gated, team["team"]
        assert set(team["workflows"]) == {w["name"] for w in awx_plan["workflows"] if w["region"] == team["region"]}
    assert not {s["unified_job_template"] for s in awx_plan["schedules"]} & gated


def test_the_nightly_regime_waits_for_the_regions_own_approval_workflows(awx_plan):
    workflows = {w["name"]: w for w in awx_plan["workflows"]}
    for jt in (t for t in awx_plan["job_templates"] if t["key"] == "regime"):
        extra = jt["extra_vars"]
        assert extra["regime_migrate_enabled"] is False and extra["regime_upgrade_enabled"] is False
        for flow in ("migrate", "upgrade"):
            name = extra[f"regime_{flow}_approval"].split('"')[1]
            assert workflows[name]["region"] == jt["region"] and workflows[name]["approval"], name
            nodes = _graph(workflows[name])[0].values()
            assert [_flows(awx_plan, n) for n in nodes if _type(n) == "job_template" and _flows(awx_plan, n)] == [
                [flow]
            ]


def test_a_schedule_launching_a_migration_without_approval_is_refused(tmp_path):
    config = load_config()
    config["awx_schedules"].append({"name": "Migração direta", "job_template": "migracao", "rrule": "x"})
    proc, result = plan(tmp_path, write_config(config, tmp_path / "config.yml"))
    assert proc.returncode != 0 and result is None
    assert "Migração direta - Norte" in proc.stdout


def test_the_report_runs_whatever_the_main_job_ends_with(awx_plan):
    for workflow in awx_plan["workflows"]:
        nodes, edges = _graph(workflow)
        jobs = [i for i, n in nodes.items() if _type(n) == "job_template"]
        reports = [i for i in jobs if _playbook(awx_plan, nodes[i]) == "playbooks/report.yml"]
        assert len(reports) == 1, workflow["name"]
        ((main, kind),) = _parents(edges, reports[0])
        playbook = _playbook(awx_plan, nodes[main])
        # site.yml ends with report.yml itself: the workflow's report node covers the run that failed before it
        assert kind == "always" or (kind == "failure" and playbook == "playbooks/site.yml"), workflow["name"]


def test_failures_and_the_report_reach_the_managers(awx_plan):
    names = {n["name"] for n in CONFIG["awx_notifications"].values()}
    for jt in awx_plan["job_templates"]:
        assert set(jt["notification_templates_error"]) == names, jt["name"]
        if jt["playbook"] == "playbooks/report.yml":
            assert set(jt["notification_templates_success"]) == names
    for workflow in awx_plan["workflows"]:
        assert set(workflow["notification_templates_error"]) == names


def test_report_templates_publish_to_the_persistent_directory_not_the_jobs_home(awx_plan):
    publication = CONFIG["awx_report_publication"]
    assert publication["dir"].startswith("/") and not publication["dir"].startswith(("/runner", "/root", "/home"))
    for jt in awx_plan["job_templates"]:
        assert jt["extra_vars"]["report_publish_dir"] == publication["dir"]
        assert jt["extra_vars"]["report_publish_url"] == publication["url"]
        assert jt["extra_vars"]["migration_notice_dir"] == f"{publication['dir']}/{jt['region']}/avisos-migracao"
        assert jt["instance_groups"] == [f"sesdf.esus {REGIONS[jt['region']]['label']} (execução)"]


def test_every_schedule_runs_the_regions_own_template_or_workflow(awx_plan):
    targets = {jt["name"]: jt["region"] for jt in awx_plan["job_templates"]}
    targets |= {w["name"]: w["region"] for w in awx_plan["workflows"]}
    assert len(awx_plan["schedules"]) == len(CONFIG["awx_schedules"]) * len(REGIONS)
    for schedule in awx_plan["schedules"]:
        assert targets[schedule["unified_job_template"]] == schedule["region"], schedule["name"]


def test_the_configuration_playbook_refuses_a_secret_written_in(tmp_path):
    config = yaml.safe_load((REPO / "awx" / "config.yml").read_text().replace("!unsafe ", ""))
    config["awx_credentials"]["backup"]["passphrase"] = "escrita-aqui"
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    proc, result = plan(tmp_path, path)
    assert proc.returncode != 0 and result is None
    assert "awx_credentials" in proc.stdout and "escrita-aqui" not in proc.stdout


def test_each_region_runs_on_its_own_container_group_with_the_reports_volume(awx_plan):
    groups = {g["region"]: g for g in awx_plan["instance_groups"]}
    assert set(groups) == set(REGIONS) and len({g["name"] for g in groups.values()}) == len(REGIONS)
    settings = CONFIG["awx_instance_groups"]
    for region, group in groups.items():
        assert group["is_container_group"] is True
        pod = group["pod_spec_override"]
        (container,) = pod["spec"]["containers"]
        assert container["image"] == CONFIG["awx_execution_environment"]["image"]
        assert container["volumeMounts"] == [
            {"name": "relatorios", "mountPath": CONFIG["awx_report_publication"]["dir"]}
        ]
        assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == settings["claim"]
        assert container["resources"]["requests"]["cpu"] == settings["cpu_request"]
        # the region's templates and its inventory's sync run there, and nowhere else
        assert {tuple(jt["instance_groups"]) for jt in awx_plan["job_templates"] if jt["region"] == region} == {
            (group["name"],)
        }
        (inventory,) = [i for i in awx_plan["inventories"] if i["region"] == region]
        assert inventory["instance_groups"] == [group["name"]]


def test_on_hosts_each_region_gets_its_execution_nodes_then_the_fallback(tmp_path):
    config = load_config()
    config["awx_instance_groups"]["kind"] = "nodes"
    for n, region in enumerate(config["awx_regions"]):
        region["execution_nodes"] = [f"awx-exec-{n % 2 + 1}.saude.df.gov.br"]
    proc, result = plan(tmp_path, write_config(config, tmp_path / "config.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for n, region in enumerate(config["awx_regions"]):
        (group,) = [g for g in result["instance_groups"] if g["region"] == region["name"]]
        assert group["is_container_group"] is False and group["pod_spec_override"] is None
        assert group["policy_instance_list"] == [f"awx-exec-{n % 2 + 1}.saude.df.gov.br"]
        expected = [group["name"], "default"]
        assert all(
            jt["instance_groups"] == expected for jt in result["job_templates"] if jt["region"] == region["name"]
        )
