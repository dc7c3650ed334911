"""Where every file of the workflow lives, relative to the project folder.

The rule for the output paths a user chooses (``evaluation.results_file``, ``logging.file``):
a file inside the project's ``artifacts/`` folder that is none of the workflow's own files or
folders; an existing file there is replaced (or appended to) only when its content shows that
the workflow wrote it. So no setting can make the workflow overwrite, rename or delete a file it
did not write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bert.errors import OutputError, bounded, check_hint, remake_hint

if TYPE_CHECKING:
    from bert.workflow.params import Params

# The workflow's own files and the stage that writes each (for "delete it and run `doit X`").
OWN_FILES = {"train_data": "data", "test_data": "data", "probe_nsp_data": "data",
             "probe_sop_data": "data", "init_weights": "init",
             "model_weights": "train", "history": "train", "metrics": "evaluate"}
OWN_FOLDERS = ("data_dir", "checkpoints", "export_dir", "plots")


@dataclass(frozen=True)
class Layout:
    """The files of one project folder (the folder holding ``dodo.py`` and ``params.yaml``)."""

    root: Path = Path(".")

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

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

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def init_weights(self) -> Path:
        return self.artifacts / "init.h5"

    @property
    def checkpoints(self) -> Path:
        """One sub-folder per run, named after the run's fingerprint."""
        return self.artifacts / "checkpoints"

    @property
    def model_weights(self) -> Path:
        return self.artifacts / "model.h5"

    @property
    def history(self) -> Path:
        return self.artifacts / "history.json"

    @property
    def live_metrics(self) -> Path:
        """The run's progress: a JSON line per logged step and per epoch (bert.workflow.live)."""
        return self.artifacts / "live.jsonl"

    @property
    def metrics(self) -> Path:
        return self.artifacts / "metrics.json"

    @property
    def export_dir(self) -> Path:
        """The transformers directory ``doit export`` writes."""
        return self.artifacts / "export"

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
        return self.artifacts / "plots"

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

    def results(self, params: Params) -> Path:
        return self.under_root(params.evaluation.results_file)

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

    def read_fix(self, path: str | Path, *names: str) -> str:
        """What to do about a bad file at ``path`` that should be one of the files ``names``:
        delete and remake it when it is that workflow file, else check the name (a file the
        user chose is never theirs to lose on our advice)."""
        for name in names:
            if _same_file(Path(path), getattr(self, name)):
                return remake_hint(OWN_FILES[name])
        described = " or ".join(str(getattr(self, name)) for name in names)
        return check_hint(f"the workflow's is {described}")

    def output_file(self, value: str, key: str, ours: Callable[[Path], bool]) -> Path:
        """The path of a user-chosen output (``key`` names the parameter), checked on disk:
        inside ``artifacts/`` once links are followed, not a folder, and an existing file only
        if ``ours(path)`` says the workflow wrote it. Raises OutputError otherwise."""
        path = self.under_root(value)
        artifacts = self.artifacts.resolve()
        if artifacts not in path.resolve().parents:
            raise OutputError(f"{key}: {path} leads outside {self.artifacts}/ (through a link); "
                              f"choose a file inside {self.artifacts}/")
        if path.is_dir():
            raise OutputError(f"{key}: {path} is a folder; name a file, e.g. {path}/out")
        if path.exists() and not ours(path):
            raise OutputError(f"{key}: {path} exists and was not written by this workflow, so "
                              "it is left alone; move it away or choose another name")
        return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def output_path_problem(value: str, what: str) -> str | None:
    """What is wrong with ``value`` as an output path of params.yaml (``what`` is the kind of
    file, for the example), or None. Checked on the text alone, before anything runs."""
    layout = Layout()
    example = f"set it to a file inside {layout.artifacts}/, e.g. {layout.artifacts}/{what}"
    if not value.strip():
        return f"is empty; {example}"
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or path.parts[0] != layout.artifacts.name:
        return f"is {bounded(value)}, outside the project's {layout.artifacts}/ folder; {example}"
    if len(path.parts) < 2 or value.endswith(("/", "/.")):
        return f"is {bounded(value)}, a folder; {example}"
    for name, stage in OWN_FILES.items():
        if path == PurePosixPath(getattr(layout, name)):
            return f"is {value}, a file `doit {stage}` writes; {example}"
    for name in OWN_FOLDERS:
        folder = PurePosixPath(getattr(layout, name))
        if folder in path.parents:
            return f"is {bounded(value)}, inside {folder}/, which the workflow writes; {example}"
    return None
