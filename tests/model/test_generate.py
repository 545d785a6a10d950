"""The generation core on tiny random Llama and GPT-2 bases (word-level tokenizer, no pad token).

References are computed without the code under test: greedy decoding by a plain loop of full forward
passes (no KV cache, no padding), stop points by decoding every prefix.
"""

import random

import pytest
import torch
from helpers import LM_VOCAB, make_tiny_causal_lm

from lorakit.errors import ConfigError
from lorakit.model.generate import BASE, Generator, Sampling, text_pieces

WORDS = list(range(LM_VOCAB.index("translate"), len(LM_VOCAB)))  # ordinary words: no special token
BOS, EOS = 1, 2


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)


def _lively(path, std=0.5):
    """The base with larger random weights: at the usual init scale a tiny model repeats one token
    forever, which would make every order, stop and batching test pass trivially."""
    model, _ = _load(path)
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=rng) * std)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def base_dirs(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("causal")
    return {kind: _lively(make_tiny_causal_lm(root / kind, kind=kind)) for kind in ("llama", "gpt2")}


@pytest.fixture(scope="module")
def llama(base_dirs):
    return _load(base_dirs["llama"])


@pytest.fixture(scope="module")
def gpt2(base_dirs):
    return _load(base_dirs["gpt2"])


def prompts_of(lengths, seed=0):
    rng = random.Random(seed)
    return [[BOS] + [rng.choice(WORDS) for _ in range(n - 1)] for n in lengths]


def greedy_reference(model, prompt, n):
    """n greedy tokens by full forward passes over the unpadded prompt (stops after an EOS)."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
            if ids[-1] == EOS:
                break
    return ids[len(prompt):]


def decode(tok, ids):
    return tok.decode(ids, skip_special_tokens=True)


def texts(outputs):
    return [o.text for o in outputs]


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_batched_greedy_equals_each_prompt_alone(kind, request):
    model, tok = request.getfixturevalue(kind)
    prompts = prompts_of([9, 2, 23, 14, 5, 31, 17])
    batched = Generator(model, tok, batch_size=4).generate(prompts, Sampling(max_new_tokens=10))
    alone = [Generator(model, tok, batch_size=1).generate([p], Sampling(max_new_tokens=10))[0] for p in prompts]
    assert batched == alone
    for p, out in zip(prompts, batched):
        assert out.tokens == greedy_reference(model, p, 10)
        assert out.prompt_tokens == len(p)
        assert out.text == decode(tok, out.tokens)


def test_input_order_kept_with_very_different_lengths(llama):
    model, tok = llama
    prompts = prompts_of([1, 60, 3, 45, 2, 30, 8], seed=1)
    outputs = Generator(model, tok, batch_size=2).generate(prompts, Sampling(max_new_tokens=6))
    assert [o.prompt_tokens for o in outputs] == [len(p) for p in prompts]
    assert [o.tokens for o in outputs] == [greedy_reference(model, p, 6) for p in prompts]


def test_progress_is_told_each_batch_as_it_is_done(llama):
    model, tok = llama
    done = []
    outputs = Generator(model, tok, batch_size=3).generate(prompts_of([4, 9, 2, 7, 5, 3, 8]), Sampling(max_new_tokens=2),
                                                            progress=done.append)
    assert done == [3, 3, 1] and len(outputs) == 7


def test_base_without_pad_token_pads_with_eos_and_leaves_the_tokenizer_alone(llama):
    model, tok = llama
    assert tok.pad_token_id is None
    prompts = prompts_of([3, 12, 7], seed=2)
    outputs = Generator(model, tok, batch_size=3).generate(prompts, Sampling(max_new_tokens=8))
    assert tok.pad_token_id is None
    for p, out in zip(prompts, outputs):
        assert out.tokens == greedy_reference(model, p, 8)
        assert out.finish_reason == "length" and len(out.tokens) == 8 and EOS not in out.tokens


def test_model_generation_defaults_do_not_leak_in(llama, monkeypatch):
    model, tok = llama
    prompts = prompts_of([4, 11], seed=3)
    expected = Generator(model, tok).generate(prompts, Sampling(max_new_tokens=9))
    for key, value in {"do_sample": True, "temperature": 5.0, "top_k": 2, "max_length": 3,
                       "repetition_penalty": 10.0, "no_repeat_ngram_size": 1, "min_new_tokens": 20}.items():
        monkeypatch.setattr(model.generation_config, key, value)
    assert Generator(model, tok).generate(prompts, Sampling(max_new_tokens=9)) == expected


def _ending_token(first, others):
    """A token of ``first`` (not its first) that none of ``others`` contains, and where it first comes."""
    for k, token in enumerate(first[1:], 1):
        if token not in first[:k] and all(token not in o for o in others):
            return token, k
    pytest.skip("the random model repeats the same tokens in every row")


@pytest.mark.parametrize("where", ["tokenizer", "generation_config"])
def test_eos_stops_a_row_while_the_others_continue(llama, base_dirs, monkeypatch, where):
    model, tok = llama
    prompts = prompts_of([5, 9, 13], seed=4)
    full = [greedy_reference(model, p, 12) for p in prompts]
    eos, k = _ending_token(full[0], full[1:])
    if where == "tokenizer":  # the tokenizer names one EOS, the model's configs another: both end a text
        tok = _load(base_dirs["llama"])[1]
        tok.eos_token = LM_VOCAB[eos]
    else:  # chat models list several EOS ids in their generation config
        monkeypatch.setattr(model.generation_config, "eos_token_id", [EOS, eos])
    outputs = Generator(model, tok).generate(prompts, Sampling(max_new_tokens=12))
    assert outputs[0].tokens == full[0][:k + 1] and outputs[0].finish_reason == "stop"
    assert outputs[0].text == decode(tok, full[0][:k])  # the EOS is not text
    assert [o.tokens for o in outputs[1:]] == full[1:]
    assert [o.finish_reason for o in outputs[1:]] == ["length", "length"]


def test_stop_strings_end_rows_and_cut_their_text(llama):
    model, tok = llama
    prompts = prompts_of([6, 10, 4], seed=5)
    full = [greedy_reference(model, p, 12) for p in prompts]
    words = decode(tok, full[0]).split()
    stop = " ".join(words[2:4])  # two words: unlikely to occur in the other rows
    outputs = Generator(model, tok).generate(prompts, Sampling(max_new_tokens=12, stop=(stop, "no such words")))
    for ids, out in zip(full, outputs):
        k = next((k for k in range(1, len(ids) + 1) if stop in decode(tok, ids[:k])), None)
        if k is None:
            assert (out.tokens, out.finish_reason) == (ids, "length")
            assert out.text == decode(tok, ids)
        else:
            assert (out.tokens, out.finish_reason) == (ids[:k], "stop")
            text = decode(tok, ids[:k])
            assert out.text == text[:text.index(stop)] and stop not in out.text
    assert outputs[0].finish_reason == "stop"


def test_max_new_tokens_gives_length(gpt2):
    model, tok = gpt2
    outputs = Generator(model, tok).generate(prompts_of([3, 7], seed=6), Sampling(max_new_tokens=5))
    assert [(len(o.tokens), o.finish_reason) for o in outputs] == [(5, "length"), (5, "length")]


def test_generation_stops_where_learned_positions_end(gpt2):
    model, tok = gpt2  # 128 positions
    prompt = prompts_of([120], seed=7)[0]
    out = Generator(model, tok).generate([prompt], Sampling(max_new_tokens=50))[0]
    assert (len(out.tokens), out.finish_reason) == (8, "length")


def test_seeded_sampling_is_reproducible_whatever_the_batches(llama):
    model, tok = llama
    prompts = prompts_of([4, 9, 15, 6, 12], seed=8)
    sampling = Sampling(max_new_tokens=12, temperature=1.0, seed=7)
    once = Generator(model, tok, batch_size=8).generate(prompts, sampling)
    assert Generator(model, tok, batch_size=8).generate(prompts, sampling) == once
    assert Generator(model, tok, batch_size=2).generate(prompts, sampling) == once
    assert Generator(model, tok, batch_size=1).generate(prompts, sampling) == once
    assert Generator(model, tok, batch_size=2).generate(prompts, Sampling(max_new_tokens=12, temperature=1.0,
                                                                          seed=8)) != once
    greedy = Generator(model, tok).generate(prompts, Sampling(max_new_tokens=12))
    assert texts(once) != texts(greedy)
    # Keeping only the likeliest token is greedy decoding, whatever the seed.
    for narrow in (Sampling(max_new_tokens=12, temperature=1.5, top_k=1, seed=3),
                   Sampling(max_new_tokens=12, temperature=0.8, top_p=1e-6, seed=4)):
        assert Generator(model, tok).generate(prompts, narrow) == greedy


def test_stream_pieces_join_to_the_generated_text(llama):
    model, tok = llama
    gen = Generator(model, tok)
    prompt = prompts_of([7], seed=9)[0]
    words = decode(tok, greedy_reference(model, prompt, 12)).split()
    for sampling in (Sampling(max_new_tokens=12), Sampling(max_new_tokens=12, temperature=1.0, seed=5),
                     Sampling(max_new_tokens=12, stop=(" ".join(words[3:5]),))):
        pieces = list(gen.stream(prompt, sampling))
        assert len(pieces) > 1 and all(pieces)
        assert "".join(pieces) == gen.generate([prompt], sampling)[0].text


def test_stream_stops_generating_when_the_reader_leaves(llama):
    model, tok = llama
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        pieces = Generator(model, tok).stream(prompts_of([5])[0], Sampling(max_new_tokens=100))
        next(pieces)
        pieces.close()
    finally:
        hook.remove()
    assert len(calls) < 20


def test_bad_sampling_values_fail_at_the_stream_call(llama):
    with pytest.raises(ConfigError, match="--top-k"):
        Generator(*llama).stream([BOS], Sampling(top_k=-2))


def _byte_tokenizer():
    """A byte-level tokenizer with one token per byte: most characters take several tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    bpe = Tokenizer(models.BPE({c: i for i, c in enumerate(alphabet)}, []))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=bpe)


def test_text_pieces_never_split_a_character():
    tok = _byte_tokenizer()
    text = "Déjà vu — 日本語, naïve 👍 end"
    ids = tok(text)["input_ids"]
    assert len(ids) > len(text)
    pieces = list(text_pieces(tok, ids, eos=[]))
    assert "".join(pieces) == text and len(pieces) > 3
    assert not any("\ufffd" in p for p in pieces)


def test_text_pieces_hold_back_what_may_start_a_stop_string():
    tok = _byte_tokenizer()
    ids = tok("one two three four")["input_ids"]
    pieces = list(text_pieces(tok, ids, eos=[], stops=("two thr",)))
    assert "".join(pieces) == "one "
    assert all(not p.endswith("tw") for p in pieces)


def test_max_tokens_splits_batches_without_changing_results(llama):
    model, tok = llama
    prompts = prompts_of([12, 3, 9, 20, 5, 7, 16], seed=10)
    sampling = Sampling(max_new_tokens=6)
    whole = Generator(model, tok, batch_size=8).generate(prompts, sampling)
    shapes = []
    generate = model.generate
    model.generate = lambda **k: shapes.append(tuple(k["input_ids"].shape)) or generate(**k)
    try:
        split = Generator(model, tok, batch_size=8, max_tokens=40).generate(prompts, sampling)
    finally:
        del model.generate
    assert split == whole
    assert len(shapes) > 2 and sum(rows for rows, _ in shapes) == len(prompts)
    assert all(rows * width <= 40 or rows == 1 for rows, width in shapes)


@pytest.mark.parametrize("values, option", [
    ({"temperature": -1}, "--temperature must be >= 0, got -1"),
    ({"top_p": 0}, "--top-p"), ({"top_p": 1.5}, "--top-p"), ({"top_k": -1}, "--top-k"),
    ({"max_new_tokens": 0}, "--max-new-tokens"), ({"seed": "x"}, "--seed"),
    ({"stop": ("",)}, "--stop"), ({"stop": "END"}, "--stop"),
])
def test_bad_sampling_values_name_the_option(values, option):
    with pytest.raises(ConfigError) as e:
        Sampling(**values).check()
    assert option in str(e.value) and "\n" not in str(e.value)


def test_empty_prompt_is_a_user_error(llama):
    from lorakit.errors import LorakitError

    with pytest.raises(LorakitError, match="prompt 2 is empty"):
        Generator(*llama).generate([[BOS], []], Sampling())


def test_mixed_adapter_batch_equals_each_adapter_alone(base_dirs):
    from peft import LoraConfig, get_peft_model

    model, tok = _load(base_dirs["llama"])
    torch.manual_seed(0)
    lora = {"r": 4, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj", "down_proj"],
            "init_lora_weights": False}  # random B: each adapter changes the outputs
    peft = get_peft_model(model, LoraConfig(**lora), adapter_name="news")
    peft.add_adapter("bible", LoraConfig(**lora))
    prompts = prompts_of([5, 14, 8, 3, 11], seed=11)
    names = ["news", "bible", BASE, "bible", "news"]
    sampling = Sampling(max_new_tokens=8)

    def alone(name, prompt):
        if name == BASE:
            with peft.disable_adapter():
                return Generator(peft, tok).generate([prompt], sampling)[0]
        peft.set_adapter(name)
        return Generator(peft, tok).generate([prompt], sampling)[0]

    expected = [alone(n, p) for n, p in zip(names, prompts)]
    assert len({tuple(alone(n, prompts[1]).tokens) for n in ("news", "bible", BASE)}) == 3  # the adapters differ
    for batch_size in (8, 2):
        assert Generator(peft, tok, batch_size=batch_size).generate(prompts, sampling, adapter_names=names) == expected


def test_an_error_in_generate_reaches_the_stream_reader(llama):
    pieces = Generator(*llama).stream([BOS, 10_000], Sampling(max_new_tokens=4))  # an id past the vocabulary
    with pytest.raises(IndexError):
        list(pieces)
