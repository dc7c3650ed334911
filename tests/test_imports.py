"""The package's imports go one way: no cycles (lazy imports included), and the layers of the
architecture hold. Imports under ``if TYPE_CHECKING:`` do not count: they never run."""

from __future__ import annotations

import graphlib
import subprocess
import sys

import pytest

from bert.workflow.tasks import PACKAGE_DIR, imports, source
from tests.workflow import tiny, write_params


def all_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = all_modules()
GRAPH = {module: imports(module) for module in MODULES}


def in_layer(module: str, *layers: str) -> bool:
    return any(module == layer or module.startswith(layer + ".") for layer in layers)


def test_the_graph_is_read_from_every_module():
    assert {"bert.core.model", "bert.workflow.train", "bert.views.plots",
            "bert.cli.commands"} <= set(MODULES)
    assert all(source(module) is not None for module in MODULES)
    assert "bert.core.layers" in GRAPH["bert.core.model"]
    assert "bert.workflow.gap" in GRAPH["bert.views.tables"]


def test_lazy_imports_count_and_type_checking_imports_do_not():
    assert "bert.views.show" in GRAPH["bert.cli.commands"]  # imported inside a function
    assert "bert.api" not in GRAPH["bert.storage.interop"]  # only under TYPE_CHECKING


def test_no_cycles():
    try:
        graphlib.TopologicalSorter(GRAPH).prepare()
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def closure(module: str) -> set[str]:
    """Every package module ``module`` imports, directly or through others."""
    seen: set[str] = set()
    pending = list(GRAPH[module])
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(GRAPH.get(name, ()))
    return seen


# (layer, the layers it must never import, directly or through any other module), from the
# bottom of the house up: the engine, the math, the processes, the files, the public objects,
# the workflow, the views, the bench
RULES = [
    ("bert.engine", ("bert.core", "bert.parallel", "bert.data", "bert.storage", "bert.api",
                     "bert.workflow", "bert.views", "bert.bench")),
    ("bert.core", ("bert.parallel", "bert.data", "bert.storage", "bert.api", "bert.workflow",
                   "bert.views", "bert.bench")),
    ("bert.parallel", ("bert.data", "bert.storage", "bert.api", "bert.workflow", "bert.views",
                       "bert.bench")),
    ("bert.storage", ("bert.core.model", "bert.core.layers", "bert.core.kernels", "bert.data",
                      "bert.parallel", "bert.api", "bert.workflow", "bert.views", "bert.bench")),
    ("bert.data", ("bert.core.model", "bert.core.layers", "bert.core.kernels", "bert.parallel",
                   "bert.api", "bert.workflow", "bert.views", "bert.bench")),
    ("bert.api", ("bert.workflow", "bert.views", "bert.bench")),
    ("bert.workflow", ("bert.views", "bert.bench")),
    ("bert.views", ("bert.bench",)),
]


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[layer for layer, _ in RULES])
def test_layers_import_only_downwards_even_through_others(layer, forbidden):
    wrong = sorted(f"{module} reaches {target}" for module in MODULES if in_layer(module, layer)
                   for target in closure(module) if in_layer(target, *forbidden))
    assert not wrong, "; ".join(wrong[:10])


def test_the_reference_layers_stand_alone():
    """What a learner reads first imports no machinery: no engine, no kernels, no model."""
    assert closure("bert.core.layers") <= {"bert.core.labels", "bert.core.special"}


def test_only_views_the_command_line_and_the_bench_import_views():
    wrong = sorted(f"{module} reaches {target}" for module in MODULES
                   if not in_layer(module, "bert.views", "bert.__main__", "bert.cli", "bert.bench")
                   for target in closure(module) if in_layer(target, "bert.views"))
    assert not wrong, "; ".join(wrong)


def test_doit_reads_its_tasks_without_loading_numpy(tmp_path):
    """``doit list``, a parameter refused, a run already made: doit's tasks load without the
    math or the files (NumPy alone is about a fifth of doit's start)."""
    write_params(tmp_path, tiny())
    code = "import sys, bert.workflow.dodo; print(sorted({'numpy', 'h5py'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, check=True).stdout
    assert loaded.strip() == "[]"
