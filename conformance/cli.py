"""The `tcpconf` command.

    tcpconf sweep [CASES...] [pytest options]   run cases against a target (pytest)
    tcpconf explore --target T --count N        sequences nobody wrote, judged by the
                                                reference model (tcpconf explore --help)
    tcpconf lint CASES...                       check case files without running them
    tcpconf compare OLD.json NEW.json           what changed between two sweeps
    tcpconf report RESULTS.json... -o DIR       draw the report of one sweep again, or of
                                                several (shards, devices) as one matrix
    tcpconf baseline draft RESULTS.json         a baseline of a sweep's deviations, to review

CASES are case files or folders of them; a name that is no path here but a
folder of the built-in catalogue (handshake, rst, middlebox, ...) means that
folder, and no CASES at all means the whole catalogue.  A sweep is pytest
with the suite's plugin: every pytest option works (-k, -m, -x, --lf, -n),
and so do the suite's (--target, --baseline, --report; pytest --help lists
them).  Exit status: 0 conformant (or only known deviations), 1 a deviation,
2 interrupted, 3 the tool could not run or decide a case, 4 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import CATALOGUE, __version__
from .summary import COULD_NOT_RUN, NON_CONFORMANT, USAGE

# What a sweep writes unless told otherwise (as ./run sweep).
REPORTS = "reports"
WORKERS = "auto"     # three per stack swept, 4 to 12 (plugin/workers.py)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(f"tcpconf {__version__}")
        return 0
    if argv[:1] == ["sweep"]:
        return sweep(argv[1:])
    if argv[:1] == ["explore"]:
        from .explore.cli import main as explore
        return explore(argv[1:])
    parser = argparse.ArgumentParser(prog="tcpconf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sweep", help="run cases against a target (pytest options follow)")
    lint_cmd = commands.add_parser("lint", help="check case files without running them "
                                                "(exit 1: an error was found)")
    lint_cmd.add_argument("cases", nargs="*", help="case files or folders (default: the "
                                                   "built-in catalogue)")
    diff = commands.add_parser("compare", help="list what changed between two results files "
                                               "(exit 1: regressed, 3: new errors, 0: neither)")
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    redraw = commands.add_parser(
        "report", help="write the HTML report of a results file, or of several merged into "
                       "one matrix (the shards of a sweep, or several devices)")
    redraw.add_argument("results", type=Path, nargs="+",
                        help="results.json files (one, then DIR, is the older form)")
    redraw.add_argument("-o", "--output", type=Path, metavar="DIR",
                        help="where to write the report (and, merging, results.json and "
                             "copies of the captures)")
    redraw.add_argument("--on-conflict", choices=("error", "first", "last"), default="error",
                        help="a case, target and family found in two inputs with different "
                             "statuses: an error (default), or keep the first or the last")
    baseline = commands.add_parser("baseline", help="draft a baseline from a results file")
    baseline.add_argument("action", choices=["draft"])
    baseline.add_argument("results", type=Path)
    baseline.add_argument("--target", help="whose deviations (default: the only target swept)")
    baseline.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return USAGE if exc.code else 0
    if args.command == "lint":
        return lint(args.cases)
    if args.command == "baseline":
        return draft_baseline(args.results, args.target, args.output)
    return results_command(args)


def results_command(args) -> int:
    """compare and report: they read what a sweep wrote, with no lab."""
    from .compare import compare
    from .results import ResultsError, load_results

    try:
        if args.command == "compare":
            comparison = compare(load_results(args.old), load_results(args.new))
            print("\n".join(comparison.text(str(args.old), str(args.new))))
            return comparison.exit_status
        return report(args)
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return COULD_NOT_RUN


def report(args) -> int:
    """tcpconf report: one results file drawn again, or several merged (merge.py)."""
    from .merge import MergeError, copy_captures, merge
    from .report import write_report   # Jinja2 is needed only here
    from .results import load_results, write_results

    files, output = list(args.results), args.output
    if output is None and len(files) == 2 and files[1].suffix != ".json" \
            and not files[1].is_file():
        files, output = files[:1], files[1]      # tcpconf report RESULTS.json DIR
    if output is None:
        print("tcpconf report: name the report's directory: -o DIR", file=sys.stderr)
        return USAGE
    loaded = [load_results(path) for path in files]
    if len(loaded) == 1:
        index = write_report(output, loaded[0])
    else:
        try:
            merged = merge([(str(path), results) for path, results in zip(files, loaded)],
                           on_conflict=args.on_conflict)
        except MergeError as exc:
            print(f"tcpconf report: {exc}", file=sys.stderr)
            return COULD_NOT_RUN
        output.mkdir(parents=True, exist_ok=True)
        copy_captures(merged, output)
        write_results(output / "results.json", merged)
        index = write_report(output, merged)
        print(f"Merged {len(files)} results files: {len(merged.records)} records on "
              f"{', '.join(merged.targets)}; results: {output / 'results.json'}")
    print(f"Report: {index.resolve().as_uri()}")
    return 0


def case_paths(names: list[str]) -> list[str]:
    """Each name as a path: as given if it exists, else the catalogue's
    folder of that name; the whole catalogue for none."""
    if not names:
        return [str(CATALOGUE)]
    out = []
    for name in names:
        path, sep, node = name.partition("::")
        if not Path(path).exists() and (CATALOGUE / path).exists():
            # A folder or file of the catalogue, perhaps with a case's node id
            # (the report's reproduce command: rst/in-window.yaml::rst.x[ipv4]).
            name = str(CATALOGUE / path) + sep + node
        out.append(name)
    return out


# pytest plugins a sweep of cases never uses, which would be imported and
# registered in every process: Hypothesis's (about 0.6 s of a cold start
# where it is installed), and pytest's own for Python test files (doctest,
# unittest, their fixtures tmpdir, monkeypatch and recwarn, legacypath,
# subtests), pastebin, --setup-only/--setup-plan, stepwise, and
# unraisableexception, whose only work here is collecting the garbage at
# the end, several times over (together about 0.07 s).  Cases are YAML:
# no fixture, collector or option of these applies to them.
UNUSED_PLUGINS = tuple(arg for name in (
    "hypothesispytest", "doctest", "unittest", "tmpdir", "monkeypatch", "recwarn",
    "legacypath", "subtests", "pastebin", "setuponly", "setupplan", "stepwise",
    "unraisableexception")
    for arg in ("-p", f"no:{name}"))


def sweep(args: list[str]) -> int:
    """pytest with the plugin, the case paths first, and the report, JUnit
    and pytest-html files in reports/ unless the options say otherwise."""
    names = []
    while args and not args[0].startswith("-"):
        names.append(args.pop(0))
    missing = [n for n in names if not Path(n.split("::")[0]).exists()
               and not (CATALOGUE / n.split("::")[0]).exists()]
    if missing:
        folders = sorted(p.name for p in CATALOGUE.iterdir() if p.is_dir())
        print(f"tcpconf sweep: {missing[0]}: no such file or folder, and no folder of the "
              f"built-in catalogue ({', '.join(folders)})", file=sys.stderr)
        return USAGE
    given = " ".join(args)
    defaults = []
    if any(a in ("--collect-only", "--co") for a in args):
        given += " --report --junitxml --html"    # collecting writes no report
    if "--report" not in given:
        defaults.append(f"--report={REPORTS}")
    if "--junitxml" not in given:
        defaults.append(f"--junitxml={REPORTS}/junit.xml")
    if "--html" not in given:
        defaults += [f"--html={REPORTS}/pytest.html", "--self-contained-html"]
    if not any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in args):
        defaults += ["-n", WORKERS]
    if not any(a.startswith("--assert") for a in args):
        # pytest rewrites the assert statements of every module of a plugin's
        # distribution, this package's included, parsing and compiling each
        # again where it cannot keep the result; no verdict comes from an assert.
        defaults.append("--assert=plain")
    paths = case_paths(names)
    # A folder of the user's, whatever its name, holds cases.
    declared = [f"--cases={p}" for p in paths if Path(p).is_dir() and p != str(CATALOGUE)]
    # A report directory of its own per run (rundir.py): junit.xml and
    # pytest.html, named in it, go into the run's directory with the report.
    # pytest in this process: a second interpreter would start and import
    # everything again (a tenth of a cold start).
    import pytest
    return int(pytest.main(["-p", "conformance.plugin", *UNUSED_PLUGINS, *paths, *declared,
                            *defaults, *args]))


def draft_baseline(results_path: Path, target: str | None, output: Path | None) -> int:
    """The baseline draft of one target's deviations (baseline_draft.py)."""
    from .baseline_draft import draft
    from .results import ResultsError, load_results

    try:
        results = load_results(results_path)
    except ResultsError as exc:
        print(f"tcpconf baseline: {exc}", file=sys.stderr)
        return COULD_NOT_RUN
    swept = sorted({r["target"] for r in results.records if r["target"]})
    if target is None and len(swept) == 1:
        target = swept[0]
    if target not in swept:
        print(f"tcpconf baseline: name a target with --target: {results_path} holds "
              f"{', '.join(swept) or 'none'}", file=sys.stderr)
        return USAGE
    text = draft(results.records, target)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        print(f"wrote {output}: fill in each FILL IN reason before using it")
    return 0


def lint(names: list[str]) -> int:
    """Load every case file under the paths; print every error (file, line,
    field, what was expected) in file and line order, and a closing count."""
    from .case import CaseError
    from .casefile import load_case_file

    files = []
    for name in case_paths(names):
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
            if not found:
                print(f"{path}: holds no case file (*.yaml)", file=sys.stderr)
                return USAGE
            files += found
        elif path.exists():
            files.append(path)
        else:
            print(f"{path}: no such file or folder", file=sys.stderr)
            return USAGE
    errors, cases, seen = [], 0, {}
    for path in files:
        try:
            loaded = load_case_file(path)
        except CaseError as exc:
            for error in getattr(exc, "errors", [exc]):    # a SourceErrors holds them all
                errors.append((str(path), error.line or 0, str(error)))
            continue
        for case in loaded:
            cases += 1
            first = seen.setdefault(case.id, (path, case.line))
            if first != (path, case.line):
                errors.append((str(path), case.line, f"{path}:{case.line}: id: the case id "
                                                     f"{case.id!r} is already used at "
                                                     f"{first[0]}:{first[1]}"))
    for _path, _line, text in sorted(errors):
        print(text)
    print(f"{len(files)} {'file' if len(files) == 1 else 'files'}, {cases} "
          f"{'case' if cases == 1 else 'cases'}, {len(errors)} "
          f"{'error' if len(errors) == 1 else 'errors'}")
    return NON_CONFORMANT if errors else 0


if __name__ == "__main__":
    sys.exit(main())
