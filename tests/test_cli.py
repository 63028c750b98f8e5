"""The tcpconf command's own parts that need no lab (conformance/cli.py)."""

from __future__ import annotations

from conformance import CATALOGUE
from conformance.cli import case_paths, main

GOOD = """\
id: t.good
title: a good case
requirements: [RFC9293-MUST-13]
target: {role: listener, start: LISTEN}
steps:
  - send: {flags: SYN, seq: 0}
  - expect: {flags: SYN+ACK, ack: 1}
"""


def test_lint_names_every_files_error_in_file_order(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD.replace("t.good", "t.other").replace("SYN+ACK", "BOGUS"))
    (tmp_path / "c.yaml").write_text(GOOD)            # the same id again
    assert main(["lint", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'b.yaml'}:7: steps[1].expect.flags")
    assert out[1] == (f"{tmp_path / 'c.yaml'}:1: id: the case id 't.good' is already used at "
                      f"{tmp_path / 'a.yaml'}:1")
    assert out[-1] == "3 files, 2 cases, 2 errors"


MANY_MISTAKES = """id: t.many
title: several mistakes in one file
requirements: [RFC9293-MUST-13, RFC-NOPE]
target: {role: listener, start: ESTABLISHED}
steps:
  - send: {flags: SYNX, seq: snd_nxt + 100}
  - silence: 200 parsecs
  - expect: {flags: ACK, seq: snd_nxtt}
---
id: t.second
title: a second document
requirements: [RFC9293-MUST-13]
target: {role: listener, start: NOWHERE}
steps:
  - send: {flags: RST}
  - silence: 1s
"""


def test_lint_names_every_error_within_a_file_in_line_order(tmp_path, capsys):
    """The schema's errors, then those of each part it found well formed, in each
    document: one run of lint shows them all."""
    (tmp_path / "many.yaml").write_text(MANY_MISTAKES)
    assert main(["lint", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    where = [line.split(": ")[0:2] for line in out[:-1]]
    assert where == [[f"{tmp_path / 'many.yaml'}:3", "requirements[1]"],
                     [f"{tmp_path / 'many.yaml'}:6", "steps[0].send.flags"],
                     [f"{tmp_path / 'many.yaml'}:7", "steps[1].silence"],
                     [f"{tmp_path / 'many.yaml'}:8", "steps[2].expect.seq"],
                     [f"{tmp_path / 'many.yaml'}:13", "target.start"]], out
    assert out[-1] == "1 file, 0 cases, 5 errors"


def test_lint_passes_the_catalogue(capsys):
    assert main(["lint"]) == 0
    assert capsys.readouterr().out.strip().endswith(" 0 errors")


def test_a_catalogue_folder_is_named_by_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert case_paths([]) == [str(CATALOGUE)]
    assert case_paths(["rst"]) == [str(CATALOGUE / "rst")]
    (tmp_path / "rst").mkdir()                          # a folder of the user's wins
    assert case_paths(["rst"]) == ["rst"]


def test_unknown_names_and_commands_are_usage_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "no-such-folder"]) == 4
    assert "no such file or folder, and no folder of the built-in catalogue" in \
        capsys.readouterr().err
    assert main(["frobnicate"]) == 4
    assert main(["lint", "missing"]) == 4
