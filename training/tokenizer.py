"""SentencePiece tokenizer for the restorer, saved as a Hugging Face tokenizer folder.

    >>> folder = train_tokenizer(sentences, "runs/tok", vocab_size=16000)
    >>> tok = load_tokenizer(folder)          # AutoTokenizer, len(tok) == 16000
    >>> tok.decode(tok("Zürich 😀").input_ids, skip_special_tokens=True)
    'Zürich 😀'

The folder holds ``spiece.model`` (the SentencePiece unigram model: cased, identity
normalisation, ``byte_fallback`` so every character round-trips) and ``tokenizer.json``, the same
model for the ``tokenizers`` library with a byte-fallback decoder. ``AutoTokenizer`` loads the
latter. (``T5Tokenizer.from_pretrained`` also loads the folder with the same ids, but in
transformers 5.x it rebuilds itself from ``spiece.model`` and drops byte fallback, so characters
outside the vocabulary decode to nothing: use ``load_tokenizer``.)

Special ids follow T5: pad 0, eos 1, unk 2; bytes ``<0x00>``..``<0xFF>`` come next.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

from .errors import ConfigError, TrainingError

SPECIAL = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}


def train_tokenizer(
    sentences: Iterable[str],
    out_dir: str | Path,
    vocab_size: int = 16000,
    max_sentences: int = 2_000_000,
    seed: int = 13,
) -> Path:
    """Train a unigram SentencePiece model on ``sentences`` and write a tokenizer folder."""
    if vocab_size < 300:
        raise ConfigError("vocab_size must be at least 300 (256 byte pieces plus specials and text)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_prefix=str(out / "spiece"),
            vocab_size=vocab_size,
            model_type="unigram",
            byte_fallback=True,
            character_coverage=0.9995,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            split_digits=True,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise TrainingError(f"tokenizer training failed ({exc}); give it more text or a smaller vocab_size") from exc
    write_hf_files(out)
    return out


def write_hf_files(folder: Path) -> None:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` beside ``spiece.model``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    sp = spm.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", sp.eos_id())]
    )
    tok.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 512,
        "clean_up_tokenization_spaces": False,
        "extra_ids": 0,  # T5TokenizerFast would otherwise append 100 sentinel tokens
        **SPECIAL,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "special_tokens_map.json").write_text(json.dumps(SPECIAL, indent=2) + "\n")


def load_tokenizer(folder: str | Path):
    """Load the tokenizer of a model or tokenizer folder (``AutoTokenizer``)."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if not (folder / name).is_file():
            raise TrainingError(f"{folder} has no {name}; train one with `unspin train` or copy it from the model")
    return AutoTokenizer.from_pretrained(str(folder))
