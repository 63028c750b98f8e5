"""The lab without root: pytest inside a user namespace.

    python -m conformance.rootless [pytest arguments]

The lab needs the powers of root over network namespaces: create them, join
them with a veth pair, set their sysctls and offloads, open packet sockets in
them.  A user namespace whose root is the calling user gives exactly that, over
namespaces it owns and nothing else.  Run with a new network namespace, the
process starts in an empty network (a loopback that is down), so nothing it
does can touch the machine's real interfaces; every namespace it creates
belongs to it and disappears with it, so a lab cannot be left behind.

As root this just runs pytest.  Otherwise it first probes whether the kernel
allows such a namespace here; if not, it says why, in words a user or an
administrator can act on, and exits with status 3 (the tool could not run).
If it does, it re-executes itself under `unshare --user --map-root-user --net
--mount` (Python 3.11 has no os.unshare; util-linux's command does it), gives
`ip netns` a private directory for the names of the lab's namespaces, and runs
pytest there.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass

from .summary import COULD_NOT_RUN

# One user namespace (its root is the calling user), a network namespace owned
# by it (so the lab's namespaces are too) and a mount namespace for the
# private /run/netns below.
UNSHARE_OPTIONS = ("--user", "--map-root-user", "--net", "--mount")

# Where `ip netns` keeps a name for each namespace (iproute2's NETNS_RUN_DIR,
# /var/run/netns, which is /run/netns on Debian).  The real one belongs to the
# machine's root, so the user namespace mounts a tmpfs of its own over it.
NETNS_DIR = "/run/netns"

# The first argument of the process re-executed inside the user namespace.
INSIDE = "--tcpconf-inside-user-namespace"

# Debian gives users a PATH without the sbin directories, where ethtool, nft
# and sysctl live; inside the user namespace the lab runs them as its root.
SBIN_DIRS = ("/usr/sbin", "/sbin")

# The kernel settings that decide whether an unprivileged user may create a
# user namespace.  The last two exist only on some kernels (Debian's and
# Ubuntu's patches; Ubuntu 23.10's AppArmor restriction).
MAX_USER_NAMESPACES = "/proc/sys/user/max_user_namespaces"
USERNS_CLONE = "/proc/sys/kernel/unprivileged_userns_clone"
APPARMOR_RESTRICT = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"


@dataclass
class Facts:
    """What the probe found; `error` is None when the namespace could be made."""

    unshare: str | None                    # util-linux's command, None if missing
    error: str | None = None               # what `unshare ... true` said when it failed
    max_user_namespaces: str | None = None
    unprivileged_userns_clone: str | None = None
    apparmor_restrict: str | None = None


def read_setting(path: str) -> str | None:
    """A /proc/sys value, or None when this kernel has no such setting."""
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def probe() -> Facts:
    """Try to create the namespaces the lab needs, and read the settings that
    may explain a refusal (trying is the only sure test: a container's seccomp
    profile or a security module can refuse what every setting allows)."""
    facts = Facts(unshare=shutil.which("unshare"),
                  max_user_namespaces=read_setting(MAX_USER_NAMESPACES),
                  unprivileged_userns_clone=read_setting(USERNS_CLONE),
                  apparmor_restrict=read_setting(APPARMOR_RESTRICT))
    if facts.unshare is not None:
        try:
            result = subprocess.run([facts.unshare, *UNSHARE_OPTIONS, "true"],
                                    capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            facts.error = str(exc)
        else:
            if result.returncode != 0:
                facts.error = result.stderr.strip() or f"exit status {result.returncode}"
    return facts


def obstacle(facts: Facts) -> str | None:
    """Why the lab cannot be built in a user namespace here, or None if it can."""
    if facts.unshare is None:
        return ("cannot build the lab without root: the 'unshare' command is missing "
                "(install it with 'apt-get install util-linux'), or run as root")
    if facts.error is None:
        return None
    causes = []
    if facts.max_user_namespaces == "0":
        causes.append("user namespaces are switched off (user.max_user_namespaces = 0); "
                      "an administrator can allow them: "
                      "sysctl -w user.max_user_namespaces=15000")
    elif "No space left on device" in facts.error:
        causes.append(f"the limit of user namespaces is reached (user.max_user_namespaces "
                      f"= {facts.max_user_namespaces})")
    if facts.unprivileged_userns_clone == "0":
        causes.append("this kernel lets only root create user namespaces "
                      "(kernel.unprivileged_userns_clone = 0); an administrator can allow "
                      "them: sysctl -w kernel.unprivileged_userns_clone=1")
    if facts.apparmor_restrict == "1":
        causes.append("AppArmor restricts unprivileged user namespaces "
                      "(kernel.apparmor_restrict_unprivileged_userns = 1); an administrator "
                      "can allow them: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, "
                      "or give unshare an AppArmor profile that permits 'userns'")
    if not causes:
        causes.append("no kernel setting here forbids it, so something else does: in a "
                      "container, its seccomp profile or security module (Docker's default "
                      "profile refuses unshare)")
    return ("cannot build the lab without root: the kernel refused to create a user "
            f"namespace ('unshare {' '.join(UNSHARE_OPTIONS)}' said: {facts.error}).\n"
            + "".join(f"  - {cause}\n" for cause in causes)
            + "Or run as root.")


def with_sbin(path: str) -> str:
    parts = path.split(os.pathsep) if path else []
    return os.pathsep.join(parts + [d for d in SBIN_DIRS if d not in parts])


def keep_user_name() -> None:
    """Inside, the user is uid 0, whose name is root; keep the user's own name
    for what is named after the user (getpass reads LOGNAME and USER first):
    pytest's /tmp/pytest-of-root belongs to the machine's root and pytest
    refuses it, /tmp/pytest-of-<user> is the user's own."""
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = str(os.getuid())
    os.environ["LOGNAME"] = os.environ["USER"] = name


def private_netns_dir() -> str | None:
    """As root of the user namespace, in its own mount namespace: give `ip
    netns` an empty tmpfs for its names.  The mount is seen by this process and
    its children only, and goes away with them.  Returns a problem, or None."""
    # /run/netns may not exist yet, and /run belongs to the machine's root, so
    # it cannot be made; a tmpfs over /run (hidden in this namespace only) holds it.
    where = NETNS_DIR if os.path.isdir(NETNS_DIR) else os.path.dirname(NETNS_DIR)
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tcpconf-netns",
                                 where], capture_output=True, text=True)
        error = result.stderr.strip() if result.returncode != 0 else None
    except OSError as exc:
        error = str(exc)
    if error:
        return (f"cannot build the lab without root: mounting a private tmpfs on {where} "
                f"in the user namespace failed: {error}")
    os.makedirs(NETNS_DIR, exist_ok=True)
    return None


def execute(argv: list[str]) -> int:
    """Become `argv`: exec, not a child, so the process id stays, Ctrl-C and
    SIGTERM reach pytest (which tears its lab down) and its exit status is ours."""
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        print(f"cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
    return COULD_NOT_RUN


def pytest_argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", *args]


def main(args: list[str]) -> int:
    os.environ["PATH"] = with_sbin(os.environ.get("PATH", ""))
    if args[:1] == [INSIDE]:
        problem = private_netns_dir()
        if problem:
            print(problem, file=sys.stderr)
            return COULD_NOT_RUN
        return execute(pytest_argv(args[1:]))
    if os.geteuid() == 0:
        return execute(pytest_argv(args))
    facts = probe()
    problem = obstacle(facts)
    if problem:
        print(problem, file=sys.stderr)
        return COULD_NOT_RUN
    keep_user_name()
    return execute([facts.unshare, *UNSHARE_OPTIONS, "--",
                    sys.executable, "-m", "conformance.rootless", INSIDE, *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
