"""The repository's ansible-runner layout (runner/) against two lab UBS, judged only by runner's artifacts as AWX
judges a job: status, rc, the playbook_on_stats event and its per-host stats, the failed host's events.

Each AWX job template of awx/config.yml is launched as AWX would launch the region's: its playbook, the region as
limit, its extra vars as playbooks/awx_config.yml plans them (the publication's settings, the regime's switches, the
template's own) and its survey's defaults, written to env/extravars of a copy of runner/ (what AWX does with a job's
private_data_dir), and job type check. The report's
template is also run for real: its pages published to the persistent directory (here a directory of the test) and
its summary per region in the playbook_on_stats event's artifact_data, which AWX keeps as the job's artifacts and
the notifications read. The region's inventory is Molecule's, reached over SSH as a region reaches its UBS (the key
in runner's env/ssh_key, pipelining and ControlPersist from env/envvars), plus what a region's inventory carries
(installer checksum, report directories).

Every job runs from a copy of runner/ (the committed env/settings and env/envvars, project linked to the
repository) with runner's own secret file env/ssh_key added: ansible-runner writes --cmdline into env/cmdline of the
directory it runs, so the repository's runner/ is never run by the tests and must hold no such file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from labhost import run, sh

REPO = Path(__file__).resolve().parents[3]
LAYOUT = REPO / "runner"
ANSIBLE_RUNNER = str(Path(sys.executable).parent / "ansible-runner")
AWX = yaml.safe_load((REPO / "awx" / "config.yml").read_text().replace("!unsafe ", ""))
UBS1 = "sesdf-runner-ubs1"
UBS2 = "sesdf-runner-ubs2"
REGION = "regiao_norte"
INSTALLER = "eSUS-AB-PEC-4.5.2-Linux64.jar"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runner")


def _ssh_hosts(node: dict) -> None:
    """Molecule's inventory, every host reached over SSH at its container's address instead of podman exec."""
    for name in list(node.get("hosts") or {}):
        ip = subprocess.run(
            ["podman", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        node["hosts"][name] = {"ansible_host": ip, "ansible_user": "root", "ansible_connection": "ssh"}
    for child in (node.get("children") or {}).values():
        _ssh_hosts(child or {})


@pytest.fixture(scope="module")
def inventory(work) -> Path:
    """Molecule's inventory over SSH plus the region's own settings (as inventories/<region>/ would hold them)."""
    inv = work / "inventory"
    source = Path(os.environ["MOLECULE_INVENTORY_FILE"])
    shutil.copytree(source.parent, inv, symlinks=True)
    hosts = yaml.safe_load(source.read_text())
    for group in hosts.values():  # Molecule writes every group at the top level, next to all
        _ssh_hosts(group or {})
    (inv / source.name).write_text(yaml.safe_dump(hosts))
    region = {
        "report_dir": str(work / "relatorios"),
        "migration_notice_dir": str(work / "avisos"),
        # fresh lab containers: their host keys are new on every run
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
    }
    # the installer's checksum, per host: each container's lab image build publishes its own SHA256SUMS
    sha = {}
    for name in (UBS1, UBS2):
        sums = sh(name, "cat /srv/pec-installers/SHA256SUMS").splitlines()
        sha[name] = {"upgrade_installer_sha256": next(ln.split()[0] for ln in sums if ln.split()[-1] == INSTALLER)}
    (inv / "zz_region.yml").write_text(yaml.safe_dump({"all": {"vars": region, "hosts": sha}}))
    return inv


def layout(work: Path, ident: str, extravars: dict | None = None) -> Path:
    """A private_data_dir made from runner/ as committed, with runner's env/ssh_key (and AWX-style extravars)."""
    assert not {p.name for p in (LAYOUT / "env").iterdir()} & {"cmdline", "extravars"}, "runner/env is not clean"
    pdd = work / f"pdd-{ident}"
    shutil.copytree(LAYOUT, pdd, symlinks=True, ignore=shutil.ignore_patterns("artifacts", "project", "inventory"))
    (pdd / "project").symlink_to(REPO)
    key = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "runner_ssh_key"
    shutil.copyfile(key, pdd / "env" / "ssh_key")
    if extravars is not None:
        (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    return pdd


def launch(private_data_dir, inventory, artifacts, ident, playbook, limit=None, cmdline=""):
    """`ansible-runner run`, no input (stdin closed); returns (status, rc, events) read from the artifacts only."""
    cmd = [ANSIBLE_RUNNER, "run", str(private_data_dir), "-p", playbook, "--inventory", str(inventory)]
    cmd += ["--artifact-dir", str(artifacts), "--ident", ident, "-q"]
    if limit:
        cmd += ["--limit", limit]
    if cmdline:
        cmd.append(f"--cmdline={cmdline}")
    subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=900)
    job = Path(artifacts) / ident
    events = [json.loads(p.read_text()) for p in (job / "job_events").glob("*.json")]
    events.sort(key=lambda e: e["counter"])
    return (job / "status").read_text().strip(), int((job / "rc").read_text()), events, job


def stats(events) -> dict:
    found = [e for e in events if e["event"] == "playbook_on_stats"]
    assert len(found) == 1, [e["event"] for e in events][-5:]
    return found[0]["event_data"]


def failed_hosts(events) -> set[str]:
    return {e["event_data"]["host"] for e in events if e["event"] in ("runner_on_failed", "runner_on_unreachable")}


def test_site_runs_successfully_from_the_repository_layout(inventory, work):
    status, rc, events, job = launch(layout(work, "site"), inventory, work / "artifacts", "site", "playbooks/site.yml")
    assert (status, rc) == ("successful", 0), [e.get("stdout") for e in events][-10:]
    st = stats(events)
    assert {UBS1, UBS2} <= set(st["processed"]) and {UBS1, UBS2} <= set(st["ok"])
    assert not st["failures"] and not st["dark"]
    assert list((work / "relatorios").rglob("*")), "no regional report written"
    command = json.loads((job / "command").read_text())
    assert command["env"]["ANSIBLE_PIPELINING"] == "True"
    assert any("ssh-agent" in part or "ssh-add" in part for part in command["command"]), "env/ssh_key not used"


@pytest.fixture(scope="module")
def awx_plan(work) -> dict:
    """What playbooks/awx_config.yml would create in AWX (its plan, written before AWX is reached)."""
    out = work / "plan.json"
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/awx_config.yml"]
    proc = subprocess.run(
        [*cmd, "-e", f"awx_config_plan_file={out}"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def awx_extravars(jt: dict, awx_plan: dict, work: Path) -> dict:
    """What AWX passes the region's job: the region's template's extra vars as the plan has them (the publication's
    settings, with its directory here under the test's; the regime's switches; the template's own) and its survey's
    default answers."""
    (planned,) = [t for t in awx_plan["job_templates"] if t["key"] == jt["key"] and t["region"] == REGION]
    published = work / "publicado"
    extra = dict(planned["extra_vars"])
    extra.update(report_publish_dir=str(published), migration_notice_dir=str(published / REGION / "avisos-migracao"))
    extra.update({q["variable"]: q["default"] for q in jt.get("survey", []) if "default" in q})
    return extra


@pytest.fixture(scope="module")
def job_templates(inventory, awx_plan, work) -> dict:
    """Every job template of awx/config.yml, launched with job type check, three at a time."""

    def one(jt):
        ident = jt["key"]  # three templates run site.yml (the regime, the approved migration and upgrade)
        pdd = layout(work, f"jt-{ident}", awx_extravars(jt, awx_plan, work))
        return jt["name"], launch(pdd, inventory, work / "artifacts", f"jt-{ident}", jt["playbook"], REGION, "--check")

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(one, AWX["awx_job_templates"]))


@pytest.mark.parametrize("name", [jt["name"] for jt in AWX["awx_job_templates"]])
def test_job_template_succeeds_in_check_mode(job_templates, name):
    status, rc, events, job = job_templates[name]
    assert (status, rc) == ("successful", 0), [e.get("stdout") for e in events][-10:]
    # runner wraps the command in ssh-agent (env/ssh_key): the ansible-playbook line is its last argument
    assert " --check " in " ".join(json.loads((job / "command").read_text())["command"]) + " "
    st = stats(events)
    assert st["processed"] and not st["failures"] and not st["dark"]


def test_a_ubs_with_its_database_down_fails_the_job_and_is_named(inventory, work):
    sh(UBS2, "systemctl stop e-SUS-AB-PostgreSQL.service")
    try:
        pdd = layout(work, "backup-broken")
        status, rc, events = launch(pdd, inventory, work / "artifacts", "backup-broken", "playbooks/backup.yml")[:3]
    finally:
        run(UBS2, "systemctl start e-SUS-AB-PostgreSQL.service")
    assert status == "failed" and rc != 0
    assert failed_hosts(events) == {UBS2}
    st = stats(events)
    assert set(st["failures"]) == {UBS2}
    assert UBS1 in st["ok"] and UBS1 not in st["failures"]


def test_the_report_is_published_and_its_summary_handed_to_awx(inventory, awx_plan, work):
    jt = next(t for t in AWX["awx_job_templates"] if t["playbook"] == "playbooks/report.yml")
    pdd = layout(work, "report-published", awx_extravars(jt, awx_plan, work))
    status, rc, events, _artifacts = launch(
        # the region's own inventory in AWX holds that region and the implicit localhost, where the report is written
        pdd,
        inventory,
        work / "artifacts",
        "report-published",
        jt["playbook"],
        f"{REGION}:localhost",
    )
    assert (status, rc) == ("successful", 0), [e.get("stdout") for e in events][-10:]
    summary = stats(events)["artifact_data"]["sesdf_esus_relatorio"]
    (region,) = summary["regioes"]
    assert region["regiao"] == REGION and region["ubs"] == 2 and region["inacessiveis"] == 0
    url = AWX["awx_report_publication"]["url"]
    assert region["pagina"] == f"{url}/{REGION}/relatorio-{REGION}-{summary['data']}.html"
    published = work / "publicado" / REGION
    assert (published / "index.html").is_file()
    assert (published / f"relatorio-{REGION}-{summary['data']}.html").is_file()
