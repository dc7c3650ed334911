"""The stages of the workflow, one record each: everything a stage is, in one place.

A record names the function the stage runs (``"module:function"``, so the module whose code the
stage depends on is the function's own), the files it reads and writes (members of ``Layout``),
the parameters it reads (keys of ``Params.subset``) and, when it shows something, the function
that turns its result into the text it prints. ``dodo.py`` makes a doit task of each record, the
command line (``python -m bert <stage>``) a command, ``bert.workflow.tasks`` runs them.

A stage's function is called as ``function(params, layout)``; a picture's (a part of the plots
stage) as ``function(*input paths, *output paths)``, with an output path per format of
``plots.formats``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bert.workflow.run import TRAIN_READS


@dataclass(frozen=True)
class Stage:
    """One step of the workflow (or one picture of the plots stage)."""

    name: str  # the doit task and the ``python -m bert`` command
    doc: str  # shown by ``doit list`` and ``python -m bert --help``
    function: str  # "module:function" the stage runs ("" for a stage made of parts)
    inputs: tuple[str, ...] = ()  # Layout members read
    outputs: tuple[str, ...] = ()  # Layout members written (the last one is written last)
    reads: tuple[str, ...] = ()  # the parameters it reads, as keys of ``Params.subset``
    show: str = ""  # "module:function" making the text printed from the function's result
    parts: tuple[Stage, ...] = ()  # run one by one, each its own doit sub-task (``plots:curves``)
    needs: str = ""  # a package the stage cannot run without: it then prints ``missing``
    missing: str = ""
    in_default_run: bool = True  # run by a plain ``doit``
    folder: str = "run_dir"  # the Layout member of the folder it writes: its lock, its log

    @property
    def modules(self) -> tuple[str, ...]:
        """The modules the stage runs: its function's, its presentation's, its parts'."""
        own = [name.partition(":")[0] for name in (self.function, self.show) if name]
        return tuple(dict.fromkeys(own + [m for part in self.parts for m in part.modules]))


PLOTS_MISSING = "matplotlib is not installed: pip install -e '.[plots]' to draw the plots"

# The pictures of the plots stage, each drawn on its own (``python -m bert plots curves``, the
# doit sub-task ``plots:curves``), so that it is redrawn only when its own inputs change.
PICTURES = (
    Stage("curves", "Losses per step and per epoch against the optimum; accuracies; rate; "
          "gradient norm; throughput.",
          "bert.views.plots:draw_curves", ("history", "test_data"), ("curves_plot",),
          reads=("plots.formats",)),
    Stage("attention", "Attention maps of one test example, every head of every layer.",
          "bert.views.plots:draw_attention", ("model_weights", "test_data"),
          ("attention_plot",), reads=("plots.formats",)),
    Stage("predictions", "The model's top-3 at the masked positions of a few test examples.",
          "bert.views.plots:draw_predictions", ("model_weights", "test_data"),
          ("predictions_plot",), reads=("plots.formats",)),
)

STAGES = (
    Stage("data", "Draw the synthetic language or read data.text_files; write the train and "
          "test sets and the NSP and SOP probe sets (data/<data>/*.h5).",
          "bert.workflow.data:make_data", ("text_sources",),
          ("train_data", "test_data", "probe_nsp_data", "probe_sop_data"), reads=("data",),
          folder="data_dir"),
    Stage("init", "Initialize the model's weights as transformers does "
          "(artifacts/init/<init>/init.h5).",
          "bert.workflow.init:initialize", ("init_sources",), ("init_weights",),
          reads=("data.sequence_length", "data.vocab_size", "model", "training.dtype"),
          folder="init_dir"),
    Stage("train", "Train the run, resuming from its newest valid checkpoint (model.h5 in the "
          "run's folder).",
          "bert.workflow.train:train", ("train_data", "test_data", "init_weights"),
          ("history", "model_weights"),
          reads=TRAIN_READS),
    Stage("evaluate", "Score the trained model against the optimum, and its sentence head on "
          "the NSP and SOP probe sets; print the table (metrics.json).",
          "bert.workflow.evaluate:evaluate_model",
          ("train_data", "test_data", "probe_nsp_data", "probe_sop_data", "model_weights"),
          ("metrics",), reads=("evaluation",),
          show="bert.views.tables:results_table"),
    Stage("report", "Write the run's results JSON (results.json).",
          "bert.workflow.report:write_results", ("metrics", "history"), ("results",),
          reads=(*TRAIN_READS, "evaluation")),
    Stage("export", "Export the trained model as a transformers directory ready for the "
          "Hub, with its tokenizer and model card (export/ in the run's folder).",
          "bert.workflow.export:export",
          ("model_weights", "test_data", "metrics", "history"),
          ("export_tokenizer", "export_config", "export_weights", "export_card"),
          reads=(*TRAIN_READS, "evaluation"), in_default_run=False),
    Stage("plots", "Draw the pictures of the run (plots/ in the run's folder; needs "
          "matplotlib).",
          "", parts=PICTURES, needs="matplotlib",
          missing=PLOTS_MISSING),
)


def stage(name: str) -> Stage:
    """The record of stage ``name``."""
    return next(s for s in STAGES if s.name == name)
