"""Through doit: an edit reruns the stages whose code it changes, and only those.

The project's package is a copy of ``bert/`` put first on ``PYTHONPATH``, so that the test can
edit it: how a result is shown, a docstring, the model's math.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bert.workflow.tasks import plots_available
from tests.workflow import stage_of, tiny, write_params

pytestmark = pytest.mark.slow  # doit end to end
ROOT = Path(__file__).resolve().parents[1]
# the pictures; without matplotlib, the one plots task that says how to install it
PICTURES = (("plots:curves", "plots:attention", "plots:predictions") if plots_available()
            else ("plots",))


class Project:
    """A project folder whose ``bert`` package is a copy that the test may edit."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.package = folder / "project", folder / "lib" / "bert"
        shutil.copytree(ROOT / "bert", self.package,
                        ignore=shutil.ignore_patterns("__pycache__"))
        self.folder.mkdir()
        shutil.copy(ROOT / "dodo.py", self.folder / "dodo.py")
        write_params(self.folder, tiny())
        self.env = {**os.environ, "PYTHONPATH": str(self.package.parent)}

    def python(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, *args], cwd=self.folder, env=self.env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def doit(self) -> tuple[list[str], str]:
        """The stages doit ran (it prints ``.  name`` for those), and its output."""
        out = self.python("-m", "doit").stdout
        return [stage_of(line[3:].strip()) for line in out.splitlines()
                if line.startswith(".  ")], out

    def edit(self, module: str, old: str, new: str) -> None:
        path = self.package / module
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} in {module}"
        path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    project = Project(tmp_path_factory.mktemp("edits"))
    imported = project.python("-c", "import bert; print(bert.__file__)").stdout.strip()
    assert Path(imported) == project.package / "__init__.py"  # the copy, not the repository
    assert project.doit()[0] == ["data", "init", "train", "evaluate", "report", *PICTURES]
    return project


def test_editing_how_the_results_table_looks_reruns_only_the_stage_that_prints_it(project):
    project.edit("views/tables.py", '"Bayes-opt"', '"optimum"')
    ran, out = project.doit()
    assert ran == ["evaluate"]  # the same metrics: nothing after it reruns either
    assert "optimum" in out and "Bayes-opt" not in out
    assert project.doit()[0] == []


def test_editing_comments_and_docstrings_reruns_nothing(project):
    project.edit("core/model.py", '"""Add one gradient contribution',
                 '"""Add one more gradient contribution')
    project.edit("core/kernels.py", "# (N, out): one 2-D product for BLAS",
                 "# (N, out): one 2-D product, as BLAS wants")
    project.edit("workflow/train.py", '"""The train stage: epochs',
                 '"""The train stage, edited: epochs')
    assert project.doit()[0] == []


def test_editing_the_model_math_reruns_init_and_train(project):
    # the same numbers written another way: every stage that runs the model reruns (evaluate
    # and the pictures that run it too), the weights, the history and the metrics come out
    # bit-identical, so the report and the curves find their inputs unchanged
    project.edit("core/kernels.py", "        cdf *= 0.5  # Phi(x)", "        cdf /= 2.0  # Phi(x)")
    ran, _ = project.doit()
    assert ran == ["init", "train", "evaluate",
                   *[picture for picture in PICTURES if picture != "plots:curves"]]


def test_editing_the_data_code_reruns_data(project):
    project.edit("data/examples.py", "MASK_FRACTION = 0.8", "MASK_FRACTION = 0.75")
    ran, _ = project.doit()
    assert ran[:2] == ["data", "train"] and "init" not in ran
