"""Tasks, one sub-package each (like PEFT's tuners/<method>/), chosen by the recipe's ``task:``.

Adding a task means adding ``tasks/<name>/`` with a ``Task`` subclass (see tasks/base.py and the
classification task) and registering it here; docs/adding-a-task.md walks through it.
"""

from lorakit.errors import ConfigError, RunError
from lorakit.tasks.base import Encoded, Task
from lorakit.tasks.causal_lm import CAUSAL_LM
from lorakit.tasks.classification import CLASSIFICATION

TASKS: dict[str, Task] = {}
# Names that lorakit.json files of earlier versions recorded.
ALIASES = {"sequence-classification": "classification"}
DEFAULT = "classification"


def register(task: Task) -> None:
    TASKS[task.name] = task


def get(name: str) -> Task:
    task = TASKS.get(ALIASES.get(name, name))
    if task is None:
        raise ConfigError(f"unknown task {name!r}", f"use one of: {', '.join(TASKS)}")
    return task


def require(name: str, command: str, what: str = "run") -> Task:
    """The task ``name`` if ``lorakit command`` works on its runs; else one line naming both."""
    task = get(name)
    if command not in task.commands:
        fits = sorted(t.name for t in TASKS.values() if command in t.commands)
        raise RunError(f"lorakit {command} does not fit a {task.name} {what} ({task.summary})",
                       f"lorakit {command} takes {' or '.join(fits) or 'no'} runs; a {task.name} {what} works with: "
                       f"{', '.join(sorted(task.commands))}")
    return task


register(CLASSIFICATION)
register(CAUSAL_LM)

__all__ = ["DEFAULT", "Encoded", "TASKS", "Task", "get", "register", "require"]
