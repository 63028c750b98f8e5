"""The suite as engineers install it: `pip install .` into a fresh venv, then
`tcpconf sweep` against the lab and plain `pytest` in a folder of the
user's own cases, with nothing of the checkout on the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import CASES, REPO

pytestmark = pytest.mark.lab

USER_CASE = """\
id: mine.{name}
title: my own check that a SYN to a listener draws a SYN-ACK ({name})
requirements: [RFC9293-3.10.7.2-listen-syn]
target: {{role: listener, start: LISTEN}}
steps:
  - send:   {{flags: SYN, seq: 0, mss: 1460}}
  - expect: {{flags: SYN+ACK, ack: 1}}
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with the suite installed from the checkout (not editable)."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    pip = subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", str(REPO)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return root


def run(venv, *argv, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_installed_package_carries_its_catalogue_and_agents(venv, tmp_path):
    found = run(venv, "python", "-c", "import conformance, conformance.targets.tap as t; "
                                      "print(conformance.__file__, conformance.CATALOGUE, "
                                      "t.STACKS_DIR, conformance.__version__)", cwd=tmp_path)
    module, catalogue, stacks, version = found.stdout.split()
    assert str(venv) in module and not module.startswith(str(REPO)), found.stdout
    assert sorted(p.name for p in (CASES).iterdir()) == sorted(
        os.listdir(catalogue)), "the installed catalogue has every folder of cases/"
    assert os.path.exists(os.path.join(stacks, "lwip", "src", "agent.c"))
    assert os.path.exists(os.path.join(stacks, "pytcp", "agent.py"))
    assert version[0].isdigit()
    assert run(venv, "tcpconf", "--version", cwd=tmp_path).stdout.startswith("tcpconf ")


def test_tcpconf_sweeps_the_built_in_catalogue(venv, tmp_path):
    result = run(venv, "tcpconf", "sweep", "handshake", "--target", "linux", "-k",
                 "passive-open", "-n", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # A directory per run, reports/latest pointing at it, junit.xml and pytest.html in it.
    swept = (tmp_path / "reports" / "latest").resolve()
    assert swept.parent == tmp_path / "reports" and swept.name != "latest"
    records = json.loads((swept / "results.json").read_text())["records"]
    assert records and {r["status"] for r in records} == {"pass"}
    for name in ("index.html", "junit.xml", "pytest.html"):
        assert (swept / name).exists(), name
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == sorted(
        [swept.name, "latest"])
    # The answer is the last line.
    assert result.stdout.rstrip().splitlines()[-1].startswith("Exit status 0: conformant")


def test_pytest_runs_a_folder_of_the_users_own_cases(venv, tmp_path):
    (tmp_path / "checks").mkdir()
    for name in ("one", "two", "three"):
        (tmp_path / "checks" / f"{name}.yaml").write_text(USER_CASE.format(name=name))
    # Named by the ini: plain pytest finds them, the plugin loaded by its entry point.
    (tmp_path / "pytest.ini").write_text("[pytest]\ntcpconf_cases = checks\n")
    result = run(venv, "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "6 passed" in result.stdout
    # Without the ini, the folder is not mistaken for nothing: the error says how.
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    result = run(venv, "pytest", "-q", "-p", "no:cacheprovider", "checks", cwd=tmp_path)
    assert result.returncode == 4 and "pass --cases checks" in result.stderr, result.stderr
    # tcpconf sweep takes any folder.
    result = run(venv, "tcpconf", "sweep", "checks", "-n", "0", "-p", "no:cacheprovider",
                 cwd=tmp_path)
    assert result.returncode == 0 and "6 passed" in result.stdout, result.stdout[-2000:]
