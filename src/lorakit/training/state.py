"""Where a training run is: the counters a checkpoint keeps so that a resumed run continues exactly."""

from dataclasses import dataclass, field


@dataclass
class Progress:
    epoch: int = 1              # the epoch being trained (1-based)
    pos: int = 0                # its next batch
    step: int = 0               # optimizer steps so far, all epochs
    seen: int = 0               # examples trained on this epoch
    loss_sum: float = 0.0       # their summed loss
    epoch_seconds: float = 0.0  # training time this epoch (without validation)
    tokens_real: int = 0        # this epoch's tokens, and the padded tokens computed for them
    tokens_padded: int = 0
    history: list = field(default_factory=list)     # one record per finished epoch
    best: dict | None = None    # {"epoch", "val"} of the best epoch so far
    bad_epochs: int = 0         # epochs since the best one (early stopping)
    loss_curve: list = field(default_factory=list)  # (step, mean loss) points of this epoch
    window: list = field(default_factory=list)      # step losses since the last point

    def next_epoch(self) -> None:
        self.epoch += 1
        self.pos = self.seen = self.tokens_real = self.tokens_padded = 0
        self.loss_sum = self.epoch_seconds = 0.0
        self.loss_curve = []
