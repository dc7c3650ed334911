"""What defines a training run, in one place: the parameters whose change starts a new run, and
its fingerprint, the name of its checkpoint folder and the mark its trained model carries.

A run is the sequence of optimizer steps its parameters determine. Three kinds of training keys:

- ``HOW_TRAINED`` change how fast it runs, never a bit of what it computes (the thread count):
  left out of everything, so changing them reruns nothing;
- ``HOW_LONG_AND_WHERE`` change how long it goes on, what it keeps on disk and on how many
  processes (a result is bit-identical on any number of them): changing them resumes the same
  run;
- every other ``data:``, ``model:`` and ``training:`` key defines the run, and so does the text
  a text run's training set was made from (its SHA-256, since the files can change).

``bert.workflow.provenance`` reads a project's files to tell which run they belong to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bert.fingerprint import fingerprint

if TYPE_CHECKING:  # the values are read; the export stage runs no parameter-validation code
    from bert.workflow.params import Params

HOW_TRAINED = ("threads",)
HOW_LONG_AND_WHERE = ("epochs", "checkpoint_every_steps", "keep_checkpoints", "processes",
                      "mpiexec")
# what the train stage reads, as keys of ``Params.subset``: changing any of them reruns it
TRAIN_READS = ("data", "model", "training", *(f"-training.{key}" for key in HOW_TRAINED))


def decays_at_last_step(params: Params) -> bool:
    """Whether the learning rate falls to 0 at the run's last step (``decay_steps: 0``): the
    number of epochs then shapes every step's rate, so it defines the run."""
    return params.training.lr_schedule == "linear" and params.training.decay_steps == 0


def run_params(params: Params, corpus_sha256: str | None = None) -> dict:
    """The parameters that define a training run: the train stage's but ``HOW_LONG_AND_WHERE``
    (``epochs`` kept when the schedule ends at the last step), and for text data
    ``data.corpus_sha256``, the digest of the text of the training set."""
    dropped = [key for key in HOW_LONG_AND_WHERE
               if not (key == "epochs" and decays_at_last_step(params))]
    run = params.subset((*TRAIN_READS, *(f"-training.{key}" for key in dropped)))
    if corpus_sha256 is not None:
        run["data"]["corpus_sha256"] = corpus_sha256
    return run


def run_fingerprint(params: Params, corpus_sha256: str | None = None) -> str:
    """The run's short stable hash: the name of its checkpoint folder, its models' mark."""
    return fingerprint(run_params(params, corpus_sha256))
