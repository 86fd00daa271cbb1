"""`make bench` keeps working: the harness runs every phase in miniature against real nginx, HAProxy, an `ssh -R`
tunnel (sshd on loopback), controller and agent, and its report has a figure (not an error) in every row. The figures themselves are not judged here: speed
is measured by `make bench`, never by a timed test."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import porthole

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_every_phase_and_reports_every_row(tmp_path: Path) -> None:
    out = tmp_path / "results"
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--bin", str(porthole.bin_dir()), "--out", str(out),
            "--work", str(tmp_path / "work"), "--duration", "1", "--rounds", "1", "--bulk-mib", "8",
            "--bulk-rounds", "1", "--agents", "20,50", "--streams", "200", "--isolate-names", "--log-level", "warning"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = list(out.glob("*.md"))
    assert len(reports) == 1, reports
    report = reports[0].read_text()

    # 1. Every configuration on every path: a rate, and no failed or non-2xx request.
    for config in ("h2 1×100", "h2 16×8", "h1 16", "h2 1×1"):
        for path in ("direct", "haproxy", "ssh -R", "porthole"):
            row = re.search(rf"^\| {re.escape(config)} \| {re.escape(path)} \| ([\d,]+) \|.*\| (\d+) \|$", report, re.M)
            assert row, f"no request row for {config} {path}"
            assert int(row.group(1).replace(",", "")) > 0 and row.group(2) == "0", row.group(0)

    # 2. Bulk both ways on every path, SHA-256 checked.
    for direction in ("download", "upload"):
        for path in ("direct", "haproxy", "ssh -R", "porthole"):
            row = re.search(rf"^\| {direction} \| {re.escape(path)} \| ([\d,]+) \|.*\| ok \|$", report, re.M)
            assert row, f"no intact {direction} over {path}:\n" + "\n".join(
                line for line in report.splitlines() if line.startswith(f"| {direction} |"))

    # 3. CPU per 10,000 requests for both Porthole processes, and for sshd and the ssh client.
    for path in ("porthole", "ssh -R"):
        assert re.search(rf"^\| h2 1×100 \| {re.escape(path)} \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", report,
                         re.M), path

    # 4. Idle tunnels: memory per tunnel at both counts, and every tunnel back after the restart.
    for count in ("20", "50"):
        assert re.search(rf"^\| {count} \| [\d.]+ MiB \| [\d.]+ MiB \| [\d.]+ KiB \|", report, re.M), count
    assert re.search(r"all 50 tunnels were back \*\*[\d.]+ s\*\*", report), "restart figure missing"

    # 5. Idle streams: all held, per-stream memory on both processes.
    assert "(200 held of 200)" in report
    for process in ("controller", "agent"):
        assert re.search(rf"^\| {process} \| [\d.]+ MiB \| [\d.]+ MiB \| [\d.-]+ [KM]iB \| [\d.-]+ [KM]?i?B", report,
                         re.M), process

    # 6. Gateway identity against service token: a rate and CPU for each, no errors, and the ratio as a target.
    for kind in ("service token", "gateway identity"):
        row = re.search(rf"^\| {kind} \| ([\d,]+) \| [\d,]+–[\d,]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| (\d+) \|$", report,
                        re.M)
        assert row and int(row.group(1).replace(",", "")) > 0 and row.group(2) == "0", kind
    assert re.search(r"^\| gateway identity request ≤ 1\.10× the controller CPU of a service-token request \| [\d.]+× \|",
                     report, re.M)

    # The run cleaned up after itself: none of its processes is left.
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "work")], capture_output=True, text=True).stdout
    assert not leftover.strip(), f"processes left running: {leftover}"
