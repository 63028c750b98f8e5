"""gVisor's netstack as a lab target: the suite's agent inside a runsc sandbox.

    tester namespace                     target namespace (the lab's)
    +----------------------+             +-------------------------------------+
    | tester0, no address  | <---------> | target0: no address left on the     |
    | injector, responder  |    veth     |   host side; runsc reads it through |
    +----------------------+             |   an AF_PACKET socket               |
                                         | runsc sandbox (ptrace platform):    |
                                         |   netstack owns 198.18.0.2 and      |
                                         |   2001:2::2; the agent runs in it   |
                                         +-------------------------------------+

The parts, each in its module:

* ``target.py``: :class:`GvisorLab`, the suite's target (the lab, the sandbox in
  it, the states netstack can show, a crashed sandbox restarted);
* ``sandbox.py``: :class:`GvisorSandbox`, one sandbox's lifetime: the
  addresses runsc takes from the host side and the suite puts back, start and
  stop, and what the report says about it;
* ``runsc.py``: runsc's flags and command lines, the traps they avoid, the
  sandbox's directory and runsc's logs in it, and the clean-up after runs that
  were killed;
* ``bundle.py``: the OCI bundle (the host's / read-only, the agent's bootstrap);
* ``processes.py``: the processes runsc starts, found and ended by PID.
"""

from .processes import descendants
from .runsc import reap_stale_sandboxes
from .sandbox import GvisorError, GvisorSandbox
from .target import GvisorLab

__all__ = ["GvisorError", "GvisorLab", "GvisorSandbox", "descendants", "reap_stale_sandboxes"]
