import shutil

import pytest
import torch

from lorakit.infer.engine import AdapterError, Engine, UnknownAdapter
from lorakit.infer.predictor import load
from lorakit.model.adapters import resolve

LORA = (3, "LORA", None)  # the pool of 3-label LoRA adapters
TEXTS = ["love fun", "hate sad", "good great the movie", "bad awful the film", "the movie was a film", "happy"]


def engine_with(ad, *names, **kw) -> Engine:
    e = Engine(str(ad["base"]), **kw)
    for n in names:
        e.add(n, resolve(ad[n]))
    return e


def assert_same(result, single):
    assert result["label"] == single["label"]
    assert result["probs"] == pytest.approx(single["probs"], abs=1e-5)


def test_one_mixed_batch_gives_each_row_its_own_adapter(tiny_adapters):
    e = engine_with(tiny_adapters, "plain", "flipped", "binary")
    items = [(name, t) for t in TEXTS for name in ("plain", "flipped", "binary")]
    results = e.classify(items)  # one call: one forward per pool, rows of all adapters mixed
    singles = {n: load(tiny_adapters[n]).predict(TEXTS) for n in ("plain", "flipped", "binary")}
    for (name, text), r in zip(items, results):
        assert_same(r, singles[name][TEXTS.index(text)])
    # the two 3-label adapters really disagree somewhere, so a mix-up would show
    assert [r["label"] for r in singles["plain"]] != [r["label"] for r in singles["flipped"]]
    assert set(results[2]["probs"]) == {"negative", "positive"}


def test_single_adapter_is_merged_and_unmerged_when_a_second_arrives(tiny_adapters):
    e = engine_with(tiny_adapters, "plain")
    assert e._pools[LORA].merged
    single = load(tiny_adapters["plain"]).predict(TEXTS)
    for r, s in zip(e.classify([("plain", t) for t in TEXTS]), single):
        assert_same(r, s)
    e.add("flipped", resolve(tiny_adapters["flipped"]))
    assert not e._pools[LORA].merged
    for r, s in zip(e.classify([("plain", t) for t in TEXTS]), single):
        assert_same(r, s)
    e.remove("flipped")
    assert e._pools[LORA].merged and e.names() == ["plain"]
    for r, s in zip(e.classify([("plain", t) for t in TEXTS]), single):
        assert_same(r, s)


def test_naive_mode_switches_adapters_with_the_same_outputs(tiny_adapters):
    e = engine_with(tiny_adapters, "plain", "flipped", mixed=False)
    for name in ("flipped", "plain", "flipped"):
        for r, s in zip(e.classify([(name, t) for t in TEXTS]), load(tiny_adapters[name]).predict(TEXTS)):
            assert_same(r, s)


def test_a_failing_load_leaves_the_running_adapters_serving(tiny_adapters, tmp_path):
    e = engine_with(tiny_adapters, "plain")
    before = e.classify([("plain", t) for t in TEXTS])
    broken = tmp_path / "broken"
    shutil.copytree(tiny_adapters["flipped"] / "adapter", broken)
    (broken / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    with pytest.raises(AdapterError, match="cannot load adapter 'bad'"):
        e.add("bad", resolve(broken))
    assert e.names() == ["plain"] and e._pools[LORA].merged
    assert len(e._pools[LORA].model.peft_config) == 1  # the failed load left nothing behind
    after = e.classify([("plain", t) for t in TEXTS])
    for a, b in zip(before, after):
        assert_same(a, b)
    with pytest.raises(AdapterError, match="already loaded"):
        e.add("plain", resolve(tiny_adapters["plain"]))


def test_wrong_base_and_unknown_adapter_are_refused(tiny_adapters, tmp_path):
    e = engine_with(tiny_adapters, "plain")
    other = tmp_path / "other"
    shutil.copytree(tiny_adapters["plain"] / "adapter", other)
    meta = (other / "lorakit.json").read_text().replace(str(tiny_adapters["base"]), "/elsewhere/model")
    (other / "lorakit.json").write_text(meta)
    with pytest.raises(AdapterError, match="trained on base"):
        e.add("other", resolve(other))
    with pytest.raises(UnknownAdapter) as err:
        e.classify([("plain", "x"), ("nope", "y")])
    assert err.value.loaded == ["plain"]
    with pytest.raises(UnknownAdapter):
        e.remove("nope")
    e.remove("plain")
    assert e.names() == [] and not e._pools
    assert torch.is_inference_mode_enabled() is False


def test_padding_bounded_chunks_cover_every_row_once_with_little_padding():
    import random

    from lorakit.infer.engine import padding_bounded_chunks

    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(200)]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    chunks = list(padding_bounded_chunks(order, lengths, 0.25, 16))
    assert [j for c in chunks for j in c] == order
    for c in chunks:
        assert 1 <= len(c) <= 16
        padded, real = max(lengths[j] for j in c) * len(c), sum(lengths[j] for j in c)
        assert len(c) == 1 or padded <= 1.25 * real
    assert len(chunks) < len(lengths) / 4  # still real batches, not one row each


@pytest.fixture(scope="module")
def methods(tiny_adapters, tmp_path_factory):
    """Adapters of the other LoRA-family methods over the same tiny base."""
    from serve_helpers import train_tiny

    root, base = tmp_path_factory.mktemp("methods"), tiny_adapters["base"]
    return {
        "rslora": train_tiny(root, base, "rslora", flip=True, **{"lora.method": "rslora", "lora.r": 2}),
        "adalora": train_tiny(root, base, "adalora", **{
            "lora.method": "adalora", "lora.r": 2, "lora.adalora_init_r": 6, "lora.adalora_tinit": 0.1,
            "lora.adalora_tfinal": 0.2, "lora.adalora_delta_t": 2, "train.epochs": 3}),
        "dora": train_tiny(root, base, "dora", flip=True, **{"lora.method": "dora", "train.epochs": 3}),
    }


def test_every_method_in_one_mixed_batch_matches_its_own_predictor(tiny_adapters, methods):
    """rsLoRA and AdaLoRA (uneven rank pattern) stack beside plain LoRA; DoRA gets a pool of its own."""
    e = engine_with(tiny_adapters, "plain")
    for name, run in methods.items():
        e.add(name, resolve(run))
    names = ["plain", *methods]
    assert set(e._pools) == {LORA, (3, "ADALORA", None), (3, "LORA", "dora")}
    assert e._pools[(3, "LORA", "dora")].merged and len(e._pools[LORA].stacks.slots) == 2
    items = [(name, t) for t in TEXTS for name in names]
    results = e.classify(items)
    runs = {"plain": tiny_adapters["plain"], **methods}
    singles = {n: load(runs[n], merge=False).predict(TEXTS) for n in names}
    for (name, text), r in zip(items, results):
        assert_same(r, singles[name][TEXTS.index(text)])
    e.add("a", resolve(methods["adalora"]))  # AdaLoRA adapters stack with each other, whatever their names
    for r, s in zip(e.classify([(n, t) for n in ("adalora", "a") for t in TEXTS]), 2 * singles["adalora"]):
        assert_same(r, s)
    e.remove("rslora")  # the last one left in the shared pool is merged again
    assert e._pools[LORA].merged and e._pools[LORA].stacks is None
    for r, s in zip(e.classify([("plain", t) for t in TEXTS]), singles["plain"]):
        assert_same(r, s)


def test_bf16_twin_runs_mixed_batches_and_fp32_decides_close_calls(tiny_adapters):
    import copy

    from lorakit.infer.precision import CloseCalls

    class Counting(CloseCalls):
        rows_fp32 = 0

        def resolve(self, logits, exact):
            out, n = super().resolve(logits, exact)
            Counting.rows_fp32 += n
            return out, n

    e = engine_with(tiny_adapters, "plain", "flipped", "binary", precision="bf16")
    exact = engine_with(tiny_adapters, "plain", "flipped", "binary", precision="fp32")
    for pool in e._pools.values():
        assert next(pool.fast.parameters()).dtype == torch.bfloat16
        assert (pool.fast_stacks is not None) == (len(pool.names) > 1)  # merged when alone
        pool.close_calls = Counting(warmup=0, every=1000)  # as after calibration: bf16 decides the clear rows
        pool.close_calls.eps = 0.01
    items = [(name, t) for t in TEXTS * 4 for name in ("plain", "flipped", "binary")]
    got, want = e.classify(items), exact.classify(items)
    assert [r["label"] for r in got] == [r["label"] for r in want]
    # The mixed bf16 rows are about as close to fp32 as each adapter's own merged bf16 model is (the
    # stacks round the factors apart from the base; the tiny trained model is far more sensitive to
    # bf16 rounding than a real one).
    bound = {}
    for name in ("plain", "flipped", "binary"):
        single = load(tiny_adapters[name], precision="fp32")
        twin = copy.deepcopy(single.model).to(torch.bfloat16)
        batch = single.tokenizer(TEXTS, padding=True, return_tensors="pt")
        with torch.inference_mode():
            gap = (twin(**batch).logits.float().softmax(-1) - single.model(**batch).logits.softmax(-1)).abs().max()
        bound[name] = 1.5 * float(gap) + 1e-2
    for (name, _), r, w in zip(items, got, want):
        assert r["probs"] == pytest.approx(w["probs"], abs=bound[name])
    assert Counting.rows_fp32 < len(items)  # bf16 answered rows on its own


def test_fused_stacks_compute_what_the_hooks_compute(tiny_adapters):
    """The bf16 twin's fused layers ([x | x A ⊙ M] · [W | B]ᵀ, or the branch added to a narrowing
    layer's output), checked in fp32 against the hooks."""
    import copy

    from lorakit.data.batching import collate
    from lorakit.infer.stacked import Fused, Stacks

    e = engine_with(tiny_adapters, "plain", "flipped", precision="fp32", merge_single=False)
    pool = e._pools[LORA]
    names = [e._peft_name[n] for n in ("plain", "flipped", "plain", "flipped", "flipped", "plain")]
    batch = collate(e._tokenize([("plain", t) for t in TEXTS]), e.tokenizer.pad_token_id)
    with torch.inference_mode(), pool.stacks.rows(names):
        hooked = pool.model(**batch).logits
    pool.stacks.close()
    twin = copy.deepcopy(pool.model)
    fused = Stacks(twin, fuse=True)
    fused.build(pool.names)
    assert {m.widen for m in twin.modules() if isinstance(m, Fused)} == {True, False}  # both kinds
    with torch.inference_mode(), fused.rows(names):
        got = twin(**batch).logits
    torch.testing.assert_close(got, hooked, atol=1e-5, rtol=0)
    fused.close()  # the base layers come back, reading the same weights
    assert not any(isinstance(m, Fused) for m in twin.modules())
