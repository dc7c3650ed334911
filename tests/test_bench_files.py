"""``python -m bert.bench files`` at the toy size: its table and its JSON are well formed (no
timing asserts)."""

from __future__ import annotations

import json

import pytest

from bert.bench import cli
from bert.bench.cli import main
from bert.bench.files import OPERATIONS

FAST = ["files", "--sizes", "micro", "--repeats", "2"]


def test_table_has_the_header_and_a_row_for_the_size(capsys):
    main(FAST)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("| size | parameters | checkpoint datasets | checkpoint MiB | save "
                        "checkpoint ms | load checkpoint ms | save model ms | load model ms |")
    (row,) = [line for line in lines if line.startswith("| micro |")]
    assert len(row.split("|")) == len(lines[0].split("|"))


def test_json_has_every_operation_timed_as_often_as_asked(capsys):
    main([*FAST, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["repeats"] == 2
    (result,) = report["results"]
    assert result["size"] == "micro" and result["parameters"] > 0
    assert result["checkpoint_datasets"] > 0
    assert result["checkpoint_mib"] > result["model_mib"] > 0
    for operation in OPERATIONS:
        stats = result[operation]
        assert stats["samples"] == 2
        assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]


def test_defaults_and_a_bad_repeat_count(capsys):
    args = cli.parse(["files"])
    assert (args.sizes, args.repeats, args.json) == (["default", "text", "mini"], 5, False)
    with pytest.raises(SystemExit):
        cli.parse(["files", "--repeats", "0"])
    assert "--repeats must be 1 or more" in capsys.readouterr().err
