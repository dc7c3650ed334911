"""Where every file of the workflow lives, relative to the project folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bert.params import Params


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
    def logs(self) -> Path:
        return self.artifacts / "logs"

    def results(self, params: Params) -> Path:
        return self.under_root(params.evaluation.results_file)

    def files(self, names: tuple[str, ...], params: Params) -> list[Path]:
        """The paths of the files called ``names`` (properties of this class)."""
        return [self.results(params) if name == "results" else getattr(self, name)
                for name in names]

    def under_root(self, path: str | Path) -> Path:
        """A path from params.yaml: relative ones are taken from the project folder."""
        path = Path(path)
        return path if path.is_absolute() else self.root / path
