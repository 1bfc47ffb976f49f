"""make bench-report: the regional report of a region of synthetic UBS with a year of nightly history, timed.

For each count of UBS (BENCH_UBS, default "200"): builds the model (report_model), writes BENCH_DAYS (default 365)
nightly history files before the report's day, then times what report_write does on the control node: reading the
history, rendering every page (the region's, all regions', the index, each UBS's and its teams') from the role's
Jinja2 templates with the CSV and the JSON, writing them, and writing the day's history; and, with BENCH_PDF=1 (the
default), laying out the region's page and the all-regions page as PDF/A (WeasyPrint). Prints one table line per
count; nothing is asserted. Run from the repository root with the collection importable (the Makefile does it).
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "plugins", "module_utils"))

from report_fixtures import SETTINGS, TODAY, nightly_year, synthetic_fleet  # noqa: E402

from ansible_collections.sesdf.esus.plugins.module_utils import (  # noqa: E402
    html_pdf,
    report_history,
    report_model,
    report_output,
)

REGION = "regiao_norte"


def du(path):
    return sum(os.path.getsize(os.path.join(d, n)) for d, _s, names in os.walk(path) for n in names)


def run(count, days, pdf):
    with tempfile.TemporaryDirectory(prefix="bench-report-") as work:
        history_dir, dest = os.path.join(work, "historico"), os.path.join(work, "relatorios")
        model = report_model.build(synthetic_fleet(count, REGION), SETTINGS, TODAY)
        nightly_year(history_dir, model, TODAY, days, REGION)
        history_bytes = du(history_dir)
        started = time.perf_counter()
        model = report_model.build(synthetic_fleet(count, REGION), SETTINGS, TODAY)
        built = time.perf_counter()
        history = report_history.load(history_dir, model, TODAY)
        loaded = time.perf_counter()
        files = report_output.render_files(model, history=history)
        rendered = time.perf_counter()
        report_output.write_files(dest, files)
        report_history.save(history)
        written = time.perf_counter()
        pdf_s = None
        if pdf:
            for name in (f"relatorio-{REGION}-{model['date']}.html", f"relatorio-todas-{model['date']}.html"):
                html_pdf.render(files[name], name[: -len(".html")] + ".pdf")
            pdf_s = time.perf_counter() - written
        trends = report_history.region_trends(history, [REGION], TODAY)
        months = sum(1 for m in trends["months"] if trends["pendencias"][m] is not None)
        return {
            "ubs": count,
            "days": days,
            "history_mb": history_bytes / 1e6,
            "months": months,
            "model_s": built - started,
            "history_s": loaded - built,
            "pages_s": rendered - loaded,
            "files": len(files),
            "pages_mb": sum(len(c) for c in files.values()) / 1e6,
            "write_s": written - rendered,
            "total_s": written - started,
            "pdf_s": pdf_s,
        }


def main():
    counts = [int(c) for c in os.environ.get("BENCH_UBS", "200").split()]
    days = int(os.environ.get("BENCH_DAYS", "365"))
    pdf = os.environ.get("BENCH_PDF", "1") == "1"
    print(
        f"bench-report {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPU(s), load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    header = (
        "| UBS | history days | history MB | months with data | model s | history read s | render s (files, MB) "
        "| write s | total s | PDF s (region + all) |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for count in counts:
        r = run(count, days, pdf)
        pdf_text = f"{r['pdf_s']:.1f}" if r["pdf_s"] is not None else "not run (BENCH_PDF=0)"
        print(
            f"| {r['ubs']} | {r['days']} | {r['history_mb']:.2f} | {r['months']} | {r['model_s']:.2f} | "
            f"{r['history_s']:.2f} | {r['pages_s']:.2f} ({r['files']}, {r['pages_mb']:.1f}) | {r['write_s']:.2f} | "
            f"{r['total_s']:.2f} | {pdf_text} |"
        )


if __name__ == "__main__":
    main()
