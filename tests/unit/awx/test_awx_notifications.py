"""The report reaches the managers: report.yml run through ansible-runner (as AWX runs a job) publishes the pages
into the region's directory of the persistent place and hands AWX each region's summary (set_stats: the
playbook_on_stats event's artifact_data, which AWX stores as the job's artifacts, awx/main/tasks/callback.py); the
notification templates of awx/config.yml, rendered as AWX renders them (awx/main/models/notifications.py,
JobNotificationMixin: a sandboxed Jinja2 environment with ChainableUndefined over the job's context), carry the
summary and the links; and the e-mail a manager gets arrives through a real SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
import json
import smtplib
import socket
import textwrap
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from awx_data import BIN, CONFIG, REPO, ansible_env, run
from jinja2 import ChainableUndefined, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

EMAIL = CONFIG["awx_notifications"]["email"]
CHAT = CONFIG["awx_notifications"]["chat"]
URL = "https://relatorios.example.gov.br/pec"
AWX_JOB_URL = "https://awx.example.gov.br/#/jobs/playbook/42"
INVENTORY = "sesdf.esus Norte"


@pytest.fixture(scope="module")
def report_job(tmp_path_factory):
    """report.yml through ansible-runner on one region: one UBS unreachable, one answering without a PEC."""
    work = tmp_path_factory.mktemp("relatorio")
    pdd = work / "pdd"
    (pdd / "env").mkdir(parents=True)
    (pdd / "project").symlink_to(REPO)
    (pdd / "env" / "envvars").write_text(json.dumps(ansible_env(ANSIBLE_LOCAL_TEMP=str(work / "tmp"))))
    extravars = {"report_dir": str(work / "trabalho"), "report_publish_dir": str(work / "publicado")}
    (pdd / "env" / "extravars").write_text(json.dumps({**extravars, "report_publish_url": URL}))
    inventory = work / "regiao_norte.yml"
    inventory.write_text(
        textwrap.dedent(f"""\
        all:
          children:
            ubs:
              children:
                regiao_norte:
                  hosts:
                    ubs-planaltina: {{sesdf_esus_cnes: "0300001", sesdf_esus_ubs_name: UBS 1 Planaltina,
                                      ansible_host: 127.0.0.1, ansible_port: 1, ansible_connection: ssh}}
                    ubs-sobradinho: {{sesdf_esus_cnes: "0300002", sesdf_esus_ubs_name: UBS 1 Sobradinho,
                                      ansible_connection: local, ansible_become: false,
                                      ansible_python_interpreter: {BIN / "python"}}}
            ubs_inaptas: {{hosts: {{ubs-planaltina: {{}}, ubs-sobradinho: {{}}}}}}
        """)
    )
    args = [str(BIN / "ansible-runner"), "run", str(pdd), "-p", "playbooks/report.yml", "--inventory", str(inventory)]
    proc = run([*args, "--ident", "job", "-q"], env=ansible_env())
    artifacts = pdd / "artifacts" / "job"
    assert (artifacts / "status").exists(), proc.stdout + proc.stderr
    events = [json.loads(p.read_text()) for p in (artifacts / "job_events").glob("*.json")]
    stats = next(e["event_data"] for e in events if e["event"] == "playbook_on_stats")
    return {
        "work": work,
        "status": (artifacts / "status").read_text().strip(),
        "stats": stats,
        "stdout": (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else "",
    }


def awx_context(job, status):
    """The context AWX renders a notification with (JobNotificationMixin.context over the serialized job)."""
    stats = job["stats"]
    counts = {k: len(stats.get(k) or {}) for k in ("ok", "changed", "failures", "dark", "skipped", "processed")}
    serialized = {
        "id": 42,
        "name": f"{INVENTORY} - relatório dos gestores",
        "status": status,
        "failed": status != "successful",
        "limit": "",
        "job_explanation": "",
        "playbook": "playbooks/report.yml",
        "artifacts": stats.get("artifact_data") or {},
        "host_status_counts": counts,
        "summary_fields": {"inventory": {"name": INVENTORY}, "job_template": {"name": "relatório dos gestores"}},
    }
    return {"job": serialized, "job_friendly_name": "Job", "url": AWX_JOB_URL, "job_metadata": "{}"}


def render(template, context):
    return ImmutableSandboxedEnvironment(undefined=ChainableUndefined).from_string(template).render(**context)


def test_the_report_job_publishes_the_regions_pages_in_its_own_directory(report_job):
    published = report_job["work"] / "publicado" / "regiao_norte"
    day = report_job["stats"]["artifact_data"]["sesdf_esus_relatorio"]["data"]
    assert (published / "index.html").is_file()
    assert (published / f"relatorio-regiao_norte-{day}.html").is_file()
    assert oct((published / "index.html").stat().st_mode & 0o777) == "0o644"
    # the job's working copy is not where the pages live: the published copy is the same file
    work_page = report_job["work"] / "trabalho" / f"relatorio-regiao_norte-{day}.html"
    assert work_page.read_bytes() == (published / work_page.name).read_bytes()


def test_awx_receives_each_regions_summary_as_the_jobs_artifacts(report_job):
    # one UBS did not answer: the job fails (as AWX shows it) and the report and its summary are there all the same
    assert report_job["status"] == "failed"
    summary = report_job["stats"]["artifact_data"]["sesdf_esus_relatorio"]
    assert dt.date.fromisoformat(summary["data"])
    assert summary["indice"] == f"{URL}/regiao_norte/index.html"
    (region,) = summary["regioes"]
    assert region["regiao"] == "regiao_norte" and region["ubs"] == 2 and region["inacessiveis"] == 1
    assert region["situacao"] == {"inapta": 2}
    assert region["pendencias_altas"] >= 1 and summary["pendencias_altas"] == region["pendencias_altas"]
    assert region["pagina"] == f"{URL}/regiao_norte/relatorio-regiao_norte-{summary['data']}.html"


def test_the_email_subject_tells_the_high_pendencies_and_the_body_links_the_regions_page(report_job):
    context = awx_context(report_job, "successful")
    summary = context["job"]["artifacts"]["sesdf_esus_relatorio"]
    subject = render(EMAIL["messages"]["success"]["message"], context)
    body = render(EMAIL["messages"]["success"]["body"], context)
    assert "\n" not in subject
    assert subject.startswith(f"[sesdf.esus] {INVENTORY}: relatório de {summary['data']}, ATENÇÃO: ")
    assert f"{summary['pendencias_altas']} pendência(s) alta(s)" in " ".join(subject.split())
    assert summary["regioes"][0]["pagina"] in body and summary["indice"] in body and AWX_JOB_URL in body
    assert "Região Norte: 2 UBS (2 inapta), 1 inacessível(is)" in body


def test_a_failed_job_says_so_with_the_failed_ubs_and_the_link(report_job):
    context = awx_context(report_job, "failed")
    subject = render(EMAIL["messages"]["error"]["message"], context)
    body = render(EMAIL["messages"]["error"]["body"], context)
    assert subject == f"[sesdf.esus] FALHA: {INVENTORY} - relatório dos gestores (falhou)"
    assert "inacessíveis: 1" in body and AWX_JOB_URL in body
    assert context["job"]["artifacts"]["sesdf_esus_relatorio"]["indice"] in body


def test_without_a_report_the_messages_say_so_instead_of_failing(report_job):
    context = awx_context(report_job, "failed")
    context["job"]["artifacts"] = {}
    del context["job"]["summary_fields"]  # a workflow job has no inventory
    assert render(EMAIL["messages"]["success"]["message"], context).endswith("relatório não gerado")
    assert "não foi gerado" in render(EMAIL["messages"]["success"]["body"], context)
    assert json.loads(render(CHAT["messages"]["error"]["body"], context))["text"].startswith("FALHA:")


@pytest.mark.parametrize("event", ["success", "error"])
def test_the_chat_webhook_body_is_the_json_object_awx_posts(report_job, event):
    """WebhookBackend.format_body: a body that is not a JSON object is posted as {} (nothing reaches the chat)."""
    context = awx_context(report_job, "successful" if event == "success" else "failed")
    posted = json.loads(render(CHAT["messages"][event]["body"], context))
    assert isinstance(posted, dict) and set(posted) == {"text"}
    assert context["job"]["artifacts"]["sesdf_esus_relatorio"]["regioes"][0]["pagina"] in posted["text"] or (
        event == "error" and context["job"]["artifacts"]["sesdf_esus_relatorio"]["indice"] in posted["text"]
    )


def _context_stub():
    """JobNotificationMixin.context_stub: what AWX validates a notification template's messages against on save."""
    job = {
        "allow_simultaneous": False,
        "artifacts": {},
        "description": "Sample job description",
        "failed": False,
        "host_status_counts": {"skipped": 1, "ok": 5, "changed": 3, "failures": 0, "dark": 0, "failed": False},
        "id": 42,
        "job_explanation": "Sample job explanation",
        "job_tags": "",
        "job_type": "run",
        "limit": "bar_limit",
        "name": "Stub JobTemplate",
        "playbook": "ping.yml",
        "status": "running",
        "summary_fields": {"inventory": {"name": "Stub Inventory", "id": 17}, "job_template": {"name": "Stub"}},
        "url": "/api/v2/jobs/13/",
    }
    return {
        "job": job,
        "job_friendly_name": "Job",
        "url": "https://platformhost/#/jobs/playbook/1010",
        "job_metadata": "{}",
    }


class _DescriptiveUndefined(StrictUndefined):
    __repr__ = __str__ = StrictUndefined._fail_with_undefined_error


@pytest.mark.parametrize("notification", sorted(CONFIG["awx_notifications"]))
def test_awx_accepts_the_messages_when_the_template_is_saved(notification):
    """NotificationTemplateSerializer.validate_messages: no newline in a subject, every message renders against the
    stub with undefined fields refused (a template AWX refuses is never created by the configuration playbook)."""
    for event, messages in CONFIG["awx_notifications"][notification]["messages"].items():
        assert event in ("started", "success", "error", "workflow_approval")
        for kind, template in messages.items():
            assert kind in ("message", "body")
            if kind == "message":
                assert "\n" not in template
            env = ImmutableSandboxedEnvironment(undefined=_DescriptiveUndefined)
            env.from_string(template).render(**_context_stub())


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd), keeping every message it receives."""
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    handler = Keep()
    with socket.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def test_the_managers_email_arrives_through_smtp_with_the_link(report_job, smtp_server):
    """The message sent as AWX's e-mail backend sends it (Django's SMTP backend: subject, plain-text UTF-8 body, the
    configured sender and recipients), through a real SMTP server on 127.0.0.1."""
    controller, handler = smtp_server
    conf = EMAIL["notification_configuration"]
    context = awx_context(report_job, "successful")
    message = EmailMessage()
    message["Subject"] = render(EMAIL["messages"]["success"]["message"], context)
    message["From"] = conf["sender"]
    message["To"] = ", ".join(conf["recipients"])
    message.set_content(render(EMAIL["messages"]["success"]["body"], context))
    with smtplib.SMTP(controller.hostname, controller.port, timeout=conf["timeout"]) as smtp:
        smtp.send_message(message)
    (envelope,) = handler.messages
    assert envelope.rcpt_tos == conf["recipients"]
    received = message_from_bytes(envelope.original_content, policy=policy.default)
    summary = context["job"]["artifacts"]["sesdf_esus_relatorio"]
    assert "ATENÇÃO" in received["Subject"] and summary["data"] in received["Subject"]
    text = received.get_body(("plain",)).get_content()
    assert summary["regioes"][0]["pagina"] in text and AWX_JOB_URL in text
    page = Path(summary["regioes"][0]["pagina"]).name
    assert (report_job["work"] / "publicado" / "regiao_norte" / page).is_file()
