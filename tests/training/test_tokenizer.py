import pytest

from training.errors import ConfigError, TrainingError
from training.tokenizer import load_tokenizer

ODD = ["", "?", "Zürich 😀 東京 “quoted” — dashes – and ‘single’ quotes", "Åsa Ödegaard, Łódź, Nguyễn Phú Trọng",
       "emoji 👩‍👩‍👧 and ✓", "tabs\tand  double  spaces"]


def test_round_trip_and_length(tiny_model_dir):
    from transformers import T5ForConditionalGeneration

    tok = load_tokenizer(tiny_model_dir)
    assert len(tok) == 340 == T5ForConditionalGeneration.from_pretrained(tiny_model_dir).config.vocab_size
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    for text in ODD:
        ids = tok(text).input_ids
        assert ids[-1] == tok.eos_token_id
        assert tok.decode(ids, skip_special_tokens=True) == text


def test_t5_tokenizer_class_loads_same_vocabulary(tiny_model_dir):
    from transformers import T5TokenizerFast

    t5 = T5TokenizerFast.from_pretrained(str(tiny_model_dir))
    ours = load_tokenizer(tiny_model_dir)
    assert len(t5) == len(ours)
    assert t5("the war is over").input_ids == ours("the war is over").input_ids


def test_errors(tmp_path):
    from training.tokenizer import train_tokenizer

    with pytest.raises(ConfigError):
        train_tokenizer(["a"], tmp_path, vocab_size=10)
    with pytest.raises(TrainingError, match="tokenizer.json"):
        load_tokenizer(tmp_path)
