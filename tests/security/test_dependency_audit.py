"""`make audit` (.ci/dependency_audit.py): a found vulnerability fails, a clean report
passes, and a service that cannot be asked is said loudly without failing CI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "dependency_audit.py"
CLEAN = {"dependencies": [{"name": "django", "version": "5.2.19", "vulns": []}], "fixes": []}
VULNERABLE = {
    "dependencies": [
        {"name": "django", "version": "5.2.19", "vulns": []},
        {
            "name": "pillow",
            "version": "9.0.0",
            "vulns": [{"id": "PYSEC-2022-1", "fix_versions": ["9.0.1"], "aliases": []}],
        },
    ],
    "fixes": [],
}
ALL_SKIPPED = {
    "dependencies": [
        {"name": "django", "skip_reason": "Dependency not found on PyPI and could not be audited"}
    ],
    "fixes": [],
}


def fake_pip_audit(tmp_path: Path, *, osv, pypi) -> Path:
    """A pip-audit stand-in: per service, a JSON report or None for an unreachable host."""
    answers = {"osv": osv, "pypi": pypi}
    script = tmp_path / "pip-audit"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"answers = json.loads({json.dumps(answers)!r})\n"
        "service = sys.argv[sys.argv.index('--vulnerability-service') + 1]\n"
        "report = answers[service]\n"
        "if report is None:\n"
        "    sys.stderr.write('Traceback ...\\nConnectionError: cannot resolve host\\n')\n"
        "    sys.exit(1)\n"
        "print(json.dumps(report))\n"
        "sys.exit(1 if any(d.get('vulns') for d in report['dependencies']) else 0)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def audit(tmp_path: Path, *, osv, pypi, required: bool = False):
    env = {**os.environ, "PIP_AUDIT": str(fake_pip_audit(tmp_path, osv=osv, pypi=pypi))}
    env.pop("KEHU_AUDIT_REQUIRED", None)
    if required:
        env["KEHU_AUDIT_REQUIRED"] = "1"
    return subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_known_vulnerability_fails(tmp_path):
    result = audit(tmp_path, osv=VULNERABLE, pypi=None)
    assert result.returncode == 1
    assert "VULNERABLE pillow 9.0.0: PYSEC-2022-1 (fixed in 9.0.1)" in result.stdout


def test_a_clean_report_passes(tmp_path):
    result = audit(tmp_path, osv=CLEAN, pypi=None)
    assert result.returncode == 0
    assert "1 packages checked, 0 not checked, 0 known vulnerabilities" in result.stdout
    assert "NOT DONE" not in result.stdout


def test_pypi_is_asked_when_osv_cannot_be_reached(tmp_path):
    result = audit(tmp_path, osv=None, pypi=VULNERABLE)
    assert result.returncode == 1 and "(pypi)" in result.stdout


@pytest.mark.parametrize("pypi", [None, ALL_SKIPPED], ids=["unreachable", "all-skipped"])
def test_no_service_is_said_loudly_and_does_not_fail(tmp_path, pypi):
    # pip-audit's own exit status is 0 and it says "No known vulnerabilities found" when
    # every package was skipped; that must not read as a clean audit.
    result = audit(tmp_path, osv=None, pypi=pypi)
    assert result.returncode == 0
    assert "DEPENDENCY AUDIT NOT DONE" in result.stdout
    assert "were NOT checked" in result.stdout
    assert "osv: ConnectionError: cannot resolve host" in result.stdout


def test_no_service_fails_when_the_audit_is_required(tmp_path):
    result = audit(tmp_path, osv=None, pypi=ALL_SKIPPED, required=True)
    assert result.returncode == 2
