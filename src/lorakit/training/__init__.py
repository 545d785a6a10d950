"""Training: the loop, the model builder, the run folder."""
