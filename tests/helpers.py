"""Helpers shared by the tests: a tiny random BERT and tiny decoder-only models on disk, a learnable synthetic dataset, recipe overrides.

(Fixtures live in conftest.py; this module has a unique name so that test files in every folder
can import it.)
"""

import csv
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

WORDS_POS = ["good", "great", "love", "happy", "excellent", "fun"]
WORDS_NEG = ["bad", "awful", "hate", "sad", "terrible", "boring"]
WORDS_NEU = ["the", "movie", "was", "is", "a", "it", "today", "and", "this", "film"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS_POS + WORDS_NEG + WORDS_NEU


def make_tiny_model(path: Path, seed: int = 0, dropout: float = 0.1, hidden: int = 32, layers: int = 2) -> Path:
    """A random BERT base (2 layers, hidden 32 unless told) with its tokenizer, saved as safetensors."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    # transformers 5 ignores vocab_file=: the vocabulary goes in as a mapping, or every word is [UNK].
    BertTokenizerFast(vocab={w: i for i, w in enumerate(VOCAB)}, do_lower_case=True).save_pretrained(path)
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")  # the slow tokenizer's file, as hub folders have it
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(VOCAB), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=64,
                     hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    BertForSequenceClassification(cfg).bert.save_pretrained(path)  # a base model: no classifier head
    return path


# A tiny word-level "translation": number words to French, 1-3 words per row (completions vary in
# length, so a model that learned where to stop shows it).
EN_FR = {"one": "un", "two": "deux", "three": "trois", "four": "quatre", "five": "cinq", "six": "six",
         "seven": "sept", "eight": "huit", "nine": "neuf", "ten": "dix"}
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LM_VOCAB = (["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "system", "user", "assistant", "translate", ":"]
            + list(EN_FR) + sorted(set(EN_FR.values()) - set(EN_FR)) + WORDS_POS + WORDS_NEG + WORDS_NEU)


def make_tiny_causal_lm(path: Path, kind: str = "llama", chat: bool = True, seed: int = 0, hidden: int = 32,
                        layers: int = 2) -> Path:
    """A random decoder-only base (``kind`` llama or gpt2) with a word-level tokenizer that has BOS and
    EOS but no pad token (as many bases), and a ChatML chat template when ``chat``; saved as safetensors."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    words = Tokenizer(models.WordLevel({w: i for i, w in enumerate(LM_VOCAB)}, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    words.decoder = decoders.WordPiece()  # joins words with spaces
    tok = PreTrainedTokenizerFast(tokenizer_object=words, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(path)
    torch.manual_seed(seed)
    if kind == "llama":
        cfg = LlamaConfig(vocab_size=len(LM_VOCAB), hidden_size=hidden, intermediate_size=2 * hidden,
                          num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
                          max_position_embeddings=128, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
        model = LlamaForCausalLM(cfg)
    elif kind == "gpt2":
        cfg = GPT2Config(vocab_size=len(LM_VOCAB), n_embd=hidden, n_layer=layers, n_head=2, n_positions=128,
                         bos_token_id=1, eos_token_id=2)
        model = GPT2LMHeadModel(cfg)
    else:
        raise ValueError(kind)
    # Word vectors as far apart as a real model's (the default init, std 0.02, gives every token about
    # the same logit through the tied output layer, which a frozen base then cannot get away from).
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, 0.15)
    model.save_pretrained(path)
    return path


def translation_rows(n: int, seed: int = 0, max_words: int = 3) -> list[dict]:
    """``n`` rows {"source": "two five", "target": "deux cinq"} of 1 to ``max_words`` number words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice(list(EN_FR)) for _ in range(rng.randint(1, max_words))]
        rows.append({"source": " ".join(words), "target": " ".join(EN_FR[w] for w in words)})
    return rows


def synthetic_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Texts whose label is decided by their words: learnable by a tiny model in a few steps."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = ("positive", "negative", "neutral")[i % 3]
        words = rng.sample(WORDS_NEU, 3)
        if label == "positive":
            words += rng.sample(WORDS_POS, 2)
        elif label == "negative":
            words += rng.sample(WORDS_NEG, 2)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_csv(path: Path, rows, header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def tiny_overrides(run_root: Path, csv_path: Path, model_dir: Path, **extra) -> dict:
    """Recipe overrides for a fast run of the tiny model on the synthetic CSV."""
    o = {
        "name": "tiny", "out_dir": str(run_root), "base": str(model_dir),
        "data.dataset": str(csv_path), "data.max_length": 16,
        "lora.r": 4, "lora.alpha": 8, "lora.dropout": 0.0,
        "train.epochs": 6, "train.batch_size": 16, "train.lr": 0.02, "train.threads": 1,
    }
    o.update(extra)
    return o


def lorakit(*args, stdin=None, cwd=None) -> subprocess.CompletedProcess:
    """``lorakit ARGS`` in a subprocess, as a user runs it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "lorakit", *map(str, args)], input=stdin, capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def overrides(tmp_path, tiny_csv, tiny_model_dir, **extra) -> list[str]:
    """tiny_overrides as command-line key=value arguments."""
    return [f"{k}={v}" for k, v in tiny_overrides(tmp_path / "runs", tiny_csv, tiny_model_dir, **extra).items()]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def assert_user_error(r, text):
    """A user error: exit code 1, one line ``error: ...`` containing ``text``, no traceback."""
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], r.stderr
