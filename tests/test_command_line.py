"""The command line as Python's habits have it: a ``bert`` script with ``--version``, a help that
says what each command reads and writes, in plain text, and one-line task docs in ``doit list``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bert import __version__
from bert.__main__ import build_parser, main
from bert.workflow.stages import STAGES

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "bert"


def commands() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"bert-from-scratch {__version__}\n"


def test_every_command_says_what_it_reads_and_writes():
    found = commands()
    assert set(found) >= {stage.name for stage in STAGES} | {"show", "predict", "fill-mask"}
    for name, parser in found.items():
        assert parser.description, name
        if name in {stage.name for stage in STAGES}:
            assert " Reads: " in parser.description and " Writes: " in parser.description, name
        else:
            assert parser.description.endswith("Writes nothing."), name
    data = found["data"].description
    assert "data/train.h5, data/test.h5, data/probe_nsp.h5, data/probe_sop.h5" in data
    assert "the text files of data.text_files" in data


def test_help_has_no_markup():
    for text in [build_parser().format_help(), *(p.format_help() for p in commands().values())]:
        assert "`" not in text and "``" not in text, text


def test_show_takes_an_optional_index():
    parser = build_parser()
    assert parser.parse_args(["show", "data/train.h5"]).index is None
    assert parser.parse_args(["show", "data/train.h5", "-1"]).index == -1


@pytest.mark.parametrize(("command", "usage"), [
    ([sys.executable, "-m", "bert"], "usage: python -m bert "),
    ([str(SCRIPT)], "usage: bert "),
])
def test_the_usage_names_the_command_as_it_was_called(command, usage):
    if not Path(command[0]).exists():
        pytest.skip("the bert script is not installed (pip install -e .)")
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith(usage), result.stdout
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout == f"bert-from-scratch {__version__}\n"


def test_doit_list_shows_each_task_in_one_whole_line(tmp_path):
    shutil.copy(ROOT / "dodo.py", tmp_path / "dodo.py")
    (tmp_path / "params.yaml").write_text("{}\n")
    result = subprocess.run([sys.executable, "-m", "doit", "list"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(s.name for s in STAGES)
    for line in lines:
        doc = line.split(maxsplit=1)[1]
        assert doc.endswith((".", ".)")) and "`" not in doc, line
