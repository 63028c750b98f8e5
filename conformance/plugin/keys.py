"""The values the plugin's parts share through pytest's stash."""

from __future__ import annotations

import pytest

from ..verdict import Verdict

TARGETS = pytest.StashKey[tuple]()      # the targets' names, in the order given
RUNNERS = pytest.StashKey[dict]()       # target name -> Runner, started on first use
SETTINGS = pytest.StashKey[dict]()      # target name -> its settings, for the summary
BASELINES = pytest.StashKey[dict]()     # target name -> Baseline (when --baseline)
FAMILIES = pytest.StashKey[tuple]()
VERDICT = pytest.StashKey[Verdict]()
STATUS = pytest.StashKey[str]()
CASES_SENT = pytest.StashKey[set]()     # case ids whose case_info this process sent
CASE_IDS = pytest.StashKey[dict]()     # case id -> (file, line) where collection met it first
OUTSIDE = pytest.StashKey[dict]()       # "remote"/"container" -> its RemoteConfig/ContainerConfig
FAULTS = pytest.StashKey[object]()      # --link-faults as a faults.Faults, or None
RUN_DIR = pytest.StashKey[object]()     # --report DIR: this run's directory in it (rundir.py), or None
DESELECTED = pytest.StashKey[list]()    # items left out of the run: {case, target, family, why}
