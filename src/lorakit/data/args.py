"""The recipe's data section: the keys every task shares. Each task extends it (tasks/<task>/data.py)."""

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """A recipe section: unknown keys are errors, assignments are validated."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataArgs(Section):
    dataset: str
    """Built-in dataset name or a data file (the task lists which)."""
    path: str | None = None
    """For built-in datasets read from a user's download (imdb): its folder or archive. Otherwise unused."""
    test_fraction: float = Field(0.2, gt=0, lt=1)
    """Stratified held-out test share (datasets without an official test split)."""
    val_fraction: float = Field(0.1, gt=0, lt=1)
    """Stratified validation share of what remains for training."""
    limit: int | None = Field(None, gt=0)
    """Train on a stratified subset of this many examples."""
    val_limit: int | None = Field(None, gt=0)
    """Stratified subset of the validation split."""
    test_limit: int | None = Field(None, gt=0)
    """Stratified subset of the test split."""
    max_length: int = Field(128, ge=8, le=8192)
    """Texts are truncated to this many tokens."""
    seed: int = 0
    """Seed of the splits and subsets."""
