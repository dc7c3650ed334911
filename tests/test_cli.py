"""The command line, as a user meets it: one line for every wrong argument or path, and a
reader that goes away early (``| head -1``) is no error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bert.__main__ import main
from bert.data.datasets import make_datasets
from tests.workflow import tiny_params


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    make_datasets(tiny_params().data, folder)
    return folder


def test_a_reader_that_goes_away_early_is_no_error(data):
    read, write = os.pipe()
    os.close(read)  # as `| head -1` once it has its line
    try:
        result = subprocess.run([sys.executable, "-m", "bert", "show", str(data / "train.h5"),
                                 "0"], stdout=write, stderr=subprocess.PIPE, text=True,
                                timeout=60)
    finally:
        os.close(write)
    assert result.returncode == 141 and result.stderr == ""


@pytest.mark.parametrize(("args", "expected"), [
    (["show", "{data}", "0"], "{data}: is a folder, not a file; check that you named the right"),
    (["show", "/dev/zero", "0"], "/dev/zero: is a character device, not a file; check"),
    (["show", "{data}/none.h5", "0"], "{data}/none.h5: file not found; check"),
    (["predict", "{data}/test.h5", "0", "--model", "{data}"], "{data}: is a folder, not a file"),
])
def test_a_path_that_is_not_a_file_says_what_it_is(data, capsys, args, expected):
    assert main([arg.format(data=data) for arg in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + expected.format(data=data)) and err.count("\n") == 1


def test_a_wrong_argument_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["shw", "data/train.h5", "0"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: python -m bert: argument command: invalid choice: 'shw'")
    assert err.endswith("see `python -m bert --help`\n")
