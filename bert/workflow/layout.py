"""Where every file of the workflow lives: one folder per run, shared data and initial weights.

    data/<source>-<hash>/          train.h5, test.h5, probe_nsp.h5, probe_sop.h5, log.txt
    artifacts/init/<hash>/         init.h5, log.txt
    artifacts/runs/<run>/          run.json, live.jsonl, checkpoints/<fingerprint>/,
                                   model.h5, history.json, metrics.json, results.json,
                                   plots/, export/, log.txt

A run is named after its parameters file and what differs from it (``params``,
``params+learning_rate@0.002``; ``bert.workflow.overrides``). The data folder is named after a
hash of the ``data:`` section, the initial weights' after a hash of what the init stage reads, so
that runs with the same data (or the same initial weights) share them, and runs with other data
never replace another run's. Each folder has its own lock (``.bert.lock``): a stage holds the
lock of the folder it writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bert.errors import check_hint, remake_hint
from bert.fingerprint import fingerprint

if TYPE_CHECKING:
    from bert.workflow.params import Params

LOCK_FILE = ".bert.lock"
LOG_FILE = "log.txt"
DEFAULT_RUN = "params"
# The workflow's own files, by where they lie in the project folder, the stage that writes
# each (for "delete it and run `doit X`") and the kind of file it is.
OWN_FILES = (
    (re.compile(r"(^|/)data/[^/]+/(train|test|probe_nsp|probe_sop)\.h5$"), "data", "dataset"),
    (re.compile(r"(^|/)artifacts/init/[^/]+/init\.h5$"), "init", "weights file"),
    (re.compile(r"(^|/)artifacts/runs/[^/]+/model\.h5$"), "train", "weights file"),
    (re.compile(r"(^|/)artifacts/runs/[^/]+/history\.json$"), "train", "training history"),
    (re.compile(r"(^|/)artifacts/runs/[^/]+/metrics\.json$"), "evaluate", "metrics file"),
)


def data_key(params: Params) -> str:
    """The name of the data folder of ``params``: its source and a hash of ``data:``."""
    return f"{params.data.source}-{fingerprint(params.data.to_dict())[:8]}"


def init_key(params: Params) -> str:
    """The name of the initial weights' folder of ``params``: a hash of what init reads."""
    from bert.workflow.stages import stage

    return fingerprint(params.subset(stage("init").reads))[:8]


@dataclass(frozen=True)
class Layout:
    """The files of run ``run`` in the project folder ``root``, with its data in
    ``data/<data>/`` and its initial weights in ``artifacts/init/<init>/``.

    ``Layout.of(params, run)`` names the data and initial weights' folders after the
    parameters, as the workflow does; the plain constructor takes them as given."""

    root: Path = Path(".")
    run: str = DEFAULT_RUN
    data: str = "default"
    init: str = "default"

    @classmethod
    def of(cls, params: Params, run: str = DEFAULT_RUN, root: str | Path = ".") -> Layout:
        return cls(Path(root), run, data_key(params), init_key(params))

    @classmethod
    def recorded(cls, run: str = DEFAULT_RUN, root: str | Path = ".") -> Layout:
        """The layout of a run that has started, read from its record (``run.json``);
        DataFileError when there is none."""
        from bert.errors import DataFileError
        from bert.workflow.run_record import read_run_record

        layout = cls(Path(root), run)
        record = read_run_record(layout.run_record)
        if record is None:
            raise DataFileError(f"{layout.run_record}: no run named {run} has started here; run "
                                "`doit` first, or name the files to read")
        return cls(Path(root), run, Path(record.data).name, Path(record.init).name)

    @classmethod
    def holding(cls, path: str | Path) -> Layout | None:
        """The layout of the run whose folder holds ``path`` (``<root>/artifacts/runs/<run>/
        ...``), read from its record; None when ``path`` lies in no run's folder."""
        parts = Path(path).parts
        for i in range(len(parts) - 3, 0, -1):
            if parts[i - 1:i + 1] == ("artifacts", "runs"):
                return cls.recorded(parts[i + 1], Path(*parts[:i - 1]))
        return None

    # --- the shared data --------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.root / "data" / self.data

    @property
    def train_data(self) -> Path:
        return self.data_dir / "train.h5"

    @property
    def test_data(self) -> Path:
        return self.data_dir / "test.h5"

    @property
    def probe_nsp_data(self) -> Path:
        """NSP pairs for scoring any model on NSP, whatever its sentence task."""
        return self.data_dir / "probe_nsp.h5"

    @property
    def probe_sop_data(self) -> Path:
        """SOP pairs for scoring any model on SOP, whatever its sentence task."""
        return self.data_dir / "probe_sop.h5"

    # --- the shared initial weights -----------------------------------------------------------

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def init_dir(self) -> Path:
        return self.artifacts / "init" / self.init

    @property
    def init_weights(self) -> Path:
        return self.init_dir / "init.h5"

    # --- the run's own folder ------------------------------------------------------------------

    @property
    def runs_dir(self) -> Path:
        return self.artifacts / "runs"

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.run

    @property
    def run_record(self) -> Path:
        """What the run is (``bert.workflow.run_record``)."""
        return self.run_dir / "run.json"

    @property
    def checkpoints(self) -> Path:
        """One sub-folder per set of run-defining parameters, named after their fingerprint."""
        return self.run_dir / "checkpoints"

    @property
    def live_metrics(self) -> Path:
        """The run's progress: a JSON line per logged step and per epoch (bert.workflow.live)."""
        return self.run_dir / "live.jsonl"

    @property
    def model_weights(self) -> Path:
        return self.run_dir / "model.h5"

    @property
    def history(self) -> Path:
        return self.run_dir / "history.json"

    @property
    def metrics(self) -> Path:
        return self.run_dir / "metrics.json"

    @property
    def results(self) -> Path:
        return self.run_dir / "results.json"

    @property
    def export_dir(self) -> Path:
        """The transformers directory ``doit export`` writes."""
        return self.run_dir / "export"

    @property
    def export_config(self) -> Path:
        return self.export_dir / "config.json"

    @property
    def export_weights(self) -> Path:
        return self.export_dir / "model.safetensors"

    @property
    def export_tokenizer(self) -> list[Path]:
        """The tokenizer files of the export."""
        return [self.export_dir / name
                for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")]

    @property
    def export_card(self) -> Path:
        """The model card of the export."""
        return self.export_dir / "README.md"

    @property
    def plots(self) -> Path:
        """The pictures of the plots stage."""
        return self.run_dir / "plots"

    def picture(self, name: str, params: Params | None = None) -> list[Path]:
        """The files of picture ``name`` of the plots stage, one per format of
        ``plots.formats`` (without params, the default: a PNG)."""
        formats = ("png",) if params is None else params.plots.formats
        return [self.plots / f"{name}.{suffix}" for suffix in formats]

    def curves_plot(self, params: Params | None = None) -> list[Path]:
        return self.picture("curves", params)

    def attention_plot(self, params: Params | None = None) -> list[Path]:
        return self.picture("attention", params)

    def predictions_plot(self, params: Params | None = None) -> list[Path]:
        return self.picture("predictions", params)

    # --- locks and logs: one of each per folder a stage writes ----------------------------------

    @property
    def run_lock(self) -> Path:
        return self.run_dir / LOCK_FILE

    def lock(self, folder: str) -> Path:
        """The lock file of the folder ``folder`` (``"data_dir"``, ``"init_dir"``,
        ``"run_dir"``)."""
        return getattr(self, folder) / LOCK_FILE

    @property
    def log_file(self) -> Path:
        """The run's log (the data and initial weights' folders have their own)."""
        return self.run_dir / LOG_FILE

    def log(self, folder: str) -> Path:
        """The log of the folder ``folder``, as for ``lock``."""
        return getattr(self, folder) / LOG_FILE

    # --- the user's files the stages read --------------------------------------------------------

    def init_sources(self, params: Params) -> list[Path]:
        """The files ``model.init_from`` names: itself, or a transformers directory's files."""
        if not params.model.init_from:
            return []
        source = self.under_root(params.model.init_from)
        try:
            if source.is_dir():
                return sorted(p for p in source.iterdir() if p.name == "config.json"
                              or p.name.startswith("model.safetensors"))
        except OSError:  # unreadable, or a name too long: the init stage says so
            pass
        return [source]

    def text_sources(self, params: Params) -> list[Path]:
        """The existing files ``data.text_files`` names (none for synthetic data); a missing one
        is reported by the data stage itself."""
        if params.data.source != "text":
            return []
        from bert.data.corpus import text_paths
        from bert.errors import ParamsError

        paths: list[Path] = []
        for pattern in params.data.text_files:
            try:
                paths += [p for p in text_paths([pattern], self.root) if p not in paths]
            except ParamsError:
                continue
        return paths

    def files(self, names: tuple[str, ...], params: Params | None = None) -> list[Path]:
        """The paths of the members called ``names``: a property is one path; a method, called
        with ``params``, gives one path or a list of them."""
        paths: list[Path] = []
        for name in names:
            member = getattr(self, name)
            found = member(params) if callable(member) else member
            paths += found if isinstance(found, list) else [found]
        return paths

    def under_root(self, path: str | Path) -> Path:
        """A path from params.yaml: relative ones are taken from the project folder."""
        path = Path(path)
        return path if path.is_absolute() else self.root / path


def read_fix(path: str | Path, kind: str) -> str:
    """What to do about a bad file at ``path`` that should be a ``kind`` (e.g. "dataset"):
    delete and remake it when it is one of the workflow's own files of that kind, else check the
    name (a file the user chose, or a good file of another kind, is never to be lost on our
    advice)."""
    text = Path(path).as_posix()
    for pattern, stage, own_kind in OWN_FILES:
        if own_kind == kind and pattern.search(text):
            return remake_hint(stage)
    return check_hint(f"it should be a {kind}")
