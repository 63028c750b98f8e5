"""How the agent gets to the target: its modules, piped ahead of the protocol.

Nothing is installed on the target.  The agent's process is started as
``python3 -S -u -c BOOTSTRAP`` through any command that runs a program over
there with stdin and stdout attached (``ip netns exec NS``, ``ssh host``,
``docker exec -i NAME``, a gVisor sandbox's OCI spec), and the client
writes the modules' sources to its stdin first (AGENT_SOURCE), then the
protocol's lines.  BOOTSTRAP reads each module exactly as many bytes long
as it is, so what follows stays buffered in ``sys.stdin.buffer`` for the
agent to read requests from; it registers each under its name in
``sys.modules`` (in an empty ``conformance`` package, so that nothing of
the target's own files is imported in its place) and runs the agent, last,
as ``__main__``.

The user-space stacks' agents (targets/lwip, targets/pytcp) are programs of
their own: ``--skip-stdin len(AGENT_SOURCE)`` makes them discard it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

# The modules shipped, in the order they are written and run: each imports
# only the standard library and the ones before it.  The last is the agent.
SHIPPED = ("conformance.agent_protocol", "conformance.agent_states", "conformance.agent")
SOURCES = {name: (Path(__file__).parent / (name.split(".")[-1] + ".py")).read_bytes()
           for name in SHIPPED}
# What the client writes to the agent's stdin before the first request.
AGENT_SOURCE: bytes = b"".join(SOURCES[name] for name in SHIPPED)


def bootstrap_command(python: str = "python3") -> list[str]:
    """argv that reads the SHIPPED modules from stdin and runs the agent.

    One ``-c`` argument on one line: a remote shell gets it as one quoted
    word (see agent_argv), and Python 3.6 has no walrus, hence a list
    comprehension for the loop.
    """
    *modules, agent = SHIPPED
    sizes = tuple((name, len(SOURCES[name])) for name in modules)
    code = ";".join([
        "import sys,types",
        "M=sys.modules",
        "r=sys.stdin.buffer.read",
        "p=M['conformance']=types.ModuleType('conformance')",
        "p.__path__=[]",
        # Registered before it runs, as import does.
        "[exec(compile(r(n),m,'exec'),M.setdefault(m,types.ModuleType(m)).__dict__)"
        " for m,n in %r]" % (sizes,),
        "exec(compile(r(%d),'tcpconf-agent','exec'))" % len(SOURCES[agent]),
    ])
    # -S: no site module.  The agent needs the standard library alone, and a
    # virtual environment's site processing (its .pth files) takes longer
    # than everything else the agent does before its hello.
    return [python, "-S", "-u", "-c", code]


def agent_argv(prefix: list[str], python: str = "python3", *,
               remote_shell: bool = False) -> list[str]:
    """``prefix + bootstrap_command(python)``.

    ``remote_shell=True`` is for prefixes that join their arguments into
    one string for a shell on the far side, as ssh does: the bootstrap is
    then passed as a single shell-quoted argument, since unquoted its ``;``
    and parentheses would be parsed by that shell.
    """
    bootstrap = bootstrap_command(python)
    if remote_shell:
        bootstrap = [shlex.join(bootstrap)]
    return list(prefix) + bootstrap
