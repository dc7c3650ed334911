"""A new project folder for the workflow, outside a clone: ``python -m bert init-project DIR``
writes a ``dodo.py`` that imports the workflow's tasks from the installed package and the
default ``params.yaml`` (every key at its default, its help as a comment)."""

from __future__ import annotations

from pathlib import Path

from bert.errors import OutputError
from bert.storage.atomic import write_bytes
from bert.workflow.params_page import params_yaml

DODO = '''"""The workflow (docs/workflow.md); its tasks are defined in bert/workflow/dodo.py."""

from bert.workflow.dodo import *  # noqa: F403 (the tasks and DOIT_CONFIG)
'''


def init_project(folder: str | Path) -> list[Path]:
    """Write ``dodo.py`` and ``params.yaml`` into ``folder`` (made if missing); OutputError when
    either is there already (nothing is replaced)."""
    folder = Path(folder)
    files = {folder / "dodo.py": DODO, folder / "params.yaml": params_yaml()}
    for path in files:
        if path.exists() or path.is_symlink():
            raise OutputError(f"{path}: exists already, and is left alone; choose an empty "
                              "folder, or remove it")
    return [write_bytes(path, text.encode()) for path, text in files.items()]
