"""lorakit generate: text written by a generation run (or a causal-LM base), streamed to the terminal,
one JSON line per input for files, or an interactive chat."""

import json
import sys
from itertools import islice

from lorakit.cli.output import err
from lorakit.errors import LorakitError

CHUNK = 256  # prompts read from a file per batch of work: bounded memory for any file size


def _sampling(a):
    from lorakit.model.generate import Sampling

    s = Sampling(max_new_tokens=a.max_new_tokens, temperature=a.temperature, top_p=a.top_p, top_k=a.top_k,
                 seed=a.seed, stop=tuple(a.stop or ()))
    s.check()
    return s


def _write(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def _print_streamed(generator, prompt, sampling) -> None:
    for piece in generator.stream(prompt, sampling):
        _write(piece)
    _write("\n")


def _file(generator, a, sampling) -> None:
    from lorakit.infer import inputs

    prompts = inputs.read_file(a.file, a.prompt_column)
    out = open(a.out, "w", encoding="utf-8") if a.out else sys.stdout
    try:
        while chunk := list(islice(prompts, CHUNK)):
            for prompt, o in zip(chunk, generator.generate(chunk, sampling)):
                out.write(json.dumps({"prompt": prompt, "output": o.text, "finish_reason": o.finish_reason,
                                      "tokens": len(o.tokens)}, ensure_ascii=False) + "\n")
                out.flush()
    finally:
        if a.out:
            out.close()


def _chat(generator, sampling) -> None:
    """A conversation on the terminal: each reply streams; /reset starts over; an empty line or EOF ends."""
    messages: list[dict] = []
    err.print("chat: type a message (/reset starts over, an empty line ends)", highlight=False)
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        if not line.strip():
            break
        if line.strip() == "/reset":
            messages = []
            continue
        messages.append({"role": "user", "content": line})
        reply = []
        for piece in generator.stream(messages, sampling):
            reply.append(piece)
            _write(piece)
        _write("\n")
        messages.append({"role": "assistant", "content": "".join(reply)})


def cmd_generate(a) -> None:
    from lorakit.infer.textgen import load

    sampling = _sampling(a)
    if sum(map(bool, (a.prompts, a.file, a.chat))) > 1:
        raise LorakitError("give prompts, --file or --chat: one of them")
    if not (a.prompts or a.file or a.chat):
        if sys.stdin.isatty():
            raise LorakitError("no prompt", "give PROMPT arguments, --file FILE, --chat, or pipe prompts on stdin")
    generator = load(a.run, a.batch_size)
    if a.chat:
        _chat(generator, sampling)
    elif a.file:
        _file(generator, a, sampling)
    elif len(a.prompts) == 1 and not a.json:
        _print_streamed(generator, a.prompts[0], sampling)
    else:
        from lorakit.infer import inputs

        prompts = a.prompts or list(inputs.lines(sys.stdin))
        for prompt, o in zip(prompts, generator.generate(prompts, sampling)):
            if a.json:
                print(json.dumps({"prompt": prompt, "output": o.text, "finish_reason": o.finish_reason,
                                  "tokens": len(o.tokens)}, ensure_ascii=False))
            else:
                print(o.text)


def register(sub) -> None:
    s = sub.add_parser("generate", help="write text with a generation run, adapter, merged model or base model")
    s.add_argument("run", metavar="RUN_OR_MODEL",
                   help="run folder (e.g. runs/headlines), installed adapter, merged folder, or a base model (smollm2)")
    s.add_argument("prompts", nargs="*", metavar="PROMPT", help="one prompt streams; several print one output each")
    s.add_argument("--file", help="prompts from a .txt (one per line), .csv or .jsonl file: one JSON line per input")
    s.add_argument("--prompt-column", default="prompt", help="column or field of --file holding the prompt")
    s.add_argument("--out", help="write --file's JSON lines here instead of stdout")
    s.add_argument("--chat", action="store_true", help="an interactive conversation (the base's chat template)")
    s.add_argument("--max-new-tokens", type=int, default=128)
    s.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy; above 0: sampling")
    s.add_argument("--top-p", type=float, default=1.0)
    s.add_argument("--top-k", type=int, default=0, help="0: off")
    s.add_argument("--seed", type=int, help="makes sampling repeatable")
    s.add_argument("--stop", action="append", metavar="TEXT", help="stop when this text is written (repeatable)")
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--json", action="store_true", help="one JSON line per prompt")
    s.set_defaults(func=cmd_generate, trailing="prompts")
