"""The stages of the workflow as data: what each reads, writes and runs.

``dodo.py`` turns each ``Stage`` into a doit task; the command-line interface runs the same
functions. A stage's code dependencies are found by reading the package's import statements
(no code is executed), so a stage reruns when a module it runs changes, and only then.
"""

from __future__ import annotations

import ast
import importlib.util
import signal
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bert.workflow.layout import Layout
from bert.workflow.params import Params

PACKAGE_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stage:
    """One step of the workflow."""

    name: str  # the doit task and the ``python -m bert`` command
    doc: str  # shown by ``doit list``
    module: str  # the module holding the stage's code, e.g. "bert.workflow.train"
    inputs: tuple[str, ...]  # names of Layout files read
    outputs: tuple[str, ...]  # names of Layout files written (the last one is written last)
    in_default_run: bool = True  # run by a plain ``doit``


STAGES = (
    Stage("data", "Generate the synthetic language or read data.text_files, and write the "
          "train/test sets (data/*.h5).", "bert.data.datasets", ("text_sources",),
          ("train_data", "test_data")),
    Stage("init", "Initialize the model's weights as transformers does (artifacts/init.h5).",
          "bert.workflow.init", ("init_sources",), ("init_weights",)),
    Stage("train", "Train (resuming from the newest valid checkpoint) to artifacts/model.h5.",
          "bert.workflow.train", ("train_data", "test_data", "init_weights"),
          ("history", "model_weights")),
    Stage("evaluate", "Score the trained model against the optimum (artifacts/metrics.json).",
          "bert.workflow.evaluate", ("train_data", "test_data", "model_weights"), ("metrics",)),
    Stage("report", "Write the results JSON (artifacts/results.json by default).",
          "bert.workflow.report", ("metrics", "history"), ("results",)),
    Stage("export", "Export the trained model as a transformers directory, with the tokenizer "
          "of text data (artifacts/export/).", "bert.workflow.export",
          ("model_weights", "test_data"),
          ("export_tokenizer", "export_config", "export_weights"),
          in_default_run=False),
    Stage("plots", "Draw the pictures of the run (artifacts/plots/*.png; needs matplotlib).",
          "bert.views.plots", ("history", "test_data", "model_weights"),
          ("curves_plot", "attention_plot", "predictions_plot")),
)

# The pictures of the plots stage, each drawn on its own (``python -m bert plots curves``, the
# doit sub-task ``plots:curves``) so that it is redrawn only when its own inputs change.
PICTURES = (
    Stage("curves", "Losses per step and per epoch against the optimum; accuracies; rate.",
          "bert.views.plots", ("history", "test_data"), ("curves_plot",)),
    Stage("attention", "Attention maps of one test example, every head of every layer.",
          "bert.views.plots", ("test_data", "model_weights"), ("attention_plot",)),
    Stage("predictions", "The model's top-3 at the masked positions of a few test examples.",
          "bert.views.plots", ("test_data", "model_weights"), ("predictions_plot",)),
)
PLOTS_MISSING = "matplotlib is not installed: pip install -e '.[plots]' to draw the plots"


def stage(name: str) -> Stage:
    return next(s for s in STAGES if s.name == name)


def plots_available() -> bool:
    """Whether matplotlib can be imported (looked up, not imported); the plots stage draws
    nothing without it."""
    return importlib.util.find_spec("matplotlib") is not None


def leave_interrupts_to_stages() -> None:
    """Make the calling process (doit) wait through Ctrl-C instead of dying with a traceback.

    The running stage, a child process, still receives the Ctrl-C (handlers are reset in a new
    program): it stops cleanly, saying what it kept, and doit then reports the task as failed.
    """
    signal.signal(signal.SIGINT, lambda signum, frame: None)


def _imports(path: Path) -> set[str]:
    """The ``bert.*`` modules a source file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] == "bert"}


def _source(module: str) -> Path | None:
    """The file of a package module (``bert`` itself is its ``__init__.py``), or None."""
    parts = module.split(".")[1:]
    candidates = [PACKAGE_DIR.joinpath(*parts, "__init__.py")]
    if parts:
        candidates.append(PACKAGE_DIR.joinpath(*parts[:-1], parts[-1] + ".py"))
    return next((path for path in candidates if path.is_file()), None)


@cache
def module_files(module: str) -> tuple[Path, ...]:
    """The source files of ``module`` and of every package module it imports, transitively."""
    seen: dict[str, Path] = {}
    pending = [module, "bert"]
    while pending:
        name = pending.pop()
        path = _source(name)
        if path is None or name in seen:
            continue
        seen[name] = path
        pending.extend(_imports(path))
    return tuple(sorted(set(seen.values())))


def run(name: str, params: Params, layout: Layout, pictures: tuple[str, ...] = ()) -> None:
    """Run one stage with its inputs in place (the stage's module is imported only now).

    pictures: the names (in ``PICTURES``) the plots stage draws; all of them when empty.
    """
    if name == "data":
        from bert.data.datasets import make_datasets

        make_datasets(params.data, layout.data_dir, layout.root)
    elif name == "init":
        from bert.workflow.init import initialize

        initialize(params, layout)
    elif name == "train":
        from bert.workflow.train import train

        train(params, layout, progress=params.logging.progress_bar)
    elif name == "evaluate":
        from bert.workflow.evaluate import evaluate_model

        evaluate_model(params, layout)
    elif name == "report":
        from bert.workflow.report import write_results

        write_results(params, layout)
    elif name == "export":
        from bert.workflow.export import export

        export(params, layout)
    elif name == "plots":
        if not plots_available():
            print(PLOTS_MISSING)
            return
        from bert.views.plots import draw

        draw(layout, pictures or tuple(p.name for p in PICTURES))
    else:
        raise ValueError(f"unknown stage {name!r}")
