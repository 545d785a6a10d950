import random

import torch

from lorakit.data.batching import bucket_batches, collate, sorted_batches


def test_bucket_batches_cover_every_index_once_and_group_lengths():
    rng = random.Random(0)
    lengths = [rng.randint(3, 120) for _ in range(1003)]
    batches = bucket_batches(lengths, 32, seed=0, epoch=1)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1003))
    assert all(len(b) <= 32 for b in batches)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.15 * sum(lengths)  # random batches would pad to ~1.9x here


def test_bucket_batches_are_seeded_and_change_per_epoch():
    lengths = list(range(500))
    assert bucket_batches(lengths, 16, 0, 1) == bucket_batches(lengths, 16, 0, 1)
    assert bucket_batches(lengths, 16, 0, 1) != bucket_batches(lengths, 16, 0, 2)
    assert bucket_batches(lengths, 16, 0, 1) != bucket_batches(lengths, 16, 1, 1)


def test_sorted_batches_and_collate():
    lengths = [5, 1, 3]
    assert sorted_batches(lengths, 2) == [[1, 2], [0]]
    b = collate([[7, 8, 9], [4]], pad_id=0)  # widths are multiples of 4: fewer distinct batch shapes
    assert b["input_ids"].tolist() == [[7, 8, 9, 0], [4, 0, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert collate([list(range(8))], pad_id=0)["input_ids"].shape == (1, 8)
    assert collate([list(range(9))], pad_id=0)["input_ids"].shape == (1, 12)
    assert collate([list(range(9))], pad_id=0, multiple=1)["input_ids"].shape == (1, 9)
    assert b["input_ids"].dtype == torch.long


def test_padded_widths_take_few_values_and_little_padding():
    from lorakit.data.batching import padded_width

    widths = {padded_width(n) for n in range(1, 513)}
    assert len(widths) == 40  # 16 up to 64 tokens, then eight per doubling
    assert all(n <= padded_width(n) <= max(n + 3, n * 1.125) for n in range(1, 2049))
    assert [padded_width(n) for n in (64, 65, 128, 129, 300, 512)] == [64, 72, 128, 144, 320, 512]


def test_chunks_respect_count_and_token_budget():
    from lorakit.data.batching import chunks

    lengths = [8, 16, 24, 32, 40, 48]
    assert chunks(list(range(6)), 4) == [[0, 1, 2, 3], [4, 5]]
    # 3 rows x 24 = 72 fit in 100 tokens; a 4th row would pad all to 32 (128)
    assert chunks(list(range(6)), 4, lengths, 100) == [[0, 1, 2], [3, 4], [5]]
    # a text longer than the budget still goes through, alone
    assert chunks([5, 0], 8, lengths, 40) == [[5], [0]]
    # the budget counts widths as padded: two rows of 17 are 2 x 20 tokens
    assert chunks([0, 1], 8, [17, 17], 36) == [[0], [1]]
    assert chunks([0, 1], 8, [17, 17], 40) == [[0, 1]]
    flat = [i for c in chunks(list(range(6)), 3, lengths, 70) for i in c]
    assert flat == list(range(6))


def test_training_passes_of_long_texts_hold_fewer_tokens():
    from lorakit.data.batching import chunks, padded_width, pass_tokens

    assert [pass_tokens(w, 2048) for w in (64, 128, 256, 512)] == [2048, 2048, 1448, 1024]
    # up to 128 tokens training and inference passes are cut alike
    assert chunks(list(range(32)), 32, [128] * 32, 2048, backward=True) == chunks(list(range(32)), 32, [128] * 32, 2048)
    # 16 articles of 512 tokens: 4 per inference pass, 2 per training pass
    assert [len(c) for c in chunks(list(range(16)), 16, [512] * 16, 2048)] == [4] * 4
    assert [len(c) for c in chunks(list(range(16)), 16, [512] * 16, 2048, backward=True)] == [2] * 8
    lengths = [300 + 13 * i for i in range(16)]
    passes = chunks(list(range(16)), 16, lengths, 2048, backward=True)
    assert [i for c in passes for i in c] == list(range(16))
    widths = [padded_width(max(lengths[i] for i in c)) for c in passes]
    assert all(len(c) * w <= pass_tokens(w, 2048) for c, w in zip(passes, widths))
