"""PNG plots written into the run folder (matplotlib, no display needed)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def confusion_matrix_png(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.5, 1.2 * n + 2))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    top = max(max(row) for row in matrix) or 1
    for i in range(n):
        for j in range(n):
            ax.text(j, i, matrix[i][j], ha="center", va="center",
                    color="white" if matrix[i][j] > top / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def learning_curve_png(history: list[dict], path: Path, metric: str) -> None:
    """Training loss per logged step, and the validation metric per epoch."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = [p for h in history for p in h.get("loss_curve", [])]
    if steps:
        left.plot([s for s, _ in steps], [v for _, v in steps], lw=1)
    left.set(xlabel="step", ylabel="training loss", title="loss")
    epochs = [h["epoch"] for h in history]
    right.plot(epochs, [h[f"val_{metric}"] for h in history], marker="o")
    right.set(xlabel="epoch", ylabel=f"validation {metric}", title=f"validation {metric}", xticks=epochs)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
