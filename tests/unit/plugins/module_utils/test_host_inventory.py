# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_inventory: parsing real dpkg-query/systemctl/ss output of a lab server and comparing it with a whitelist.

The fixtures are excerpts of the commands' output on the lab image (Debian 12), with intruders added.
"""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import host_inventory as hi
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

DPKG = (
    "acl\t2.3.1-3\toptional\tii \tno\n"
    "base-files\t12.4+deb12u15\trequired\tii \tyes\n"
    "cron\t3.0pl1-162\timportant\tii \tno\n"
    "libc6:amd64\t2.36-9+deb12u14\toptional\tii \tno\n"
    "openssh-server\t1:9.2p1-2+deb12u10\toptional\tii \tno\n"
    "postgresql-15\t15.20-0+deb12u1\toptional\tii \tno\n"
    "telnetd\t0.17+2.4-2+deb12u1\toptional\tii \tno\n"
    "inetutils-telnetd\t2:2.4-2+deb12u1\toptional\tii \tno\n"
    "openbsd-inetd\t0.20221205-3\toptional\tii \tno\n"
    "rsh-server\t0.17-24\toptional\trc \tno\n"
    "zstd\t1.5.4+dfsg2-5\toptional\tii \tno\n"
    "halfgone\t1.0\toptional\tiF \tno\n"
)

UNIT_FILES = """\
auditd.service                         enabled         enabled
autovt@.service                        alias           -
console-getty.service                  enabled-runtime disabled
cron.service                           enabled         enabled
getty@.service                         enabled         enabled
getty@tty1.service                     masked          enabled
nftables.service                       disabled        enabled
openbsd-inetd.service                  enabled         enabled
postgresql.service                     disabled        enabled
ssh.service                            enabled         enabled
sshd.service                           alias           -
systemd-logind.service                 masked          enabled
systemd-timesyncd.service              enabled         enabled
intruso.service                        disabled        enabled
"""

UNITS = """\
auditd.service                       loaded    failed   failed  Security Auditing Service
console-getty.service                loaded    inactive dead    Console Getty
cron.service                         loaded    active   running Regular background program processing daemon
dbus.service                         loaded    active   running D-Bus System Message Bus
getty@tty1.service                   masked    inactive dead    getty@tty1.service
openbsd-inetd.service                loaded    active   running OpenBSD Internet Superserver
ssh.service                          loaded    active   running OpenBSD Secure Shell server
systemd-binfmt.service               loaded    active   exited  Set Up Additional Binary Formats
systemd-journald.service             loaded    active   running Journal Service
systemd-logind.service               masked    inactive dead    systemd-logind.service
intruso.service                      loaded    active   running Intruso
"""

SS = """\
tcp   LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=55,fd=3))
tcp   LISTEN 0      244        127.0.0.1:5433       0.0.0.0:*    users:(("postgres",pid=310,fd=6))
tcp   LISTEN 0      50                 *:8080             *:*    users:(("java",pid=402,fd=12))
tcp   LISTEN 0      5            0.0.0.0:9999       0.0.0.0:*    users:(("python3",pid=87,fd=3))
tcp   LISTEN 0      128             [::]:22            [::]:*    users:(("sshd",pid=55,fd=4))
udp   UNCONN 0      0      127.0.0.53%lo:53         0.0.0.0:*    users:(("systemd-resolve",pid=90,fd=13))
tcp   LISTEN 0      64    [::ffff:127.0.0.1]:8081   *:*    users:(("python3",pid=500,fd=3),("python3",pid=501,fd=3))
tcp   LISTEN 0      128          0.0.0.0:23         0.0.0.0:*    users:(("inetd",pid=600,fd=7))
tcp   LISTEN 0      5            0.0.0.0:9998       0.0.0.0:*    users:(("python3",pid=700,fd=3))
"""

CGROUPS = {
    55: "0::/system.slice/ssh.service\n",
    310: "0::/system.slice/e-SUS-AB-PostgreSQL.service\n",
    402: "0::/system.slice/e-SUS-PEC.service\n",
    # podman exec'd process: hybrid cgroup layout, no unit
    87: "1:name=systemd:/libpod_parent/libpod-79750d51/init.scope\n0::/libpod_parent/libpod-79750d51\n",
    90: "0::/system.slice/systemd-resolved.service\n",
    500: "0::/system.slice/ubs-painel.service\n",
    501: "0::/system.slice/ubs-painel.service\n",
    600: "0::/system.slice/openbsd-inetd.service\n",
    700: "12:pids:/libpod_parent/x\n1:name=systemd:/libpod_parent/x/system.slice/intruso.service\n"
    "0::/libpod_parent/x\n",
}

WHITELIST = {
    "priorities_allowed": ["required", "important", "standard"],
    "packages_allowed": ["lib*", "openssh-*", "postgresql-*", "zstd"],
    "packages_denied": ["telnetd", "inetutils-telnetd", "openbsd-inetd", "rsh-*", "base-files"],
    "packages_protected": [],
    "services_allowed": [
        "ssh.service",
        "cron.service",
        "e-SUS-*.service",
        "getty@*.service",
        "console-getty.service",
        "auditd.service",
        "systemd-timesyncd.service",
    ],
    "services_protected": ["systemd-*.service", "dbus.service"],
    "sockets_allowed": [
        {"port": 22, "proto": "tcp", "addresses": ["any"]},
        {"port": 5433, "proto": "tcp", "addresses": ["loopback"]},
        {"port": 8080, "proto": "tcp"},
        {"port": 53, "proto": "udp", "addresses": ["loopback"]},
    ],
}


def _inventory():
    sockets = hi.parse_ss(SS)
    for sock in sockets:
        for proc in sock["processes"]:
            proc["unit"] = hi.unit_from_cgroup(CGROUPS.get(proc["pid"], ""))
    return {
        "packages": hi.parse_dpkg(DPKG),
        "services": hi.merge_services(hi.parse_unit_files(UNIT_FILES), hi.parse_units(UNITS)),
        "sockets": sockets,
    }


def _by(violations, kind):
    return {v["name"]: v for v in violations if v["kind"] == kind}


def test_dpkg_keeps_installed_packages_only_and_strips_architecture():
    pkgs = {p["name"]: p for p in hi.parse_dpkg(DPKG)}
    assert "rsh-server" not in pkgs  # config-files only: nothing to run
    assert "halfgone" in pkgs  # half-configured files are on disk
    assert "libc6" in pkgs
    assert pkgs["base-files"]["essential"] is True
    assert pkgs["cron"]["priority"] == "important"


def test_services_are_those_enabled_or_running_not_static_masked_or_exited():
    services = {s["name"]: s for s in hi.merge_services(hi.parse_unit_files(UNIT_FILES), hi.parse_units(UNITS))}
    assert services["ssh.service"]["enabled"] and services["ssh.service"]["running"]
    assert services["dbus.service"]["running"] and not services["dbus.service"]["enabled"]
    assert services["intruso.service"]["running"] and not services["intruso.service"]["enabled"]
    assert services["auditd.service"]["enabled"] and not services["auditd.service"]["running"]
    for absent in (
        "getty@tty1.service",
        "systemd-logind.service",
        "systemd-binfmt.service",
        "nftables.service",
        "autovt@.service",
        "console-getty.service" + "x",
    ):
        assert absent not in services
    assert services["console-getty.service"]["enabled"]  # enabled-runtime starts by itself too


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.0.0.0:22", ("0.0.0.0", 22)),  # noqa: S104
        ("[::]:22", ("::", 22)),
        ("*:8080", ("*", 8080)),
        ("127.0.0.53%lo:53", ("127.0.0.53", 53)),
        ("[::ffff:127.0.0.1]:5433", ("127.0.0.1", 5433)),
        ("[fe80::1%eth0]:546", ("fe80::1", 546)),
    ],
)
def test_ss_addresses(text, expected):
    assert hi.split_address(text) == expected


def test_ss_sockets_carry_processes():
    socks = hi.parse_ss(SS)
    assert len(socks) == 9
    painel = next(s for s in socks if s["port"] == 8081)
    assert painel["address"] == "127.0.0.1"
    assert [p["pid"] for p in painel["processes"]] == [500, 501]
    assert socks[5]["proto"] == "udp"


def test_cgroup_gives_owning_service_or_none_for_stray_process():
    assert hi.unit_from_cgroup(CGROUPS[402]) == "e-SUS-PEC.service"
    assert hi.unit_from_cgroup(CGROUPS[87]) is None
    assert hi.unit_from_cgroup(CGROUPS[700]) == "intruso.service"  # cgroup v1 named hierarchy
    assert hi.unit_from_cgroup("") is None


@pytest.mark.nt("NT-inapta-1")
def test_intruders_are_flagged_with_the_right_action():
    violations = hi.compare(_inventory(), WHITELIST)
    pkgs = _by(violations, "package")
    assert pkgs["telnetd"]["action"] == "remove"
    assert pkgs["openbsd-inetd"]["reason"] == "denied"
    assert "rsh-server" not in pkgs  # only config files left
    assert pkgs["acl"] == {**pkgs["acl"], "reason": "unlisted", "action": "none"}  # report only, never removed
    assert pkgs["base-files"]["action"] == "none"  # denied by mistake, but essential: protected
    assert "cron" not in pkgs and "libc6" not in pkgs and "zstd" not in pkgs
    svcs = _by(violations, "service")
    assert set(svcs) == {"openbsd-inetd.service", "intruso.service"}
    assert all(v["action"] == "mask" for v in svcs.values())
    socks = {(v["port"], v["address"]): v for v in violations if v["kind"] == "socket"}
    assert socks[(9999, "0.0.0.0")]["action"] == "kill"  # stray process, no unit  # noqa: S104
    assert socks[(9999, "0.0.0.0")]["pids"] == [87]  # noqa: S104
    assert socks[(9998, "0.0.0.0")]["action"] == "mask"  # noqa: S104
    assert socks[(23, "0.0.0.0")]["units"] == ["openbsd-inetd.service"]  # noqa: S104
    assert socks[(8081, "127.0.0.1")]["action"] == "mask"  # ubs-painel not whitelisted yet
    assert (22, "0.0.0.0") not in socks and (5433, "127.0.0.1") not in socks and (8080, "*") not in socks  # noqa: S104
    summary = hi.summarize(_inventory(), violations)
    assert summary["denied_packages_installed"] == ["base-files", "inetutils-telnetd", "openbsd-inetd", "telnetd"]


def test_site_override_allows_one_more_service_and_its_socket():
    whitelist = dict(WHITELIST)
    whitelist["services_allowed"] = WHITELIST["services_allowed"] + ["ubs-painel.service"]
    violations = hi.compare(_inventory(), whitelist)
    socks = {v["port"]: v for v in violations if v["kind"] == "socket"}
    assert "ubs-painel.service" not in _by(violations, "service")
    # an allowed name does not allow an unlisted port: the listener's unit is masked all the same
    assert socks[8081]["action"] == "mask" and socks[8081]["units"] == ["ubs-painel.service"]
    whitelist["sockets_allowed"] = WHITELIST["sockets_allowed"] + [
        {"port": 8081, "addresses": ["loopback"], "units": ["ubs-painel.service"]}
    ]
    assert 8081 not in {v["port"] for v in hi.compare(_inventory(), whitelist) if v["kind"] == "socket"}


# Look-alikes: names that match the whitelist or the protected patterns, listening where they may not.
LOOKALIKE_SS = """\
tcp   LISTEN 0      5            0.0.0.0:9991       0.0.0.0:*    users:(("python3",pid=801,fd=3))
tcp   LISTEN 0      5            0.0.0.0:9992       0.0.0.0:*    users:(("python3",pid=802,fd=3))
tcp   LISTEN 0      5            0.0.0.0:9993       0.0.0.0:*    users:(("python3",pid=803,fd=3))
tcp   LISTEN 0      5              [::1]:5433          [::]:*    users:(("python3",pid=804,fd=3))
udp   UNCONN 0      0          127.0.0.1:53         0.0.0.0:*    users:(("python3",pid=804,fd=4))
tcp   LISTEN 0      244        127.0.0.1:5433       0.0.0.0:*    users:(("postgres",pid=310,fd=6))
tcp   LISTEN 0      50                 *:8080             *:*    users:(("java",pid=402,fd=12))
tcp   LISTEN 0      50                 *:8443             *:*    users:(("java",pid=402,fd=13))
tcp   LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=55,fd=3))
tcp   LISTEN 0      128          0.0.0.0:111        0.0.0.0:*    users:(("systemd",pid=1,fd=40))
"""
LOOKALIKE_UNITS = {
    801: "sesdf-esus-intruso.service",
    802: "getty@x.service",
    803: "systemd-falso.service",
    804: "falso-dns.service",
    310: "e-SUS-AB-PostgreSQL.service",
    402: "e-SUS-PEC.service",
    55: "ssh.service",
    1: None,
}
LOOKALIKE_WHITELIST = {
    "services_allowed": [
        "e-SUS-PEC.service",
        "e-SUS-AB-PostgreSQL.service",
        "ssh.service",
        "getty@*.service",
        "sesdf-esus-*.service",
    ],
    "services_protected": ["systemd-*.service"],
    "services_never_stop": ["e-SUS-PEC.service", "e-SUS-AB-PostgreSQL.service", "ssh.service"],
    "sockets_allowed": [
        {"port": 8080, "addresses": ["any"], "units": ["e-SUS-PEC.service"]},
        {"port": 5433, "addresses": ["loopback"], "units": ["e-SUS-AB-PostgreSQL.service"]},
        {"port": 22, "addresses": ["any"], "units": ["ssh.service"]},
        {"port": 53, "proto": "udp", "addresses": ["loopback"], "units": ["systemd-resolved.service"]},
    ],
}


def _lookalike_violations():
    sockets = hi.parse_ss(LOOKALIKE_SS)
    for sock in sockets:
        for proc in sock["processes"]:
            proc["unit"] = LOOKALIKE_UNITS[proc["pid"]]
    return {(v["port"], v["address"]): v for v in hi.compare({"sockets": sockets}, LOOKALIKE_WHITELIST)}


@pytest.mark.parametrize(
    "port, unit",
    [(9991, "sesdf-esus-intruso.service"), (9992, "getty@x.service"), (9993, "systemd-falso.service")],
)
def test_whitelisted_or_protected_name_does_not_allow_an_unlisted_listener(port, unit):
    v = _lookalike_violations()[(port, "0.0.0.0")]  # noqa: S104
    assert v["reason"] == "unlisted" and v["action"] == "mask" and v["units"] == [unit]
    assert f"{unit}: python3[{800 + port - 9990}]" in v["detail"]  # the report names the unit, process and pid


@pytest.mark.parametrize("key", [(5433, "::1"), (53, "127.0.0.1")])
def test_allowed_port_and_address_held_by_another_unit_is_flagged(key):
    v = _lookalike_violations()[key]
    assert v["reason"] == "wrong_unit" and v["action"] == "mask" and v["units"] == ["falso-dns.service"]
    assert "falso-dns.service: python3[804]" in v["detail"] and "outro dono" in v["detail"]


def test_owners_of_allowed_sockets_pass_and_protected_owners_are_only_reported():
    violations = _lookalike_violations()
    assert (5433, "127.0.0.1") not in violations and (8080, "*") not in violations
    assert (22, "0.0.0.0") not in violations  # noqa: S104
    pec_extra = violations[(8443, "*")]  # the PEC's own unit on an unlisted port: red, never stopped
    assert pec_extra["action"] == "none" and pec_extra["units"] == ["e-SUS-PEC.service"]
    assert "dono protegido" in pec_extra["detail"]
    pid1 = violations[(111, "0.0.0.0")]  # noqa: S104  # systemd PID 1 itself: never killed
    assert pid1["action"] == "none" and pid1["units"] == [] and "systemd (PID 1)" in pid1["detail"]


def test_rule_units_are_normalized():
    (rule,) = hi.normalize_socket_rules([{"port": 22, "units": "ssh.service"}])
    assert rule["units"] == ["ssh.service"]
    assert hi.normalize_socket_rules([{"port": 22}])[0]["units"] == []


def test_database_on_all_addresses_is_a_wrong_address_not_a_kill():
    inv = {
        "packages": [],
        "services": [],
        "sockets": hi.parse_ss('tcp LISTEN 0 244 0.0.0.0:5433 0.0.0.0:* users:(("postgres",pid=310,fd=6))\n'),
    }
    inv["sockets"][0]["processes"][0]["unit"] = "e-SUS-AB-PostgreSQL.service"
    (v,) = hi.compare(inv, {**WHITELIST, "services_never_stop": ["e-SUS-AB-PostgreSQL.service"]})
    assert v["reason"] == "wrong_address" and v["action"] == "none"
    assert "não permitido" in v["detail"]


@pytest.mark.parametrize(
    "addr, allowed, ok",
    [
        ("10.1.2.3", ["10.1.0.0/16"], True),
        ("10.2.2.3", ["10.1.0.0/16"], False),
        ("0.0.0.0", ["10.1.0.0/16"], False),  # noqa: S104
        ("::1", ["loopback"], True),
        ("127.0.0.1", ["127.0.0.1"], True),
        ("*", ["any"], True),
        ("*", ["loopback"], False),
    ],
)
def test_address_rules(addr, allowed, ok):
    assert hi._address_allowed(addr, allowed) is ok


@pytest.mark.parametrize("rule", [{"proto": "tcp"}, {"port": "http"}, {"port": 1, "proto": "sctp"}, "22"])
def test_malformed_socket_rule_is_a_clear_error(rule):
    with pytest.raises(PecError, match="allowed socket #1"):
        hi.normalize_socket_rules([rule])


def _fake_tool(tmp_path, name, out, rc=0):
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\ncat <<'__EOF__'\n{out}__EOF__\nexit {rc}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_collect_runs_the_three_listings_in_one_pass(tmp_path):
    proc_root = tmp_path / "proc"
    for pid, text in CGROUPS.items():
        os.makedirs(proc_root / str(pid))
        (proc_root / str(pid) / "cgroup").write_text(text)
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(
        "#!/bin/sh\nif [ \"$1\" = list-unit-files ]; then cat <<'A'\n"
        + UNIT_FILES
        + "A\nelse cat <<'B'\n"
        + UNITS
        + "B\nfi\n"
    )
    systemctl.chmod(0o755)
    inv = hi.collect(
        dpkg_query=_fake_tool(tmp_path, "dpkg-query", DPKG),
        systemctl=str(systemctl),
        ss=_fake_tool(tmp_path, "ss", SS),
        proc_root=str(proc_root),
    )
    assert len(inv["packages"]) == 11
    assert {s["name"] for s in inv["services"]} >= {"ssh.service", "intruso.service"}
    assert [p["unit"] for s in inv["sockets"] for p in s["processes"] if p["pid"] == 87] == [None]


def test_collect_failure_says_what_failed(tmp_path):
    with pytest.raises(PecError, match="listing installed packages"):
        hi.collect(dpkg_query=_fake_tool(tmp_path, "dpkg-query", "", rc=2), systemctl="true", ss="true")
    with pytest.raises(PecError, match="not found"):
        hi.collect(dpkg_query=str(tmp_path / "nope"))
