"""Ctrl-C during training: the first asks the loop to stop at the next step boundary (and save a
checkpoint); a second one kills."""

import signal

import torch


class StopRequest:
    def __init__(self):
        self.requested = False

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self.previous = None
        return self

    def requested_everywhere(self, accelerator) -> bool:
        """All processes must stop at the same step, or the others would wait in a collective."""
        if accelerator.num_processes == 1:
            return self.requested
        flag = torch.tensor(float(self.requested), device=accelerator.device)
        return bool(accelerator.reduce(flag, "sum").item() > 0)

    def _handle(self, *_):
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
