"""A rich progress bar for training: loss, samples/s and ETA; silent when disabled."""

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def note(message: str) -> None:
    """A line for the user on stderr, whole whatever the terminal (warnings before training starts)."""
    Console(stderr=True, soft_wrap=True).print(message, highlight=False, markup=False)


class TrainProgress:
    def __init__(self, total_steps: int, enabled: bool = True, completed: int = 0):
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[rate]:.1f} samples/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
        )
        self.enabled = enabled
        self.task = self.progress.add_task("train", total=total_steps, completed=completed, epoch=1,
                                          loss=float("nan"), rate=0.0)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def update(self, epoch: int, loss: float, rate: float) -> None:
        self.progress.update(self.task, advance=1, epoch=epoch, loss=loss, rate=rate)

    def epoch_done(self, epoch: int, value: float, metric: str) -> None:
        if self.enabled:
            self.progress.console.print(f"epoch {epoch}: validation {metric} {value:.4f}")
