"""Stratified, seeded train / validation / test splits and stratified subsets."""

from collections import Counter

from lorakit.errors import DataError


def stratified_take(idx: list[int], labels: list[str], n: int | None, seed: int) -> list[int]:
    """A stratified subset of ``n`` of ``idx`` (all of them when n is None or too large), in input order."""
    if n is None or n >= len(idx):
        return idx
    from sklearn.model_selection import train_test_split  # on use: merging reads the tasks without sklearn

    y = [labels[i] for i in idx]
    strat = y if min(Counter(y).values()) >= 2 and n >= len(set(y)) else None
    taken, _ = train_test_split(idx, train_size=n, stratify=strat, random_state=seed)
    return sorted(taken)


def _split(idx: list[int], labels: list[str], fraction: float, seed: int, what: str) -> tuple[list[int], list[int]]:
    y = [labels[i] for i in idx]
    counts = Counter(y)
    if len(idx) < 2 * len(counts) or min(counts.values()) < 2:
        rare = min(counts, key=counts.get)
        raise DataError(f"too few examples to make a stratified {what} split "
                        f"(label {rare!r} has {counts[rare]} example{'s' * (counts[rare] != 1)})",
                        "add data, or drop that label with data.labels")
    from sklearn.model_selection import train_test_split

    keep, held = train_test_split(idx, test_size=fraction, stratify=y, random_state=seed)
    return sorted(keep), sorted(held)


def make_splits(labels: list[str], test_labels: list[str] | None, data) -> dict[str, list[int]]:
    """Indices of train / val (into ``labels``) and test (into ``test_labels`` when given, else ``labels``)."""
    idx = list(range(len(labels)))
    if test_labels is None:
        idx, test = _split(idx, labels, data.test_fraction, data.seed, "test")
        test_source = labels
    else:
        test, test_source = list(range(len(test_labels))), test_labels
    train, val = _split(idx, labels, data.val_fraction, data.seed, "validation")
    return {
        "train": stratified_take(train, labels, data.limit, data.seed),
        "val": stratified_take(val, labels, data.val_limit, data.seed),
        "test": stratified_take(test, test_source, data.test_limit, data.seed),
    }
