"""The lab without root (conformance/rootless.py): an unprivileged user sweeps in
a user namespace and leaves nothing behind; where the kernel does not allow it,
the user is told why, with exit status 3.

The project's tests run as root, so these drop to nobody (uid 65534) with
setpriv.  No test changes a machine setting: the refusals are a stub `unshare`
and facts handed to the function that explains them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conformance import lab, rootless
from conformance.rootless import Facts, obstacle
from conformance.summary import COULD_NOT_RUN

from .conftest import REPO, lab_namespaces

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
USER_PATH = "/usr/local/bin:/usr/bin:/bin"      # a Debian user's: no sbin directories
CASE = "cases/handshake/passive-open.yaml"

needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="drops from root to nobody with setpriv")


@pytest.fixture
def nobody_dir():
    """A fresh directory nobody owns (pytest's tmp_path is root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="tcpconf-rootless-"))
    os.chown(path, NOBODY, NOBODY)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def nobody_env(home: Path, path: str = USER_PATH) -> dict:
    # No USER or LOGNAME, as under setpriv: the entry point names the user itself.
    return {"HOME": str(home), "PATH": path, "LANG": "C.UTF-8"}


def require_python_for_nobody() -> None:
    """setpriv execs with root's capabilities still held, so only access(2) as
    nobody tells whether nobody can run this Python inside the namespace."""
    readable = subprocess.run([*AS_NOBODY, "test", "-r", str(REPO / "conformance/rootless.py")])
    if readable.returncode != 0:
        pytest.skip(f"nobody cannot read this checkout ({REPO}), so cannot sweep from it")
    check = subprocess.run([*AS_NOBODY, "sh", "-c", 'test -x "$0"', sys.executable])
    if check.returncode != 0:
        pytest.fail(f"nobody cannot run {sys.executable} (it is "
                    f"{os.path.realpath(sys.executable)}): as root, './run install' makes "
                    ".venv use Debian's /usr/bin/python3, which every user can run",
                    pytrace=False)


# The sweep as nobody: /run/netns as on this machine, and missing (a fresh boot
# before any `ip netns add`), which root hides here with a tmpfs over /run in a
# mount namespace of the test's own.
WITHOUT_RUN_NETNS = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                     'mount -t tmpfs tcpconf-test /run && exec "$@"', "sh"]


@needs_root
@pytest.mark.parametrize("prefix", [[], WITHOUT_RUN_NETNS],
                         ids=["run-netns-exists", "no-run-netns"])
def test_nobody_sweeps_in_a_user_namespace(prefix, nobody_dir):
    """A real small sweep as nobody passes, and no lab namespace of it shows up
    in the machine's own namespace list, during the run or after."""
    require_python_for_nobody()
    report = nobody_dir / "report"
    argv = [*prefix, *AS_NOBODY, sys.executable, "-m", "conformance.rootless", CASE,
            "--family", "ipv4", "-n", "0", "-p", "no:cacheprovider", "--report", str(report)]
    log = nobody_dir / "output"
    with open(log, "w") as out:
        child = subprocess.Popen(argv, cwd=REPO, env=nobody_env(nobody_dir), stdout=out,
                                 stderr=subprocess.STDOUT)
    # Every exec on the way (setpriv, unshare, the entry point, pytest) keeps
    # this process id, which names the lab's namespaces.
    ours = f"{lab.PREFIX}-{child.pid}-"
    seen = set()
    try:
        while child.poll() is None:
            seen |= {name for name in lab_namespaces() if name.startswith(ours)}
            time.sleep(0.05)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=120)
    output = log.read_text()
    assert child.returncode == 0, output
    assert "Traceback" not in output, output
    results = json.loads((report / "latest" / "results.json").read_text())
    assert results["records"] and {rec["status"] for rec in results["records"]} == {"pass"}
    assert f"({ours}1-tester/" in results["run"]["targets"]["linux"]["link"]
    seen |= {name for name in lab_namespaces() if name.startswith(ours)}
    assert not seen


@needs_root
def test_a_refused_namespace_is_explained_with_exit_status_3(nobody_dir):
    """Where unshare is refused, the entry point says so, with unshare's own
    words and what may cause it, exits 3, and never starts pytest."""
    require_python_for_nobody()
    stub = nobody_dir / "bin"
    stub.mkdir()
    (stub / "unshare").write_text("#!/bin/sh\n"
                                  "echo 'unshare: unshare failed: Operation not permitted' >&2\n"
                                  "exit 1\n")
    for path in (nobody_dir, stub, stub / "unshare"):
        path.chmod(0o755)
    child = subprocess.run([*AS_NOBODY, sys.executable, "-m", "conformance.rootless", CASE],
                           cwd=REPO, env=nobody_env(nobody_dir, f"{stub}:{USER_PATH}"),
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == COULD_NOT_RUN, child.stderr
    assert "cannot build the lab without root" in child.stderr
    assert "Operation not permitted" in child.stderr
    assert "user namespace" in child.stderr and "Or run as root" in child.stderr
    assert "Traceback" not in child.stderr and "test session starts" not in child.stdout


@pytest.mark.parametrize("facts, words", [
    (Facts("/usr/bin/unshare", "unshare failed: Operation not permitted",
           max_user_namespaces="0"), "user.max_user_namespaces = 0"),
    (Facts("/usr/bin/unshare", "unshare failed: No space left on device",
           max_user_namespaces="10"), "limit of user namespaces is reached"),
    (Facts("/usr/bin/unshare", "unshare failed: Operation not permitted",
           max_user_namespaces="15000", unprivileged_userns_clone="0"),
     "sysctl -w kernel.unprivileged_userns_clone=1"),
    (Facts("/usr/bin/unshare", "write failed /proc/self/uid_map: Operation not permitted",
           max_user_namespaces="15000", apparmor_restrict="1"),
     "kernel.apparmor_restrict_unprivileged_userns = 1"),
    (Facts("/usr/bin/unshare", "unshare failed: Operation not permitted",
           max_user_namespaces="15000"), "seccomp profile"),
    (Facts(None), "apt-get install util-linux"),
], ids=["switched-off", "limit-reached", "debian-clone-off", "ubuntu-apparmor",
        "container", "no-unshare"])
def test_each_refusal_names_its_cause(facts, words):
    """The message names the setting (or the likely cause) a user can act on,
    and quotes unshare's own error."""
    message = obstacle(facts)
    assert words in message, message
    if facts.error:
        assert facts.error in message


def test_an_allowed_namespace_is_no_obstacle():
    assert obstacle(Facts("/usr/bin/unshare", None, max_user_namespaces="15000")) is None


@needs_root
def test_this_machine_allows_it():
    """The probe, as nobody would run it: this lab's machine allows user namespaces."""
    require_python_for_nobody()
    code = ("from conformance import rootless; facts = rootless.probe(); "
            "print(rootless.obstacle(facts) or 'allowed')")
    child = subprocess.run([*AS_NOBODY, sys.executable, "-c", code], cwd=REPO,
                           env=nobody_env(Path("/")), capture_output=True, text=True, timeout=60)
    assert child.stdout.strip() == "allowed", child.stdout + child.stderr


@needs_root
def test_as_root_it_just_runs_pytest():
    child = subprocess.run([sys.executable, "-m", "conformance.rootless", "--version"],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert child.returncode == 0 and "pytest" in child.stdout + child.stderr


def test_preflight_points_a_user_at_the_rootless_way(monkeypatch):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    (problem,) = [p for p in lab.preflight() if "root" in p]
    assert "python -m conformance.rootless" in problem and "user namespace" in problem


@needs_root
def test_run_without_root_installs_nothing_and_says_what_is_missing(nobody_dir):
    """./run as a user, in a checkout where nothing is installed: no apt-get, the
    missing part named with root's one-time ./run install, exit 3; ./run test
    needs root."""
    checkout = nobody_dir / "checkout"
    checkout.mkdir()
    shutil.copy(REPO / "run", checkout / "run")
    shutil.copy(REPO / "pyproject.toml", checkout / "pyproject.toml")
    for path in (nobody_dir, checkout, checkout / "run"):
        path.chmod(0o755)

    def run_as_nobody(command):
        return subprocess.run([*AS_NOBODY, str(checkout / "run"), command],
                              env=nobody_env(nobody_dir), capture_output=True, text=True,
                              timeout=60)

    sweep = run_as_nobody("sweep")
    assert sweep.returncode == COULD_NOT_RUN, sweep.stderr
    assert "not installed yet: the Python packages (there is no .venv)" in sweep.stderr
    assert "installing needs root, once: sudo ./run install" in sweep.stderr
    test = run_as_nobody("test")
    assert test.returncode == COULD_NOT_RUN, test.stderr
    assert "./run test needs root" in test.stderr
    for child in (sweep, test):
        assert "installing" not in child.stderr.replace("installing needs root", "")
    assert not (checkout / ".venv").exists() and not (checkout / "reports").exists()


def test_rootless_keeps_sbin_on_the_path():
    """ethtool, nft and sysctl live in /usr/sbin, which a Debian user's PATH lacks."""
    assert rootless.with_sbin(USER_PATH).split(":")[-2:] == ["/usr/sbin", "/sbin"]
    assert rootless.with_sbin("/usr/sbin:/bin").count("/usr/sbin") == 1
