"""Rows -> token ids, with the tokens the loss is taken on.

Two ways to turn a prompt/completion row into text, chosen once per run and recorded (meta "chat"):
the base's chat template (the prompt a user turn, the completion the assistant's answer), or plain
text (the prompt, a newline, the completion). Chat rows always use the template; plain-text rows are
trained whole.

The loss is on the completion only (``train_on_prompt`` adds the prompt), and always on the EOS
token that ends each completion: the model learns to stop. Labels mark trained positions by where
they are, never by token value, so a tokenizer whose pad token is its EOS token (SmolLM2's) still
learns EOS.

The chat template is rendered turn by turn (templates such as SmolLM2's have no
``{% generation %}`` markers to find the assistant's tokens): the text an assistant turn adds is the
rendering up to and including it minus the rendering up to the prompt for it.
"""

from dataclasses import dataclass

IGNORE = -100  # the label of positions without loss (transformers' and PyTorch's convention)


class BadRow(ValueError):
    """A row that cannot be trained on as it is (the message says why)."""


@dataclass
class Segment:
    text: str
    trained: bool


def uses_chat(tokenizer, mode: str) -> bool:
    """'auto': the chat template when the base has one."""
    if mode == "chat" and not tokenizer.chat_template:
        from lorakit.errors import ConfigError

        raise ConfigError("data.template=chat, but the base model's tokenizer has no chat template",
                          "set data.template=plain (or auto)")
    return mode == "chat" or (mode == "auto" and bool(tokenizer.chat_template))


def _render(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def chat_segments(tokenizer, messages: list[dict]) -> list[Segment]:
    """The rendered conversation cut into untrained text and the assistant turns' text."""
    segments, done = [], ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], generation_prompt=True)
        upto = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if not (before.startswith(done) and upto.startswith(before)):
            raise BadRow("the chat template renders earlier turns differently once later ones follow; "
                         "lorakit cannot find the assistant's tokens")
        answer = upto[len(before):]
        tail = len(answer) - len(answer.rstrip())  # the newline after the end-of-turn token is not the answer
        segments += [Segment(before[len(done):], False), Segment(answer[: len(answer) - tail], True)]
        done = before + answer[: len(answer) - tail]
    rest = _render(tokenizer, messages, generation_prompt=False)[len(done):]
    if rest:
        segments.append(Segment(rest, False))
    return [s for s in segments if s.text]


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _bos(tokenizer) -> list[int]:
    """The BOS token where the tokenizer adds one to a text by itself (Llama's do, GPT-2's and SmolLM2's do not)."""
    probe = tokenizer("a")["input_ids"]
    return [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None and probe[:1] == [tokenizer.bos_token_id] else []


def _with_eos(tokenizer, ids: list[int]) -> list[int]:
    eos = tokenizer.eos_token_id
    return ids if eos is None or eos in ids[-2:] else ids + [eos]


def encode_segments(tokenizer, segments: list[Segment], train_on_prompt: bool,
                    by_template: bool) -> tuple[list[int], list[int]]:
    """(input ids, labels): each segment tokenised on its own (its boundaries are the template's own
    special tokens or newlines, where tokenisers split anyway); EOS after the last trained segment.
    A chat template writes its own BOS; other text gets the tokenizer's."""
    ids = [] if by_template else _bos(tokenizer)
    labels = [IGNORE] * len(ids)
    last_trained = max((i for i, s in enumerate(segments) if s.trained), default=-1)
    for i, seg in enumerate(segments):
        piece = _ids(tokenizer, seg.text)
        if i == last_trained:
            piece = _with_eos(tokenizer, piece)  # the model must learn to stop
        ids += piece
        labels += piece if seg.trained or train_on_prompt else [IGNORE] * len(piece)
    return ids, labels


def prompt_messages(prompt: str) -> list[dict]:
    return [{"role": "user", "content": prompt}]


def templated(row: dict, chat: bool) -> bool:
    """Is the row rendered with the chat template?"""
    return "messages" in row or (chat and "prompt" in row)


def row_segments(tokenizer, row: dict, chat: bool) -> list[Segment]:
    if "messages" in row:
        return chat_segments(tokenizer, row["messages"])
    if "text" in row:
        return [Segment(row["text"], True)]
    if chat:
        return chat_segments(tokenizer, prompt_messages(row["prompt"]) +
                             [{"role": "assistant", "content": row["completion"]}])
    return [Segment(row["prompt"] + "\n", False), Segment(row["completion"], True)]


def _encode(tokenizer, row: dict, chat: bool, train_on_prompt: bool) -> tuple[list[int], list[int]]:
    return encode_segments(tokenizer, row_segments(tokenizer, row, chat), train_on_prompt, templated(row, chat))


def encode_row(tokenizer, row: dict, max_length: int, chat: bool, train_on_prompt: bool) -> tuple[list[int], list[int]]:
    """(input ids, labels) of one training row within ``max_length`` tokens.

    A prompt that is too long is cut (its source text loses its end: the start of an article or verse
    carries the most), so that the whole completion and its EOS fit; a row whose completion alone
    leaves no room is a bad row. Plain text is cut at ``max_length``.
    """
    ids, labels = _encode(tokenizer, row, chat, train_on_prompt)
    if len(ids) <= max_length:
        return ids, labels
    if "text" in row:
        return ids[:max_length], labels[:max_length]
    if "prompt" not in row:
        raise BadRow(f"the conversation has {len(ids)} tokens, more than data.max_length={max_length}")
    excess = len(ids) - max_length
    for _ in range(3):  # decoding a cut and tokenising it again can differ by a token or two
        row = _shortened(tokenizer, row, excess)
        ids, labels = _encode(tokenizer, row, chat, train_on_prompt)
        if len(ids) <= max_length:
            return ids, labels
        excess = len(ids) - max_length
    raise BadRow(f"the prompt leaves no room for the answer within data.max_length={max_length}")


def _shortened(tokenizer, row: dict, excess: int) -> dict:
    """The row with ``excess`` fewer tokens of its source (of its prompt when it has no source)."""
    in_source = bool(row.get("source")) and row["source"] in row["prompt"]
    text = row["source"] if in_source else row["prompt"]
    pieces = _ids(tokenizer, text)
    if excess >= len(pieces):
        raise BadRow("the prompt leaves no room for the answer within data.max_length")
    cut = tokenizer.decode(pieces[: len(pieces) - excess]).rstrip()
    return {**row, "prompt": row["prompt"].replace(text, cut, 1), **({"source": cut} if in_source else {})}


def prompt_room(max_length: int, new_tokens: int) -> int:
    """Tokens a prompt may keep so that ``new_tokens`` fit after it within ``max_length`` (at least half of it)."""
    return max(max_length - new_tokens, max_length // 2)


def prompt_ids(tokenizer, row: dict, chat: bool, max_prompt: int) -> list[int]:
    """The tokens a model continues from to answer ``row`` (its prompt, or a conversation ending in a
    user turn), at most ``max_prompt`` of them (the source text is cut as in training)."""
    if "messages" in row:
        messages = row["messages"]
        if messages and messages[-1]["role"] == "assistant":
            messages = messages[:-1]  # answer the last user turn
        return _ids(tokenizer, _render(tokenizer, messages, generation_prompt=True))
    for _ in range(4):
        if chat:
            ids = _ids(tokenizer, _render(tokenizer, prompt_messages(row["prompt"]), generation_prompt=True))
        else:
            ids = _bos(tokenizer) + _ids(tokenizer, row["prompt"] + "\n")
        if len(ids) <= max_prompt:
            return ids
        row = _shortened(tokenizer, row, len(ids) - max_prompt)
    return ids[-max_prompt:]
