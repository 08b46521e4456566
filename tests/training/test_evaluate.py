import pytest

from training.evaluate import FrequencyBaseline, score_pair, score_system, spun_spans

SPUN = "The struggle killed not less than 15 individuals in a single day."
ORIGINAL = "The war killed at least 15 people overnight."
EDITS = [
    {"start": 4, "end": 7, "original": "war", "replacement": "struggle"},
    {"start": 15, "end": 23, "original": "at least", "replacement": "not less than"},
    {"start": 27, "end": 33, "original": "people", "replacement": "individuals"},
    {"start": 34, "end": 43, "original": "overnight", "replacement": "in a single day"},
]


def test_spun_spans_follow_the_shifts():
    assert [SPUN[a:b] for a, b, _ in spun_spans(EDITS)] == ["struggle", "not less than", "individuals", "in a single day"]


@pytest.mark.parametrize("output,restored,wrongful", [
    (SPUN, 0, 0),  # doing nothing: no slot restored, nothing wrong
    (ORIGINAL, 4, 0),
    ("The war murdered at least 15 individuals overnight.", 3, 1),
    ("The war killed at least 16 people overnight.", 4, 1),
    ("The war killed at least 15 people overnight. Today", 4, 1),
    ("The war killed at least 15 people overnight today.", 3, 0),  # next to a slot: that slot failed
])
def test_score_pair(output, restored, wrongful):
    score = score_pair(SPUN, output, EDITS)
    assert (score["slots"], score["restored"], score["wrongful"]) == (4, restored, wrongful)


def test_slot_recall_by_source():
    edits = [dict(e, source=s) for e, s in zip(EDITS, ["seed", "moby", "seed", "mythes"])]
    output = "The war killed not less than 15 people in a single day."  # seed slots restored only
    by_source = score_system([SPUN], [ORIGINAL], [output], [edits])["slot_recall_by_source"]
    assert by_source == {"moby": {"recall": 0.0, "slots": 1}, "mythes": {"recall": 0.0, "slots": 1},
                         "seed": {"recall": 1.0, "slots": 2}}
    assert [ok for _, ok in score_pair(SPUN, output, edits)["by_source"]] == [True, False, True, False]


def test_score_system_rates():
    spun = [SPUN, "A clean sentence here."]
    originals = [ORIGINAL, "A clean sentence here."]
    edits = [EDITS, []]
    perfect = score_system(spun, originals, originals, edits)
    assert perfect["slot_recall"] == 1.0 and perfect["exact_match"] == 1.0 and perfect["unchanged_rate_unspun"] == 1.0
    nothing = score_system(spun, originals, spun, edits)
    assert nothing["slot_recall"] == 0.0 and nothing["wrongful_edits_per_100_words"] == 0.0
    meddling = score_system(spun, originals, [ORIGINAL, "A tidy sentence here."], edits)
    assert meddling["unchanged_rate_unspun"] == 0.0 and meddling["wrongful_edits_per_100_words"] > 0


def test_frequency_baseline():
    rows = [[{"original": "said", "replacement": "mentioned", "start": 0, "end": 4}]] * 3
    rows += [[{"original": "at least", "replacement": "not less than", "start": 0, "end": 8}]] * 2
    baseline = FrequencyBaseline(rows)
    assert baseline.restore("Rubio mentioned not less than 15.") == "Rubio said at least 15."
    assert baseline.restore("Mentioned twice.") == "Said twice."
    edits = [{"start": 6, "end": 10, "original": "said", "replacement": "mentioned"}]
    # at the known spans only: "Mentioned" at the start is not a spun span here
    assert baseline.restore_at("Rubio mentioned it. Mentioned twice.", edits) == "Rubio said it. Mentioned twice."
