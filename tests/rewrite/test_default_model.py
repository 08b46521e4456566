"""End-to-end checks of the shipped default model (rewrite/models/default): it loads with no
arguments, restores clear spins of the sample article, and changes no name or number."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from rewrite import Restorer, apply_edits
from unspin.cli import cli

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).resolve().parents[2] / "seeds" / "sample_spun_article.txt"


@pytest.fixture(scope="module")
def restorer():
    return Restorer.from_pretrained()


def test_model_folder_describes_itself(restorer):
    info = restorer.model_info
    folder = Path(info["path"])
    for name in ("model.safetensors", "config.json", "tokenizer.json", "spiece.model", "training_config.json",
                 "data_manifest.json", "metrics.json", "README.md"):
        assert (folder / name).is_file(), name
    assert folder.joinpath("model.safetensors").stat().st_size < 60 * 2**20
    assert info["version"]


def test_restores_clear_spins(restorer):
    result = restorer.restore("The latest assault on Kyiv left not less than 15 individuals useless and 135 wounded.")
    assert "at least 15 people dead" in result.text
    assert apply_edits("The latest assault on Kyiv left not less than 15 individuals useless and 135 wounded.",
                       result.edits) == result.text
    assert all(0.0 <= e.confidence <= 1.0 for e in result.edits)


def test_sample_article_keeps_names_numbers_and_layout(restorer):
    text = SAMPLE.read_text(encoding="utf-8")
    result = restorer.restore(text)
    assert result.edits and 0 < result.spin_ratio < 0.5
    assert result.text.count("\n") == text.count("\n")
    numbers = re.compile(r"\d[\d,.]*")
    assert numbers.findall(result.text) == numbers.findall(text)
    for name in ("Rubio", "Marco", "Trump", "Medvedev", "Kyiv", "Moscow", "India", "China", "U.S."):
        assert result.text.count(name) == text.count(name), name
    assert apply_edits(text, result.edits) == result.text
    assert restorer.restore(result.text).text.count("\n") == text.count("\n")


def test_clean_text_is_left_alone(restorer):
    clean = "The United Nations Security Council met in New York on Tuesday to discuss the crisis."
    assert restorer.restore(clean).text == clean


def test_cli_restores_sample():
    result = CliRunner().invoke(cli, ["rewrite", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert "at least 15 people" in result.output


def test_no_undecodable_bytes_in_an_edit(restorer):
    # The shipped model once wrote 'ｗｉｄｔｈ' -> 13 x U+FFFD at confidence 0.76 (byte pieces that
    # are not UTF-8); the guard refuses any replacement that is not text.
    text = "Café owners mentioned that not less than 15 individuals were useless. ﬁnally Ｆｕｌｌ ｗｉｄｔｈ\n"
    result = restorer.restore(text, min_confidence=0.0)
    assert result.edits, "the clear spins are still restored"
    assert not [e for e in result.edits if "\ufffd" in e.replacement]
    assert apply_edits(text, result.edits) == result.text


def test_the_finder_restores_a_word_the_spinner_repeats_throughout_the_sample(restorer):
    # "mentioned" stands for "said" five times in the sample article; the T5 alone restored one.
    text = (Path(__file__).resolve().parents[2] / "seeds" / "sample_spun_article.txt").read_text(encoding="utf-8")
    result = restorer.restore(text)
    assert restorer.finder is not None
    said = [e for e in result.edits if e.original == "mentioned" and e.replacement == "said"]
    assert len(said) >= 4
    assert all(e.alternatives for e in said)
    for flag in result.flags:
        assert text[flag.offset : flag.offset + flag.length] == flag.text
        assert not any(e.offset < flag.offset + flag.length and flag.offset < e.offset + e.length for e in result.edits)
