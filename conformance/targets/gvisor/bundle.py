"""The OCI bundle runsc runs: the host's / read-only, the agent as the process.

The root file system is the host's own, bound read-only, so the host's
python3 runs inside the sandbox; the process is the agent's bootstrap (the
client sends the agent's source over stdin); the network namespace is the
lab's target namespace, whose interfaces runsc hands to netstack.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...agent_bootstrap import bootstrap_command

# What the agent needs of a root's powers inside the sandbox, and no more.
CAPABILITIES = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]


def spec(python: str, netns: str) -> dict:
    """The OCI runtime spec of the agent's container; `netns` is the path of the
    network namespace it joins (/var/run/netns/<name>)."""
    return {
        "ociVersion": "1.0.0",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": bootstrap_command(python),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "PYTHONDONTWRITEBYTECODE=1", "LANG=C.UTF-8"],
            "cwd": "/",
            "capabilities": {kind: CAPABILITIES for kind in
                             ("bounding", "effective", "inheritable", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
        },
        "root": {"path": "/", "readonly": True},
        "hostname": "gvisor-target",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "network", "path": netns},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
            ],
        },
    }


def write_bundle(directory: Path, python: str, netns: str) -> None:
    """The bundle runsc reads: config.json in `directory`."""
    (directory / "config.json").write_text(json.dumps(spec(python, netns), indent=1))
