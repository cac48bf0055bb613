#!/usr/bin/env python3
"""Dependency audit: pip-audit over the packages installed in the project's environment.

Exit status: 1 when a known vulnerability is found (CI fails), 0 when none is found, and
also 0, with a loud warning, when no vulnerability service could be asked: a network
outage must not block a release, but nobody may read an unchecked run as a clean one.
Set KEHU_AUDIT_REQUIRED=1 to make "could not check" fail too (exit 2).

pip-audit itself prints "No known vulnerabilities found" and exits 0 when the service
answered "not found" for every package (what the PyPI service does when the per-version
JSON API cannot be reached), so its verdict is read from its JSON report here, package by
package, never from its exit status alone. OSV is asked first, PyPI second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SERVICES = ("osv", "pypi")
PIP_AUDIT = os.environ.get("PIP_AUDIT") or str(Path(sys.executable).with_name("pip-audit"))
BANNER = "!" * 78


def run(service: str) -> tuple[dict | None, str]:
    """pip-audit's JSON report from ``service``, or None and why there is none."""
    command = [
        PIP_AUDIT,
        "--local",
        "--skip-editable",
        "--vulnerability-service",
        service,
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--timeout",
        "20",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    try:
        return json.loads(done.stdout), ""
    except json.JSONDecodeError:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return None, (lines[-1] if lines else f"exit status {done.returncode}, no report")[:300]


def main() -> int:
    failures: list[str] = []
    for service in SERVICES:
        report, why = run(service)
        if report is None:
            failures.append(f"{service}: {why}")
            continue
        dependencies = report.get("dependencies", [])
        audited = [d for d in dependencies if "skip_reason" not in d]
        skipped = [d for d in dependencies if "skip_reason" in d]
        if not audited:
            failures.append(
                f"{service}: answered for none of {len(dependencies)} packages "
                f"({skipped[0]['skip_reason'] if skipped else 'empty report'})"
            )
            continue
        found = [(d, v) for d in audited for v in d.get("vulns", [])]
        print(
            f"dependency audit ({service}): {len(audited)} packages checked, "
            f"{len(skipped)} not checked, {len(found)} known vulnerabilities"
        )
        for d in skipped:
            print(f"  not checked: {d['name']}: {d['skip_reason']}")
        for d, v in found:
            fixes = ", ".join(v.get("fix_versions", [])) or "no fixed version yet"
            name = f"{d['name']} {d.get('version', '')}"
            print(f"  VULNERABLE {name}: {v.get('id')} (fixed in {fixes})")
        return 1 if found else 0

    message = [
        BANNER,
        "DEPENDENCY AUDIT NOT DONE: no vulnerability service could be asked.",
        "The installed packages were NOT checked for known vulnerabilities.",
        *(f"  {line}" for line in failures),
        "Run `make audit` where osv.dev or PyPI's JSON API is reachable before releasing.",
        BANNER,
    ]
    print("\n".join(message), flush=True)
    return 2 if os.environ.get("KEHU_AUDIT_REQUIRED") in {"1", "true", "yes"} else 0


if __name__ == "__main__":
    sys.exit(main())
