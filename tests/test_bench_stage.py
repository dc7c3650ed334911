"""``python -m bert.bench stage``: the parameters it runs, and a smoke run of the whole
comparison on a tiny project (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from bert.bench.stage import parse_setting, project_params
from bert.bench.system import reference_available
from tests.workflow import tiny


def test_settings_change_the_file_and_text_files_become_absolute(tmp_path):
    path = tmp_path / "text.yaml"
    path.write_text(yaml.safe_dump({"data": {"source": "text", "text_files": ["data/a.txt"]},
                                    "model": {"dim_ff": 128}}))
    mapping = project_params(path, [parse_setting("model.dim_ff=256"),
                                    parse_setting("training.micro_batches=2")])
    assert mapping["model"]["dim_ff"] == 256
    assert mapping["training"]["micro_batches"] == 2
    assert mapping["data"]["text_files"] == [str(tmp_path / "data/a.txt")]


@pytest.mark.slow
@pytest.mark.skipif(not reference_available(),
                    reason="needs the reference extra: pip install -e '.[reference]'")
def test_both_loops_run_one_and_two_epochs(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny()))
    done = subprocess.run([sys.executable, "-m", "bert.bench", "stage", "--params",
                           "tiny.yaml", "--set", "training.micro_batches=2", "--repeats", "1",
                           "--workdir", str(tmp_path), "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["params"] == "tiny.yaml training.micro_batches=2"
    assert result["steps_per_epoch"] == 6
    for side in ("ours", "torch"):
        assert set(result["seconds"][side]) == {"1", "2"}  # JSON keys
        assert len(result["per_step_ms"][side]) == 1
    assert list(tmp_path.iterdir()) == [tmp_path / "tiny.yaml"]  # the project folder is gone


def test_bad_parameters_are_refused_in_one_line_before_any_work(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny()))
    done = subprocess.run([sys.executable, "-m", "bert.bench", "stage", "--params",
                           "tiny.yaml", "--set", "training.micro_batches=3"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: tiny.yaml: data.batch_size is 8, not a multiple of "
                                   "training.micro_batches (3); make it one")
