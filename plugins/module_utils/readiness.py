# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness of a UBS for the migration (technical note: GDFNET link of at least 16 Mb, only CTINF-homologated
equipment on the internal network), measured from the UBS server.

- ``measure_iperf3``: one iperf3 client run toward the configured target only, bounded in seconds (``-t``) and in
  bytes (``-b``: rate cap = max_bytes * 8 / seconds), its ``--json`` parsed by ``parse_iperf3``.
- ``measure_http``: the fallback, a download from a URL on the same target host, stopped at max_bytes or
  max_seconds, whichever comes first.
- ``parse_neigh`` / ``classify_equipment``: ``ip -j neigh`` entries and the inventory's declared equipment against
  CTINF's homologated list (MAC prefixes, vendor/model).
- ``verdict``: apta / inapta with every reason (Portuguese, for the report); the role records it with pec_state.

Commands go through one runner object (``Runner.run(argv, timeout)``), faked by the tests.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.parse

from ansible.module_utils.urls import open_url

from ansible_collections.sesdf.esus.plugins.module_utils._runner import Runner as _Runner
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, parse_ts
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

MIN_MBPS = 16.0
APT_LINK_TYPE = "gdfnet"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_PREFIX = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){2}$")
# Neighbour states that mean "a device answered at this address" (not FAILED / INCOMPLETE / NONE).
_SEEN_STATES = {"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"}


class Runner:
    """``run(argv, timeout)`` -> (rc, stdout, stderr) over ``_runner``: 127 for a missing program, 124 for one that
    did not answer in time (stderr says which)."""

    def __init__(self, runner=None):
        self.runner = runner or _Runner()

    def run(self, argv, timeout):
        proc = self.runner.run(argv, timeout=timeout)
        if proc.missing:
            return 127, "", proc.why()
        if proc.timed_out:
            return 124, proc.stdout, f"{argv[0]}: no answer within {timeout} s"
        if proc.rc is None:
            return 126, "", proc.why()
        return proc.rc, proc.stdout, proc.stderr


def mbps(bits_per_second):
    return round(float(bits_per_second) / 1e6, 2)


def parse_iperf3(text):
    """iperf3 --json output -> (Mb/s received at the far end, bytes). PecError with iperf3's own error text."""
    try:
        doc = json.loads(text or "")
    except ValueError as exc:
        raise PecError(f"iperf3 did not print JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise PecError("iperf3 printed JSON that is not an object")
    if doc.get("error"):
        raise PecError(f"iperf3: {doc['error']}")
    end = doc.get("end") or {}
    for key in ("sum_received", "sum"):
        part = end.get(key)
        if isinstance(part, dict) and part.get("bits_per_second") is not None:
            return mbps(part["bits_per_second"]), int(part.get("bytes") or 0)
    raise PecError("iperf3's JSON has no end.sum_received.bits_per_second (interrupted test?)")


def iperf3_argv(target, port, seconds, max_bytes, reverse=False, binary="iperf3"):
    """The iperf3 client command: bounded in time (-t) and, through the rate cap, in bytes."""
    cap_bits = int(max_bytes * 8 / seconds)
    argv = [
        binary,
        "--json",
        "-c",
        target,
        "-p",
        str(port),
        "-t",
        str(seconds),
        "-b",
        str(cap_bits),
        "--connect-timeout",
        "5000",
    ]
    if reverse:
        argv.append("-R")
    return argv


def measure_iperf3(runner, target, port, seconds, max_bytes, reverse=False):
    rc, out, err = runner.run(iperf3_argv(target, port, seconds, max_bytes, reverse), timeout=seconds + 15)
    if rc == 127:
        raise PecError("iperf3 is not installed on the server")
    try:
        value, sent = parse_iperf3(out)
    except PecError as exc:
        detail = (err or "").strip()
        raise PecError(f"{exc}{' (' + detail + ')' if detail else ''}") from exc
    capped = value >= mbps(max_bytes * 8 / seconds) * 0.98
    return {"method": "iperf3", "mbps": value, "bytes": sent, "at_cap": capped}


def same_host(url, target):
    return (urllib.parse.urlsplit(url).hostname or "").lower() == str(target).lower()


def measure_http(url, target, seconds, max_bytes, opener=None, clock=time.monotonic, chunk=65536):
    """Download from url (on the target host only) until max_bytes or max_seconds, whichever first."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise PecError(f"http_url {url!r} is not an http(s) URL")
    if not same_host(url, target):
        raise PecError(f"http_url {url} is not on the configured target {target}: only the target is measured")
    opener = opener or open_url
    start = clock()
    received = 0
    try:
        with opener(url, timeout=seconds) as response:
            while received < max_bytes and clock() - start < seconds:
                block = response.read(min(chunk, max_bytes - received))
                if not block:
                    break
                received += len(block)
    except OSError as exc:
        raise PecError(f"HTTP transfer from {url} failed: {exc}") from exc
    elapsed = max(clock() - start, 1e-6)
    if received == 0:
        raise PecError(f"HTTP transfer from {url} received nothing")
    return {"method": "http", "mbps": mbps(received * 8 / elapsed), "bytes": received, "at_cap": False}


def normalize_mac(value):
    return str(value or "").strip().lower().replace("-", ":")


def parse_neigh(text, ignore_addresses=()):
    """``ip -j neigh`` -> [{address, mac, dev}] of devices that answered (one per MAC), ignored addresses left out."""
    try:
        rows = json.loads(text or "[]")
    except ValueError as exc:
        raise PecError(f"ip -j neigh did not print JSON ({exc})") from exc
    seen = {}
    for row in rows if isinstance(rows, list) else []:
        mac = normalize_mac(row.get("lladdr"))
        states = set(row.get("state") or [])
        if not _MAC.match(mac) or not states & _SEEN_STATES or row.get("dst") in ignore_addresses:
            continue
        seen.setdefault(mac, {"address": row.get("dst"), "mac": mac, "dev": row.get("dev")})
    return sorted(seen.values(), key=lambda item: item["mac"])


def _homologated_sets(homologated):
    prefixes, models = {}, set()
    for entry in homologated or []:
        prefix = normalize_mac(entry.get("mac_prefix"))
        if prefix:
            if not _PREFIX.match(prefix):
                raise PecError(f"homologated entry {entry!r}: mac_prefix must be the first three octets (aa:bb:cc)")
            prefixes[prefix] = entry.get("vendor") or ""
        if entry.get("vendor") and entry.get("model"):
            models.add((str(entry["vendor"]).lower(), str(entry["model"]).lower()))
    return prefixes, models


def classify_equipment(seen, declared, homologated):
    """Seen neighbours and declared devices against the homologated list -> {seen, declared, not_homologated}."""
    prefixes, models = _homologated_sets(homologated)
    out_seen, out_declared, bad = [], [], []
    for device in seen:
        vendor = prefixes.get(device["mac"][:8])
        item = dict(device, vendor=vendor or None, homologated=vendor is not None)
        out_seen.append(item)
        if vendor is None:
            bad.append({"source": "rede", "mac": device["mac"], "address": device.get("address")})
    for device in declared or []:
        mac = normalize_mac(device.get("mac"))
        key = (str(device.get("vendor") or "").lower(), str(device.get("model") or "").lower())
        ok = key in models or (bool(mac) and mac[:8] in prefixes)
        out_declared.append(dict(device, homologated=ok))
        if not ok:
            bad.append(
                {
                    "source": "inventario",
                    "vendor": device.get("vendor"),
                    "model": device.get("model"),
                    "mac": mac or None,
                }
            )
    return {"seen": out_seen, "declared": out_declared, "not_homologated": bad}


def _device_text(item):
    if item["source"] == "rede":
        return f"{item['mac']} ({item.get('address') or '?'}) visto na rede"
    name = " ".join(part for part in (item.get("vendor"), item.get("model")) if part) or item.get("mac") or "?"
    return f"{name} declarado no inventário"


def verdict(link, measurement, error, equipment, target, min_mbps=MIN_MBPS):
    """apta / inapta and every reason, in Portuguese (what passed when apt, what failed when inapt)."""
    failed, passed = [], []
    link_type = str((link or {}).get("type") or "").lower()
    nominal = (link or {}).get("nominal_mbps")
    if not link_type:
        failed.append("tipo de enlace não declarado no inventário (sesdf_esus_enlace.type)")
    elif link_type != APT_LINK_TYPE:
        failed.append(f"enlace {link_type}, não GDFNET")
    else:
        passed.append("enlace GDFNET")
    if nominal is None:
        failed.append("velocidade nominal do enlace não declarada (sesdf_esus_enlace.nominal_mbps)")
    elif float(nominal) < min_mbps:
        failed.append(f"velocidade nominal {float(nominal):g} Mb/s abaixo de {min_mbps:g} Mb/s")
    else:
        passed.append(f"velocidade nominal {float(nominal):g} Mb/s")
    if error:
        failed.append(f"medição em direção a {target} falhou: {error}")
    elif measurement["mbps"] < min_mbps:
        failed.append(f"medido {measurement['mbps']:g} Mb/s em direção a {target}, abaixo de {min_mbps:g} Mb/s")
    else:
        passed.append(f"medido {measurement['mbps']:g} Mb/s em direção a {target}")
    bad = equipment["not_homologated"]
    if bad:
        failed.extend(f"equipamento não homologado pela CTINF: {_device_text(item)}" for item in bad)
    else:
        passed.append(f"{len(equipment['seen']) + len(equipment['declared'])} equipamento(s), todos homologados")
    return ("inapta", failed) if failed else ("apta", passed)


def agreement(verdict_value, group):
    """(group, agrees): the group CTINF put the UBS in, and whether the measured verdict says the same."""
    expected = {"ubs_aptas": "apta", "ubs_inaptas": "inapta"}.get(group)
    return (group if expected else None), (expected == verdict_value)


def fresh(previous, target, max_age_days, now):
    """The previous observation when it is of the same target and younger than max_age_days (0: never reused)."""
    data = (previous or {}).get("data") if isinstance(previous, dict) else None
    if not isinstance(data, dict) or not max_age_days or data.get("target") != target:
        return None
    stamp = parse_ts(data.get("measured_at"))
    if stamp is None or (now - stamp).total_seconds() > max_age_days * 86400:
        return None
    return data


def target_addresses(target):
    """The target's own addresses (it is the measurement's far end, not equipment of the UBS network)."""
    try:
        return tuple(sorted({info[4][0] for info in socket.getaddrinfo(target, None)}))
    except (OSError, UnicodeError):
        return (target,)


def observe(params, runner, opener=None):
    """Measure toward the target (iperf3, then the HTTP fallback) and read the neighbour table."""
    target = params["target"]
    measurement, errors = None, []
    if params["method"] in ("auto", "iperf3"):
        try:
            measurement = measure_iperf3(
                runner, target, params["iperf3_port"], params["max_seconds"], params["max_bytes"], params["reverse"]
            )
        except PecError as exc:
            errors.append(str(exc))
    if measurement is None and params["method"] in ("auto", "http") and params.get("http_url"):
        try:
            measurement = measure_http(
                params["http_url"], target, params["max_seconds"], params["max_bytes"], opener=opener
            )
        except PecError as exc:
            errors.append(str(exc))
    if measurement is None and not errors:
        errors.append("no measurement method available (method=http needs http_url)")
    rc, out, err = runner.run(["ip", "-j", "neigh", "show"], timeout=10)
    if rc != 0:
        raise PecError(f"cannot read the neighbour table (ip -j neigh show): {(err or '').strip() or rc}")
    seen = parse_neigh(out, tuple(params.get("ignore_addresses") or ()) + target_addresses(target))
    return measurement, "; ".join(errors) if measurement is None else None, seen


def assess(params, runner, previous, now, opener=None):
    """The readiness data of this UBS (the state file's ``data``) and whether the network was measured now."""
    target = params["target"]
    if not target:
        raise PecError("no regional target to measure toward: set readiness_targets for this host's region")
    if params["max_seconds"] < 1 or params["max_bytes"] < 65536:
        raise PecError("max_seconds must be at least 1 and max_bytes at least 65536")
    if params.get("http_url") and not same_host(params["http_url"], target):
        raise PecError(f"http_url {params['http_url']} is not on the configured target {target}")
    old = None if params["force"] else fresh(previous, target, params["max_age_days"], now)
    if old:
        measurement = old.get("measurement")
        error = old.get("measurement_error")
        seen = [{key: item.get(key) for key in ("address", "mac", "dev")} for item in old["equipment"]["seen"]]
        measured_at = old["measured_at"]
    else:
        measurement, error, seen = observe(params, runner, opener)
        measured_at = iso(now)
    equipment = classify_equipment(seen, params.get("declared_equipment"), params.get("homologated"))
    declared_link = params.get("link") or {}
    link = {"type": declared_link.get("type"), "nominal_mbps": declared_link.get("nominal_mbps")}
    value, reasons = verdict(link, measurement, error, equipment, target, params["min_mbps"])
    group, agrees = agreement(value, params.get("group"))
    data = {
        "verdict": value,
        "reasons": reasons,
        "measured_mbps": measurement["mbps"] if measurement else None,
        "measurement": measurement,
        "measurement_error": error,
        "measured_at": measured_at,
        "target": target,
        "link": link,
        "equipment": equipment,
        "group": group,
        "agrees": agrees,
    }
    return data, not old
