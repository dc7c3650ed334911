"""Where every file of the workflow lives, relative to the project folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bert.workflow.params import Params


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
    def plots(self) -> Path:
        """The pictures of the plots stage."""
        return self.artifacts / "plots"

    @property
    def curves_plot(self) -> Path:
        return self.plots / "curves.png"

    @property
    def attention_plot(self) -> Path:
        return self.plots / "attention.png"

    @property
    def predictions_plot(self) -> Path:
        return self.plots / "predictions.png"

    def results(self, params: Params) -> Path:
        return self.under_root(params.evaluation.results_file)

    def init_sources(self, params: Params) -> list[Path]:
        """The files ``model.init_from`` names: itself, or a transformers directory's files."""
        if not params.model.init_from:
            return []
        source = self.under_root(params.model.init_from)
        if source.is_dir():
            return sorted(p for p in source.iterdir()
                          if p.name == "config.json" or p.name.startswith("model.safetensors"))
        return [source]

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
