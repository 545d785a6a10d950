"""lorakit: install weights and LoRA adapters, fine-tune, evaluate and serve text classifiers and generators.

Python API, mirroring the command line::

    import lorakit
    lorakit.install("minilm")
    lorakit.train("recipes/tweets-sentiment.yaml", {"data.limit": 2000})
    lorakit.evaluate("runs/tweets-sentiment")
    lorakit.load("runs/tweets-sentiment").predict(["what a great day"])
    lorakit.load("runs/bbc-headlines").generate(["Write a short headline ..."])
"""

__version__ = "0.1.0"



def install(source: str, name: str | None = None, force: bool = False, revision: str | None = None, **kwargs) -> dict:
    """Install a base model; with ``base=NAME``, or for a lorakit run folder (which records its base),
    install ``source`` as an adapter."""
    from pathlib import Path

    from lorakit.store import install_adapter, install_model

    if kwargs.get("base") or (Path(source).expanduser() / "adapter" / "lorakit.json").is_file():
        return install_adapter(source, name=name, force=force, revision=revision, **kwargs)
    return install_model(source, name=name, force=force, revision=revision, **kwargs)


def train(recipe=None, overrides=None, **kwargs) -> dict:
    from lorakit.training.threads import bound_openmp_spin

    bound_openmp_spin()  # only effective while torch is not imported yet
    from lorakit.training.loop import train as _train

    return _train(recipe, overrides, **kwargs)


def evaluate(run, split: str = "test", **kwargs) -> dict:
    from lorakit.evaluation.report import evaluate as _evaluate

    return _evaluate(run, split, **kwargs)


def load(run, batch_size: int | None = None, **kwargs):
    """A classification run's predictor (kwargs: ``quantize="int8"``, ``precision="auto"|"fp32"|"bf16"``,
    ``merge``), or a generation run's text generator (``.generate``, ``.stream``; kwargs: ``merge``)."""
    from lorakit.infer import textgen

    if textgen.writes_text(run):
        return textgen.load(run, batch_size or 8, **kwargs)
    from lorakit.infer.predictor import load as _load

    return _load(run, batch_size or 64, **kwargs)
