"""The workflow (docs/workflow.md); its tasks are defined in bert/workflow/dodo.py."""

from bert.workflow.dodo import *  # noqa: F403 (the tasks and DOIT_CONFIG)
