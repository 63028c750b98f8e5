"""Collection: case files become items, one per case, target and address
family; an item runs its case in setup and judges the verdict in call."""

from __future__ import annotations

from pathlib import Path

import pytest

from .. import runner as runner_module
from ..case import Case, CaseError
from ..casefile import load_case_file
from ..lab import LabError
from ..targets import middlebox_of
from ..verdict import ERROR, FAIL, FIXED, NOT_APPLICABLE, Verdict, judge
from . import keys


def pytest_collect_file(file_path: Path, parent):
    """A YAML file is a case file under a folder named `cases` or declared a
    case folder (--cases DIR, or the ini's tcpconf_cases), or when named on
    the command line; not any YAML of a project whose pytest merely has the
    plugin installed."""
    if file_path.suffix in (".yaml", ".yml") and (
            "cases" in file_path.parts or parent.session.isinitpath(file_path)
            or _in_a_case_folder(file_path, parent.config)):
        return CaseFile.from_parent(parent, path=file_path)
    return None


def case_folders(config) -> list[Path]:
    """The folders declared to hold cases: --cases DIR (from where pytest
    ran) and the ini's tcpconf_cases (from the ini file's folder)."""
    folders = [Path(config.invocation_params.dir, d) for d in config.option.cases or []]
    base = config.inipath.parent if config.inipath else config.rootpath
    folders += [base / d for d in config.getini("tcpconf_cases")]
    return [folder.resolve() for folder in folders]


def _in_a_case_folder(file_path: Path, config) -> bool:
    resolved = file_path.resolve()
    return any(resolved.is_relative_to(folder) for folder in case_folders(config))


class CaseFile(pytest.File):
    def collect(self):
        try:
            cases = load_case_file(self.path, None)
        except CaseError as error:
            # One clear error for this file; the other files still run.
            yield InvalidCase.from_parent(self, name=self.path.name, error=error)
            return
        except Exception as exc:  # noqa: BLE001 - a file must never vanish from the run
            error = CaseError(self.path, None, "",
                              f"the suite could not read it ({type(exc).__name__}: {exc}); "
                              f"this is a bug in the suite, please report it with the file")
            yield InvalidCase.from_parent(self, name=self.path.name, error=error)
            return
        families = self.config.stash[keys.FAMILIES]
        targets = self.config.stash[keys.TARGETS]
        seen = self.config.stash.setdefault(keys.CASE_IDS, {})
        for case in cases:
            where = (self.path, case.line)
            first = seen.setdefault(case.id, where)
            if first != where:
                # results.json, baselines and compare know a case by its id.
                error = CaseError(self.path, case.line, "id", f"the case id {case.id!r} is "
                                                              f"already used at "
                                                              f"{_shown(first[0])}:{first[1]}")
                yield InvalidCase.from_parent(self, name=f"{case.id} (line {case.line})",
                                              error=error)
                continue
            for target in targets:
                outside = self.config.stash[keys.OUTSIDE].get(target)
                if middlebox_of(target, outside) != case.middlebox:
                    continue   # a host case on a middlebox, or the reverse: not for it
                for family in case.families:
                    if family in families:
                        # With one target the item is <id>[ipv4]; with several,
                        # <id>[lwip-ipv4].
                        label = family if len(targets) == 1 else f"{target}-{family}"
                        # The id spelled out, as pytest spells a parametrized
                        # test's: its cache (--lf, --ff) reads "[...]" back as
                        # parameters, and the item must read the same.
                        yield CaseItem.from_parent(self, name=f"{case.id}[{label}]", case=case,
                                                   family=family, target=target,
                                                   nodeid=f"{self.nodeid}::{case.id}[{label}]")


class InvalidCase(pytest.Item):
    def __init__(self, *, error: CaseError, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def setup(self):
        pytest.fail(f"invalid case file: {self.error}", pytrace=False)

    def runtest(self):  # pragma: no cover - setup always fails
        pass

    def reportinfo(self):
        return self.path, (self.error.line or 1) - 1, f"invalid case file {self.path.name}"


class CaseFailed(Exception):
    def __init__(self, verdict: Verdict, text: str | None = None):
        super().__init__(verdict.headline())
        self.verdict, self.text = verdict, text or verdict.explain()


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, family: str, target: str, **kwargs):
        super().__init__(**kwargs)
        self.case, self.family, self.target = case, family, target
        levels = {req.level.lower() for req in case.requirements}
        rfcs = {f"rfc{req.rfc}" for req in case.requirements}
        for mark in sorted(levels | rfcs | {case.role, family} | set(case.marks)):
            _register_mark(self.config, mark)
            self.add_marker(mark)
        self.extra_keyword_matches.update(req.id for req in case.requirements)

    def _runner(self) -> "runner_module.Runner":
        runners = self.config.stash[keys.RUNNERS]
        if self.target not in runners:
            opts = self.config.option
            sysctls = dict(item.split("=", 1) for item in opts.target_sysctl)
            pcap_dir = Path(opts.pcap_dir)
            if len(self.config.stash[keys.TARGETS]) > 1:
                pcap_dir = pcap_dir / self.target
            workerinput = getattr(self.config, "workerinput", None)
            share = ((int(workerinput["workerid"].lstrip("gw")), workerinput["workercount"])
                     if workerinput else (0, 1))
            runners[self.target] = current = runner_module.Runner.for_target(
                self.target, sysctls, pcap_dir,
                outside=self.config.stash[keys.OUTSIDE].get(self.target), share=share,
                confirm=opts.confirm, faults=self.config.stash[keys.FAULTS],
                link_retries=opts.link_retries, fences=opts.fences)
            current.start()
            if not current.failure:
                _apply_nft(current, opts.target_nft)
                record_settings(self.config, self.target, current.target.settings())
        return runners[self.target]

    def setup(self):
        runner = self._runner()
        if runner.failure:
            pytest.fail(f"the target {self.target} could not be started: {runner.failure}",
                        pytrace=False)
        verdict = runner.run(self.case, self.family)
        verdict.label = self.name
        self.stash[keys.VERDICT] = verdict
        if verdict.outcome == NOT_APPLICABLE:
            # Not a verdict, and not the suite failing to decide: the case is
            # written for something this stack does not have.
            pytest.skip(verdict.reason)
        if verdict.outcome == ERROR:
            pytest.fail(verdict.explain(), pytrace=False)

    def deviation(self):
        baseline = self.config.stash[keys.BASELINES].get(self.target)
        return baseline.lookup(self.case.id, self.family) if baseline else None

    def runtest(self):
        verdict = self.stash[keys.VERDICT]
        deviation = self.deviation()
        status = judge(verdict, strict(self.config), deviation)
        self.stash[keys.STATUS] = status
        if status == FAIL and deviation is not None:
            raise CaseFailed(verdict, f"{verdict.explain()}\n  The baseline lists this case "
                                      f"against {deviation.requirement} ({deviation.where}); "
                                      f"it now deviates from another requirement.")
        if status == FAIL:
            raise CaseFailed(verdict)
        if status == FIXED:
            raise CaseFailed(verdict, f"{verdict.headline()}\n  The baseline lists this case "
                                      f"as a known deviation ({deviation.where}: "
                                      f"{deviation.reason}),\n  but the target now conforms: "
                                      f"remove it from the baseline.")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CaseFailed):
            return excinfo.value.text
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.case.line - 1, f"{self.name}: {self.case.title}"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def strict(config) -> bool:
    """pytest's own --strict (strict mode) also makes SHOULD deviations fail,
    as h2spec's --strict does."""
    return bool(config.getini("strict"))


def _register_mark(config, name: str) -> None:
    """Marks come from case files, so they are declared as they are met."""
    if not any(line.split(":")[0].strip() == name for line in config.getini("markers")):
        config.addinivalue_line("markers", f"{name}: from case files")


def _apply_nft(runner, rules) -> None:
    for text in rules:
        hook, _, rule = text.partition(":")
        try:
            runner.target.add_nft_rule(hook.strip(), rule.strip())
        except (LabError, AttributeError) as exc:
            runner.failure = f"cannot apply --target-nft {text!r}: {exc}"
            runner.stop()
            return


def record_settings(config, target: str, settings: dict) -> None:
    """Keep a target's settings for the terminal summary and the report's
    environment table."""
    if target in config.stash[keys.SETTINGS]:
        return
    config.stash[keys.SETTINGS][target] = settings
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return
    title = "Target" if len(config.stash[keys.TARGETS]) == 1 else f"Target {target}"
    config.stash.setdefault(metadata_key, {}).update(
        {f"{title}: {key}": value for key, value in settings.items()})


