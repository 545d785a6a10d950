"""The one generation core: token-id prompts in, texts out, for eval, ``lorakit generate``, the
validation samples and the server.

transformers' ``generate`` does the decoding (KV cache; position ids from the attention mask, so left
padding is invisible to the model); this module decides what it is asked and reads the answers:

- prompts are sorted longest first (the most memory-hungry batch runs first and fails first) and cut
  into batches of at most ``batch_size`` rows and ``max_tokens`` padded prompt tokens, left-padded;
  outputs come back in input order;
- ``generate`` gets an explicit GenerationConfig with every setting that changes the tokens set, so
  the model's own defaults (a sampling default, max_length, a repetition penalty) never leak in;
- sampling gives each prompt a random stream of its own, seeded by the seed and the prompt's place
  in the input: the same prompts and seed give the same texts whatever the batch size or
  ``max_tokens``, and ``stream([p])`` gives what ``generate([p])`` gives;
- a prompt's generation ends at any EOS id that the model's generation config, its config or its
  tokenizer names, or once its text contains a stop string; the text is cut before the stop string.
"""

import math
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation import BaseStreamer, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from lorakit.data.batching import chunks
from lorakit.errors import ConfigError, LorakitError
from lorakit.model.load import quiet_transformers, readable_length

__all__ = ["BASE", "Generator", "Output", "Sampling", "text_pieces"]

BASE = "__base__"  # PEFT's adapter name for "no adapter" in a mixed-adapter batch


@dataclass
class Sampling:
    """How tokens are chosen. The defaults decode greedily: a prompt always gives the same text."""

    max_new_tokens: int = 128
    """Tokens generated per prompt, at most (fewer where the model's positions run out)."""
    temperature: float = 0.0
    """0: greedy, the likeliest token each step; above 0: sampling, more random as it grows."""
    top_p: float = 1.0
    """Sampling draws from the fewest likeliest tokens whose probabilities add up to top_p (1: all)."""
    top_k: int = 0
    """Sampling draws from the top_k likeliest tokens (0: all)."""
    seed: int | None = None
    """The same seed and prompts give the same texts, however they are batched (None: random)."""
    stop: tuple[str, ...] = ()
    """A prompt's generation ends once its text contains one of these; its text is cut before it."""

    def check(self) -> None:
        """A ConfigError naming the option for the first bad value."""
        _require(isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 1, "max-new-tokens", ">= 1",
                 self.max_new_tokens)
        _require(self.temperature >= 0, "temperature", ">= 0", self.temperature)
        _require(0 < self.top_p <= 1, "top-p", "in (0, 1]", self.top_p)
        _require(isinstance(self.top_k, int) and self.top_k >= 0, "top-k", "an integer >= 0", self.top_k)
        _require(self.seed is None or isinstance(self.seed, int), "seed", "an integer", self.seed)
        # A lone string would be taken letter by letter; an empty one would stop every prompt at once.
        _require(not isinstance(self.stop, str), "stop", "a list of strings", repr(self.stop))
        for s in self.stop:
            _require(isinstance(s, str) and s != "", "stop", "a non-empty string", repr(s))


def _require(ok: bool, option: str, rule: str, value) -> None:
    if not ok:
        raise ConfigError(f"--{option} must be {rule}, got {value}")


@dataclass
class Output:
    text: str
    """The generated text: special tokens skipped, cut before a stop string."""
    tokens: list[int]
    """The generated ids, up to and including the one that ended the text (an EOS, or the token that
    completed a stop string); padding never appears."""
    finish_reason: str
    """"stop": an EOS or a stop string ended it; "length": max_new_tokens (or the model's positions) did."""
    prompt_tokens: int


class Generator:
    """Generates with ``model``: any causal LM, a transformers model or a PeftModel around one.

    The model stays where it is: prompts are sent to ``device``, which must be the model's.
    Not thread-safe: one caller at a time.
    """

    def __init__(self, model, tokenizer, device="cpu", batch_size: int = 8, max_tokens: int | None = None):
        if batch_size < 1:
            raise LorakitError(f"batch size must be at least 1, got {batch_size}", "use --batch-size 8")
        if max_tokens is not None and max_tokens < 1:
            raise LorakitError(f"max tokens must be at least 1, got {max_tokens}", "leave it unset, or use 4096")
        quiet_transformers()  # generate's notes about inherited or overridden settings are noise here
        self.model, self.tokenizer = model, tokenizer
        self.device = torch.device(device)
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.eos_ids = eos_ids(model, tokenizer)
        # Padding is masked and never returned, so any id will do: a base without a pad token pads
        # with EOS, without anyone's tokenizer being changed.
        self.pad_id = next(i for i in (tokenizer.pad_token_id, *self.eos_ids, 0) if i is not None)
        self.limit = readable_length(model, tokenizer)

    def generate(self, prompts: list[list[int]], sampling: Sampling,
                 adapter_names: list[str] | None = None, progress=None) -> list[Output]:
        """One Output per prompt, in input order. ``adapter_names``: one PEFT adapter name per prompt
        (``BASE`` for the base model), all run in the same batches. ``progress(n)`` is called as each
        batch of n prompts is done."""
        sampling.check()
        self._check(prompts, adapter_names)
        seeds = _seeds(sampling, len(prompts))
        lengths = [len(p) for p in prompts]
        longest_first = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        out: list[Output | None] = [None] * len(prompts)
        with self._inference():
            for idx in chunks(longest_first, self.batch_size, lengths, self.max_tokens):
                rows = self._run([prompts[i] for i in idx], sampling, [seeds[i] for i in idx] if seeds else None,
                                 [adapter_names[i] for i in idx] if adapter_names is not None else None)
                for i, row in zip(idx, rows):
                    out[i] = row
                if progress is not None:
                    progress(len(idx))
        return out

    def stream(self, prompt: list[int], sampling: Sampling, adapter_name: str | None = None) -> Iterator[str]:
        """The text of ``generate([prompt])[0]`` in pieces, each given as soon as it is final.

        generate runs in a thread; closing the iterator early stops it at the next token."""
        sampling.check()  # here, not in the generator below: a bad value fails at the call
        self._check([prompt], None if adapter_name is None else [adapter_name])
        return self._stream(prompt, sampling, adapter_name)

    def _stream(self, prompt, sampling, adapter_name) -> Iterator[str]:
        tokens, cancel = _Tokens(), threading.Event()

        def run():
            try:
                with self._inference():
                    self._run([prompt], sampling, _seeds(sampling, 1), None if adapter_name is None else [adapter_name],
                              streamer=tokens, cancel=cancel)
            except BaseException as e:  # handed to the reader, which raises it
                tokens.fail(e)
            finally:
                tokens.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield from text_pieces(self.tokenizer, tokens, self.eos_ids, sampling.stop)
        finally:
            cancel.set()
            thread.join()

    # ---- one batch -------------------------------------------------------------------------

    def _run(self, prompts, sampling, seeds, names, streamer=None, cancel=None) -> list[Output]:
        ids, mask = left_pad(prompts, self.pad_id)
        width = ids.shape[1]
        # Learned position tables (GPT-2) end at the limit: the batch stops before its longest row gets there.
        new = sampling.max_new_tokens if self.limit is None else min(sampling.max_new_tokens, self.limit - width)
        ends = RowEnds(self.tokenizer, self.eos_ids, sampling.stop, width, cancel)
        processors = LogitsProcessorList([RowSampler(sampling, seeds)] if seeds else [])
        seqs = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                   generation_config=generation_config(new, self.eos_ids, self.pad_id),
                                   logits_processor=processors, stopping_criteria=StoppingCriteriaList([ends]),
                                   streamer=streamer, **({"adapter_names": names} if names is not None else {}))
        return [self._output(seq[width:].tolist(), ends.at.get(row), sampling.stop, len(p))
                for row, (seq, p) in enumerate(zip(seqs.cpu(), prompts))]

    def _output(self, generated: list[int], end: int | None, stops, prompt_tokens: int) -> Output:
        tokens = generated if end is None else generated[:end]
        text, _ = final_text(self.tokenizer, tokens, self.eos_ids, stops)
        return Output(text, tokens, "length" if end is None else "stop", prompt_tokens)

    def _check(self, prompts, adapter_names) -> None:
        if adapter_names is not None and len(adapter_names) != len(prompts):
            raise ValueError(f"{len(adapter_names)} adapter names for {len(prompts)} prompts")
        for i, p in enumerate(prompts):
            if not p:
                raise LorakitError(f"prompt {i + 1} is empty", "give it at least one token")
            if self.limit is not None and len(p) >= self.limit:
                raise LorakitError(f"prompt {i + 1} has {len(p)} tokens; the model reads at most {self.limit}, "
                                   "leaving no room for an answer", "shorten the prompt")

    @contextmanager
    def _inference(self):
        """Eval mode (no dropout) without autograd; a model that was training (validation samples)
        goes back to training."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            if was_training:
                self.model.train()


def eos_ids(model, tokenizer) -> list[int]:
    """Every id that ends a text. Chat models often name several (end of turn, end of text), some in
    the generation config, some in the config, some in the tokenizer."""
    ids: list[int] = []
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        for i in [value] if isinstance(value, int) else value or []:
            if i not in ids:
                ids.append(i)
    return ids


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask), padded on the left: every row's next token comes at the same column."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[row, width - len(p):] = 1
    return ids, mask


def generation_config(max_new_tokens: int, eos: list[int], pad_id: int) -> GenerationConfig:
    """Greedy decoding with every setting that changes the tokens set: generate fills the settings
    left unset from the model's own generation config. (Constraints a model declares for itself, such
    as suppressed tokens, still apply.) Sampling is RowSampler's: generate takes the token it leaves."""
    return GenerationConfig(
        max_new_tokens=max_new_tokens, min_new_tokens=0, do_sample=False, num_beams=1,
        num_return_sequences=1, repetition_penalty=1.0, no_repeat_ngram_size=0,
        # Unused without do_sample; set to the values transformers takes for unset, so none is inherited
        # (nor warned about).
        temperature=1.0, top_p=1.0, top_k=50, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0,
        eos_token_id=eos or None, pad_token_id=pad_id, use_cache=True)


def _seeds(sampling: Sampling, n: int) -> list[int] | None:
    """One seed per prompt, from the seed and the prompt's place in the input (None: greedy).
    Without a seed, torch's global generator picks one: torch.manual_seed makes it repeatable."""
    if sampling.temperature == 0:
        return None
    base = sampling.seed if sampling.seed is not None else int(torch.randint(0, 2**62, ()))
    return [(base * 1_000_003 + i) % 2**63 for i in range(n)]


class RowSampler(LogitsProcessor):
    """Sampling (temperature, then top-k, then top-p, as transformers orders them) with one random
    stream per row: a row's draws do not depend on the rows that share its batch.

    It runs after generate's own processors and leaves only the drawn token possible, which
    generate's greedy step then picks.
    """

    def __init__(self, sampling: Sampling, seeds: list[int]):
        self.warpers = [TemperatureLogitsWarper(float(sampling.temperature))]
        if sampling.top_k:
            self.warpers.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1:
            self.warpers.append(TopPLogitsWarper(sampling.top_p))
        # CPU generators: the same draws whatever device the model is on.
        self.rngs = [torch.Generator().manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        cdf = scores.softmax(-1).double().cumsum(-1)
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.rngs]).to(cdf.device)
        # 1 - u lies in (0, 1]: the first token whose cumulative probability reaches it has a probability above 0.
        chosen = torch.searchsorted(cdf, ((1 - u) * cdf[:, -1]).unsqueeze(1)).clamp(max=cdf.shape[1] - 1)
        return torch.full_like(scores, -math.inf).scatter_(1, chosen, 0.0)


class RowEnds(StoppingCriteria):
    """Stops each row at an EOS id, or at the token after which its text contains a stop string, and
    records where: ``at[row]`` is the number of generated tokens the row keeps.

    Stop strings are looked for in the decoded text, the very text that is returned (transformers'
    StopStringCriteria matches token strings, which differ from it for some tokenizers). ``cancel``
    stops every row: a stream's reader has gone.
    """

    def __init__(self, tokenizer, eos: list[int], stops: tuple[str, ...], start: int,
                 cancel: threading.Event | None = None):
        self.tokenizer, self.eos, self.stops, self.start, self.cancel = tokenizer, set(eos), stops, start, cancel
        self.at: dict[int, int] = {}

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        generated = input_ids[:, self.start:].tolist()
        for row, ids in enumerate(generated):
            if row not in self.at and (ids[-1] in self.eos or self._stopped(ids)):
                self.at[row] = len(ids)
        if self.cancel is not None and self.cancel.is_set():
            return torch.ones(len(generated), dtype=torch.bool, device=input_ids.device)
        return torch.tensor([row in self.at for row in range(len(generated))], device=input_ids.device)

    def _stopped(self, ids: list[int]) -> bool:
        return bool(self.stops) and stop_index(decode(self.tokenizer, ids), self.stops) is not None


def decode(tokenizer, ids: list[int]) -> str:
    """Text of ids as the tokenizer writes it (its own spacing), without special tokens."""
    return tokenizer.decode(ids, skip_special_tokens=True)


def stop_index(text: str, stops: Iterable[str]) -> int | None:
    """Where the first stop string in ``text`` starts (None: none is there)."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def final_text(tokenizer, ids: list[int], eos: Iterable[int], stops) -> tuple[str, bool]:
    """(the text of a row's generated ids, whether it has ended): an ending EOS is not text (even one
    that is not a special token); the text is cut before a stop string."""
    ended = bool(ids) and ids[-1] in eos
    text = decode(tokenizer, ids[:-1] if ended else ids)
    cut = stop_index(text, stops)
    return (text, ended) if cut is None else (text[:cut], True)


def text_pieces(tokenizer, tokens: Iterable[int], eos: Iterable[int], stops: tuple[str, ...] = ()) -> Iterator[str]:
    """The text of ``tokens`` as they arrive, in pieces that are never taken back: joined, they are
    ``final_text`` of all of them (up to the first EOS or stop string, after which nothing is read)."""
    eos = set(eos)
    ids: list[int] = []
    given = 0  # characters already yielded
    for token in tokens:
        ids.append(token)
        text, ended = final_text(tokenizer, ids, eos, stops)
        if ended:
            break
        end = settled(text, stops)
        if end > given:
            yield text[given:end]
            given = end
    text, _ = final_text(tokenizer, ids, eos, stops)
    if len(text) > given:
        yield text[given:]


def settled(text: str, stops: tuple[str, ...]) -> int:
    """How much of a text still being generated is final. Held back: an incomplete character (U+FFFD
    at the end, until the next token completes its bytes); trailing whitespace (a tokenizer's clean-up
    may still drop it: "a ." decodes as "a."); an end that may be the start of a stop string."""
    text = text.rstrip("\ufffd").rstrip()
    held = max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
    return len(text) - held


class _Tokens(BaseStreamer):
    """generate's new tokens handed from its thread to the reader (generate puts the prompt first)."""

    def __init__(self):
        self.queue: queue.Queue = queue.Queue()
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if self.prompt_seen:
            self.queue.put(value.flatten().tolist())
        self.prompt_seen = True

    def end(self) -> None:
        self.queue.put(None)

    def fail(self, error: BaseException) -> None:
        self.queue.put(error)

    def __iter__(self) -> Iterator[int]:
        while (item := self.queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield from item
