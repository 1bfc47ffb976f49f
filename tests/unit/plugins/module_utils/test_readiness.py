"""readiness: iperf3 JSON, bounded HTTP fallback, neighbour table, homologated list, verdict and reuse."""

import datetime
import json

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import readiness
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
HOMOLOGATED = [{"vendor": "Intelbras", "model": "SG 2404", "mac_prefix": "00:1a:3f"}]


def iperf_json(bps, nbytes=10_000_000):
    return json.dumps(
        {
            "start": {},
            "end": {
                "sum_sent": {"bits_per_second": bps * 1.01, "bytes": nbytes},
                "sum_received": {"bits_per_second": bps, "bytes": nbytes},
            },
        }
    )


def neigh_json(*rows):
    return json.dumps([{"dst": dst, "dev": "eth0", "lladdr": mac, "state": [state]} for dst, mac, state in rows])


class FakeRunner:
    """Answers iperf3 and ip -j neigh; records every command."""

    def __init__(self, iperf=(0, "", ""), neigh=(0, "[]", "")):
        self.iperf, self.neigh, self.calls = iperf, neigh, []

    def run(self, argv, timeout):
        self.calls.append((argv, timeout))
        return self.iperf if argv[0] == "iperf3" else self.neigh


def params(**overrides):
    base = {
        "target": "10.88.0.50",
        "method": "auto",
        "iperf3_port": 5201,
        "reverse": False,
        "http_url": "",
        "max_seconds": 5,
        "max_bytes": 20_000_000,
        "min_mbps": 16.0,
        "link": {"type": "gdfnet", "nominal_mbps": 20},
        "declared_equipment": [],
        "homologated": HOMOLOGATED,
        "ignore_addresses": [],
        "group": "ubs_aptas",
        "max_age_days": 30,
        "force": False,
    }
    base.update(overrides)
    return base


@pytest.mark.nt("NT-aptidao-1")
def test_iperf3_received_rate_is_the_measurement():
    assert readiness.parse_iperf3(iperf_json(38_200_000)) == (38.2, 10_000_000)


def test_iperf3_error_text_is_reported():
    with pytest.raises(PecError, match="unable to connect to server"):
        readiness.parse_iperf3(json.dumps({"start": {}, "end": {}, "error": "unable to connect to server"}))


def test_iperf3_without_json_is_a_clear_error():
    with pytest.raises(PecError, match="did not print JSON"):
        readiness.parse_iperf3("iperf3: error - something\n")


def test_iperf3_is_bounded_in_seconds_and_bytes_and_only_toward_the_target():
    runner = FakeRunner(iperf=(0, iperf_json(30e6), ""))
    readiness.measure_iperf3(runner, "10.88.0.50", 5201, 4, 8_000_000)
    argv, timeout = runner.calls[0]
    assert argv[argv.index("-c") + 1] == "10.88.0.50"
    assert argv[argv.index("-t") + 1] == "4"
    # 8 MB in 4 s at most: a 16 Mb/s cap
    assert int(argv[argv.index("-b") + 1]) * 4 / 8 <= 8_000_000
    assert timeout <= 4 + 15


class FakeResponse:
    def __init__(self, size):
        self.left = size

    def read(self, n):
        block = b"x" * min(n, self.left)
        self.left -= len(block)
        return block

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_http_fallback_stops_at_max_bytes():
    ticks = iter(i * 0.01 for i in range(100000))
    result = readiness.measure_http(
        "http://10.88.0.50/blob",
        "10.88.0.50",
        5,
        200_000,
        opener=lambda url, timeout: FakeResponse(10**9),
        clock=lambda: next(ticks),
    )
    assert result["bytes"] == 200_000


def test_http_fallback_stops_at_max_seconds():
    ticks = iter(i * 1.0 for i in range(100000))
    result = readiness.measure_http(
        "http://10.88.0.50/blob",
        "10.88.0.50",
        3,
        10**9,
        opener=lambda url, timeout: FakeResponse(10**9),
        clock=lambda: next(ticks),
    )
    assert result["bytes"] < 10**9 and result["bytes"] <= 3 * 65536


def test_http_fallback_refuses_any_host_but_the_target():
    with pytest.raises(PecError, match="not on the configured target"):
        readiness.measure_http("http://example.org/blob", "10.88.0.50", 3, 10**6, opener=None)


def test_neighbours_answered_only_and_ignored_addresses_left_out():
    text = neigh_json(
        ("10.0.0.1", "00:1A:3F:00:00:01", "REACHABLE"),
        ("10.0.0.2", "aa:bb:cc:00:00:02", "STALE"),
        ("10.0.0.3", None, "FAILED"),
        ("10.0.0.254", "52:54:00:00:00:fe", "REACHABLE"),
    )
    seen = readiness.parse_neigh(text, ignore_addresses=("10.0.0.254",))
    assert [item["mac"] for item in seen] == ["00:1a:3f:00:00:01", "aa:bb:cc:00:00:02"]


def test_apt_when_gdfnet_fast_and_all_homologated():
    runner = FakeRunner(
        iperf=(0, iperf_json(38e6), ""), neigh=(0, neigh_json(("10.0.0.1", "00:1a:3f:00:00:01", "REACHABLE")), "")
    )
    data, measured = readiness.assess(params(), runner, None, NOW)
    assert measured and data["verdict"] == "apta" and data["agrees"] and data["measured_mbps"] == 38.0
    assert data["measured_at"] == "2026-12-01T12:00:00Z"


def test_inapt_lists_every_reason():
    runner = FakeRunner(
        iperf=(0, iperf_json(9.5e6), ""), neigh=(0, neigh_json(("10.0.0.9", "aa:bb:cc:00:00:09", "REACHABLE")), "")
    )
    data = readiness.assess(
        params(
            link={"type": "adsl", "nominal_mbps": 10}, declared_equipment=[{"vendor": "TP-Link", "model": "TL-SG108"}]
        ),
        runner,
        None,
        NOW,
    )[0]
    assert data["verdict"] == "inapta"
    text = " | ".join(data["reasons"])
    for expected in (
        "enlace adsl, não GDFNET",
        "nominal 10 Mb/s",
        "medido 9.5 Mb/s",
        "aa:bb:cc:00:00:09",
        "TP-Link TL-SG108",
    ):
        assert expected in text
    assert data["group"] == "ubs_aptas" and data["agrees"] is False


def test_failed_measurement_with_http_fallback():
    runner = FakeRunner(iperf=(1, json.dumps({"error": "unable to connect"}), ""))
    data = readiness.assess(
        params(http_url="http://10.88.0.50/blob"), runner, None, NOW, opener=lambda url, timeout: FakeResponse(300_000)
    )[0]
    assert data["measurement"]["method"] == "http"


def test_failed_measurement_is_inapt_with_the_error():
    runner = FakeRunner(iperf=(1, json.dumps({"error": "unable to connect"}), ""))
    data = readiness.assess(params(), runner, None, NOW)[0]
    assert data["verdict"] == "inapta" and data["measured_mbps"] is None
    assert any("unable to connect" in reason for reason in data["reasons"])


def test_missing_link_facts_are_reasons_naming_the_variable():
    runner = FakeRunner(iperf=(0, iperf_json(38e6), ""))
    data = readiness.assess(params(link={}), runner, None, NOW)[0]
    assert any("sesdf_esus_enlace.type" in reason for reason in data["reasons"])


def test_fresh_observation_is_reused_with_the_same_data():
    runner = FakeRunner(iperf=(0, iperf_json(38e6), ""))
    data = readiness.assess(params(), runner, None, NOW)[0]
    first = {"concern": "readiness", "data": data}
    later = NOW + datetime.timedelta(days=2)
    again, measured = readiness.assess(params(), FakeRunner(), first, later)
    assert not measured and again == data, "the same data: pec_state then keeps the file as it is"


def test_observation_of_another_target_or_too_old_is_measured_again():
    runner = FakeRunner(iperf=(0, iperf_json(38e6), ""))
    data = readiness.assess(params(), runner, None, NOW)[0]
    doc = {"concern": "readiness", "data": data}
    measured = readiness.assess(params(target="10.88.0.51"), runner, doc, NOW)[1]
    assert measured
    measured = readiness.assess(params(), runner, doc, NOW + datetime.timedelta(days=31))[1]
    assert measured


def test_group_change_changes_the_data_but_not_the_measurement():
    runner = FakeRunner(iperf=(0, iperf_json(38e6), ""))
    data = readiness.assess(params(), runner, None, NOW)[0]
    doc = {"concern": "readiness", "data": data}
    again, measured = readiness.assess(params(group="ubs_inaptas"), FakeRunner(), doc, NOW)
    assert not measured and again["agrees"] is False and again != data


def test_no_target_is_refused_before_any_command():
    runner = FakeRunner()
    with pytest.raises(PecError, match="readiness_targets"):
        readiness.assess(params(target=""), runner, None, NOW)
    assert runner.calls == []


def test_bad_homologated_prefix_is_a_clear_error():
    with pytest.raises(PecError, match="aa:bb:cc"):
        readiness.classify_equipment([], [], [{"mac_prefix": "00:1a"}])
