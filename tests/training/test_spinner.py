import random

import pytest

from training.errors import ConfigError, LexiconError
from training.lexicon import LexiconConfig, load_lexicon, read_seed_table
from rewrite.edits import Edit, apply_edits
from rewrite.text import WORD_RE
from training.spinner import EngineConfig, Spinner, SpinnerConfig


def spin_all(spinner, text, engine, seed=0):
    return spinner.spin(text, random.Random(seed), rate=1.0, engine=engine)


def test_inflects_verbs_and_nouns(small_lexicon, seed_only_engine):
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine]))
    spun, edits = spin_all(spinner, "He said the wars killed two persons.", seed_only_engine)
    assert "mentioned" in spun
    assert "struggles" in spun
    assert "individuals" in spun
    assert apply_edits("He said the wars killed two persons.", edits) == spun


def test_phrase_longest_match_and_verb_phrase_inflection(small_lexicon, seed_only_engine):
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine]))
    spun, edits = spin_all(spinner, "The talks came ahead of the deadline and at least 15 died.", seed_only_engine)
    assert "got here forward of" in spun
    assert "not less than 15" in spun
    assert {e.original for e in edits} >= {"came ahead of", "at least"}


def test_case_kept_and_all_caps_left_alone(small_lexicon, seed_only_engine):
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine]))
    spun, _ = spin_all(spinner, "War is here. Overnight the WAR ended.", seed_only_engine)
    assert spun.startswith("Struggle is here. In a single day the WAR ended.")


def test_names_match_case_sensitively(small_lexicon, seed_only_engine):
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine]))
    assert "Safety Council" in spin_all(spinner, "The Security Council met.", seed_only_engine)[0]
    assert "security council" in spin_all(spinner, "A security council met.", seed_only_engine)[0]


def test_grammar_not_repaired(small_lexicon, seed_only_engine):
    lexicon = small_lexicon
    lexicon.entries["seed"]["war"][0]  # struggle starts with a consonant; use a vowel variant
    from training.lexicon import Variant

    lexicon.entries["seed"]["dog"] = [Variant("animal", "seed", "word", "NOUN")]
    spinner = Spinner(lexicon, SpinnerConfig(engines=[seed_only_engine]))
    assert spin_all(spinner, "I saw a dog.", seed_only_engine)[0] == "I saw a animal."


def test_quotes_spun_unless_protected(small_lexicon, seed_only_engine):
    text = "“The war is over,” he said."
    plain = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine]))
    assert "struggle" in spin_all(plain, text, seed_only_engine)[0]
    guarded = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine], protect_quotes=True))
    spun, _ = spin_all(guarded, text, seed_only_engine)
    assert spun.startswith("“The war is over,”") and "mentioned" in spun


def test_deterministic_and_unspun_share(small_lexicon):
    engine = EngineConfig("seed", {"seed": 1.0}, 0.3, 0.6, 0.0)
    config = SpinnerConfig(engines=[engine], unspun_share=0.4, seed=5)
    a, b = Spinner(small_lexicon, config), Spinner(small_lexicon, config)
    text = "People said the war was over and at least fifteen people died overnight."
    outs = [a.spin_example(text, "doc", i) for i in range(400)]
    assert outs == [b.spin_example(text, "doc", i) for i in range(400)]
    unspun = sum(1 for spun, edits, engine_name, _ in outs if engine_name == "none")
    assert 0.32 < unspun / 400 < 0.48
    assert all(spun == text and not edits for spun, edits, name, _ in outs if name == "none")
    assert any(spun != text for spun, *_ in outs)


def test_rate_controls_share(small_lexicon):
    text = " ".join(["people war dead say"] * 10)
    spinner = Spinner(small_lexicon)
    light = EngineConfig("l", {"seed": 1.0}, 0.1, 0.1)
    heavy = EngineConfig("h", {"seed": 1.0}, 0.6, 0.6)
    n_light = len(spinner.spin(text, random.Random(1), 0.1, light)[1])
    n_heavy = len(spinner.spin(text, random.Random(1), 0.6, heavy)[1])
    assert n_light == 4 and n_heavy == 24


def test_swaps_are_library_edits_with_their_source(small_lexicon, seed_only_engine):
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine]))
    text = "He said the wars killed two persons."
    spun, edits = spin_all(spinner, text, seed_only_engine)
    assert edits and all(type(e) is Edit for e in edits)
    assert [e.offset for e in edits] == sorted(e.offset for e in edits)
    assert {e.source for e in edits} == {"seed"} and {e.confidence for e in edits} == {1.0}
    assert all(text[e.offset : e.offset + e.length] == e.original for e in edits)
    assert edits[0].to_dict()["source"] == "seed"


def test_malformed_seed_line_names_file_and_line(tmp_path):
    bad = tmp_path / "t.tsv"
    bad.write_text("say\tmention\tword\tVERB\nwar\tstruggle\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"t.tsv:2"):
        read_seed_table(bad)
    bad.write_text("say\tmention\tverbish\t\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="kind"):
        read_seed_table(bad)
    with pytest.raises(LexiconError, match="not found"):
        read_seed_table(tmp_path / "missing.tsv")


def test_engine_config_validated():
    with pytest.raises(ConfigError):
        EngineConfig("x", {"seed": 1.0}, 0.5, 0.2)
    with pytest.raises(ConfigError):
        SpinnerConfig(engines=[])


def test_shipped_seed_table_is_large_and_valid():
    from training.lexicon import SEED_TABLE

    table = read_seed_table(SEED_TABLE)
    variants = sum(len(v) for v in table.values())
    assert len(table) >= 1500
    kinds = {v.kind for vs in table.values() for v in vs}
    assert kinds == {"word", "phrase", "idiom", "compound", "name", "contraction", "number"}
    assert variants >= len(table)


@pytest.mark.slow
def test_all_sources_load_and_spin():
    from training.lexicon import DEFAULT_PPDB

    lexicon = load_lexicon(LexiconConfig())
    sizes = lexicon.sizes()
    # PPDB is not shipped: it is read from ../shared when the workspace has it, else skipped.
    for source in ("seed", "moby", "meteor") + (("ppdb",) if DEFAULT_PPDB.is_file() else ()):
        assert sizes[source]["phrases"] > 1000, source
    spinner = Spinner(lexicon)
    text = "The government said at least 15 people were killed in attacks on the capital overnight."
    spun, edits = spinner.spin(text, random.Random(3), 0.3, spinner.config.engines[0])
    assert spun != text and apply_edits(text, edits) == spun
    assert "15" in spun


def test_ppdb_absent_by_default_is_skipped_but_a_named_file_must_exist(seed_table, tmp_path, monkeypatch, caplog):
    import training.lexicon
    from training.errors import LexiconError

    monkeypatch.setattr(training.lexicon, "DEFAULT_PPDB", tmp_path / "absent" / "ppdb_synonyms.txt")
    config = LexiconConfig(sources=("seed", "ppdb"), seed_table=str(seed_table),
                           ppdb_file=str(training.lexicon.DEFAULT_PPDB))
    with caplog.at_level("WARNING", logger="training.lexicon"):
        lexicon = load_lexicon(config, use_cache=False)
    assert set(lexicon.entries) == {"seed"}
    assert "PPDB synonyms not found" in caplog.text and "skipped" in caplog.text
    named = LexiconConfig(sources=("seed", "ppdb"), seed_table=str(seed_table), ppdb_file=str(tmp_path / "mine.txt"))
    with pytest.raises(LexiconError, match="--ppdb FILE"):
        load_lexicon(named, use_cache=False)
    (tmp_path / "mine.txt").write_text("killed slain\nsaid stated\n")
    assert set(load_lexicon(named, use_cache=False).entries["ppdb"]) == {"killed", "slain", "said", "stated"}


def test_the_phrase_table_is_package_data():
    import seeds
    from training.lexicon import SEED_TABLE

    assert SEED_TABLE == seeds.SPIN_PHRASES and SEED_TABLE.is_file()
    assert seeds.SAMPLE_ARTICLE.is_file()


def test_protect_quotes_covers_what_the_restorer_protects(small_lexicon, seed_only_engine):
    # One quote detector (rewrite.text.quote_spans): guillemets and a quote left open to the end
    # of the line are quoted speech for the spinner too, not only for the restorer.
    guarded = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine], protect_quotes=True))
    for text in ("He said «the war is over» today.", 'He said "the war is over today.'):
        spun, _ = spin_all(guarded, text, seed_only_engine)
        assert "the war is over" in spun, text
# ---------------------------------------------------------------- what real spinners do


def rules_spinner(small_lexicon, **engine):
    from training.rules import rule_table

    small_lexicon.entries["rules"] = rule_table()
    settings = dict(name_spin_prob=0.0, shorter_match_prob=0.0, reorder_prob=0.0, filler_prob=0.0)
    settings.update(engine)
    e = EngineConfig("r", {"seed": 1.0, "rules": 1.0}, 1.0, 1.0, **settings)
    return Spinner(small_lexicon, SpinnerConfig(engines=[e])), e


def test_number_words_become_digits_never_the_reverse(small_lexicon):
    spinner, engine = rules_spinner(small_lexicon)
    spun, _ = spinner.spin("Twenty-one of the four men paid 7 percent.", random.Random(0), 1.0, engine)
    assert spun.startswith("21 of the 4 men paid 7 %")
    from training.rules import rule_table

    assert not any(key[0].isdigit() for key in rule_table())


def test_contractions_created_expanded_and_split(small_lexicon):
    spinner, engine = rules_spinner(small_lexicon)
    outs = {spinner.spin(t, random.Random(s), 1.0, engine)[0] for t in ("He is here.", "It doesn’t count.")
            for s in range(30)}
    assert "He's here." in outs and "He’s here." in outs
    assert "It does not count." in outs and "It does n’t count." in outs
    assert "It does n't count." not in outs  # a split keeps the text's apostrophe


def test_filler_after_auxiliary_and_reorder(small_lexicon):
    spinner, engine = rules_spinner(small_lexicon, reorder_prob=1.0)
    outs = {spinner.spin("They had tried it in fits and starts.", random.Random(s), 1.0, engine)[0] for s in range(40)}
    assert any("had actually tried" in o or "had really tried" in o for o in outs)
    assert any("starts and fits" in o for o in outs)


def test_names_spun_but_personal_names_kept(small_lexicon, seed_only_engine):
    from training.lexicon import Variant

    small_lexicon.entries["seed"]["house"] = [Variant("home", "seed", "word", "NOUN")]
    small_lexicon.entries["seed"]["rice"] = [Variant("grain", "seed", "word", "NOUN")]
    engine = EngineConfig("n", {"seed": 1.0}, 1.0, 1.0, name_spin_prob=1.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[engine]))
    assert spinner.spin("He won the House vote.", random.Random(0), 1.0, engine)[0] == "He won the Home vote."
    for text in ("They met Condoleezza Rice there.", "They met Dr. Rice there.", "They met Secretary Rice there."):
        assert spinner.spin(text, random.Random(0), 1.0, engine)[0] == text


def test_a_given_name_before_an_unknown_surname_is_kept(small_lexicon):
    from training.lexicon import Variant

    small_lexicon.entries["seed"]["friedrich"] = [Variant("frederick", "seed", "word", "PROPN")]
    small_lexicon.entries["seed"]["house"] = [Variant("home", "seed", "word", "NOUN")]
    engine = EngineConfig("n", {"seed": 1.0}, 1.0, 1.0, name_spin_prob=1.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[engine]))
    text = "It was founded with Friedrich Dotzauer in 1808."
    assert spinner.spin(text, random.Random(0), 1.0, engine)[0] == text
    # a known word after it is no surname: the name of an institution still spins
    assert spinner.spin("He won the House Friedrich vote.", random.Random(0), 1.0, engine)[0] == "He won the Home Frederick vote."
    # a common word before a given name is a role, not a name: it still spins
    small_lexicon.entries["seed"]["leader"] = [Variant("chief", "seed", "word", "NOUN")]
    assert spinner.spin("They met Leader Kevin there.", random.Random(0), 1.0, engine)[0] == "They met Chief Kevin there."


def test_possessive_spun_on_its_stem(small_lexicon, seed_only_engine):
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine]))
    text = "The people’s war ended."
    spun, edits = spin_all(spinner, text, seed_only_engine)
    assert "individuals’s" in spun and apply_edits(text, edits) == spun


def test_shorter_match_inside_a_phrase(small_lexicon):
    from training.lexicon import Variant

    small_lexicon.entries["seed"]["least"] = [Variant("minimum", "seed", "word", "")]
    longest = EngineConfig("l", {"seed": 1.0}, 1.0, 1.0, shorter_match_prob=0.0)
    shorter = EngineConfig("s", {"seed": 1.0}, 1.0, 1.0, shorter_match_prob=1.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[longest, shorter]))
    text = "It took at least a day."
    tokens = [m.span() for m in WORD_RE.finditer(text)]
    lower = [text[a:b].lower() for a, b in tokens]
    at = lower.index("at")

    def lengths(engine):
        return {spinner.match(text, tokens, lower, at, engine, random.Random(s), set())[0] for s in range(20)}

    assert lengths(longest) == {2}  # "at least" as a whole
    small_lexicon.entries["seed"]["at"] = [Variant("on", "seed", "word", "")]
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[longest, shorter]))
    assert lengths(shorter) == {1}  # "at" alone, inside the phrase


def test_quotes_spun_in_a_share_of_documents(small_lexicon, seed_only_engine):
    config = SpinnerConfig(engines=[seed_only_engine], quote_spin_share=0.5, unspun_share=0.0)
    spinner = Spinner(small_lexicon, config)
    text = "“The war is over,” he said."
    inside = [spinner.spin_example(text, f"doc{d}", 0, 0)[0].startswith("“The struggle") for d in range(200)]
    assert 0.35 < sum(inside) / 200 < 0.65
    # the draw is per document: every sentence of a document agrees
    assert len({spinner.spin_example(text, "doc7", i, 0)[0].startswith("“The struggle") for i in range(20)}) == 1
    never = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine], quote_spin_share=0.5, protect_quotes=True))
    assert not any(never.spin_example(text, f"doc{d}", 0, 0)[0].startswith("“The struggle") for d in range(50))


def test_thesauri_swap_function_words_only_for_function_words(small_lexicon, seed_only_engine):
    from training.lexicon import Variant

    small_lexicon.entries["moby"] = {"but": [Variant("however", "moby"), Variant("boundary", "moby")]}
    engine = EngineConfig("m", {"moby": 1.0}, 1.0, 1.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[engine]))
    outs = {spinner.spin("Small but strong.", random.Random(s), 1.0, engine)[0] for s in range(20)}
    assert outs == {"Small however strong."}


def test_meteor_both_directions_top_k_and_bad_record(tmp_path):
    import gzip

    from training.lexicon import read_meteor

    records = [("0.02", "against", "opposed to"), ("0.01", "against", "versus"), ("0.005", "against", "in the face of"),
               ("0.5", "the european content", "a european dimension")]
    path = tmp_path / "para.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(f"{p}\n{a}\n{b}\n" for p, a, b in records))
    table, _ = read_meteor(0.01, 4, top_k=1, path=path)
    assert [v.text for v in table["against"]] == ["opposed to"]  # the most probable one only
    assert [v.text for v in table["opposed to"]] == ["against"]  # and the other way round
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("0.5\nagainst\nversus\nnot-a-number\nx\ny\n")
    with pytest.raises(LexiconError, match=r"para.gz:4: expected a record"):
        read_meteor(0.01, 4, path=path)


def test_function_words_swapped_within_their_class(small_lexicon):
    from training.rules import FUNCTION_CLASSES

    spinner, engine = rules_spinner(small_lexicon)
    outs = {spinner.spin("Cats would stay.", random.Random(s), 1.0, engine)[0] for s in range(80)}
    modals = {o.split()[1] for o in outs}
    assert {"might", "could", "can"} <= modals and modals <= set(FUNCTION_CLASSES[0])


def test_thesauri_never_change_a_quantity(small_lexicon):
    from training.lexicon import Variant

    small_lexicon.entries["moby"] = {"million": [Variant("billion", "moby"), Variant("large number", "moby")],
                                     "budget": [Variant("plan", "moby"), Variant("two plans", "moby")],
                                     "spent": [Variant("used up", "moby")]}
    engine = EngineConfig("m", {"moby": 1.0}, 1.0, 1.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[engine]))
    outs = {spinner.spin("They spent a million on the budget.", random.Random(s), 1.0, engine)[0] for s in range(30)}
    assert outs == {"They used up a million on the plan."}


def test_a_swap_never_changes_a_personal_pronoun(small_lexicon):
    """Who did it is a fact: "he can" -> "it can" or "they" -> "he" would teach the restorer to
    change the person. Contractions keep theirs ("it will" -> "it'll")."""
    from training.lexicon import Variant
    from training.rules import rule_table

    small_lexicon.entries["moby"] = {"they": [Variant("he", "moby"), Variant("those", "moby")],
                                     "strengthen": [Variant("consolidate his", "moby"), Variant("bolster", "moby")]}
    small_lexicon.entries["meteor"] = {"it can": [Variant("he can", "meteor"), Variant("it is able to", "meteor")]}
    small_lexicon.entries["rules"] = rule_table()
    engine = EngineConfig("m", {"moby": 1.0, "meteor": 1.0, "rules": 1.0}, 1.0, 1.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[engine]))
    outs = set()
    for text in ("They strengthen it.", "They said it can wait.", "It will rain."):
        for s in range(40):
            spun = spinner.spin(text, random.Random(s), 1.0, engine)[0]
            outs.add(spun)
            assert " he " not in f" {spun.lower()} " and "his" not in spun.lower().split(), spun
    assert "They bolster it." in outs and any("it is able to" in o for o in outs)  # "they" -> "those" drops one too
    assert any("It’ll rain." == o or "It'll rain." == o for o in outs)


def test_inflection_starts_from_the_lemma():
    from training.lexicon import Variant
    from training.spinner import inflect_variant

    # a thesaurus listing an inflected form is inflected from its lemma, not suffixed twice
    assert inflect_variant(Variant("deepened", "ppdb"), "VBN", "VERB") == "deepened"
    assert inflect_variant(Variant("deepened", "ppdb"), "VBZ", "VERB") == "deepens"
    assert inflect_variant(Variant("say", "moby"), "VBD", "VERB") == "said"


def test_a_word_with_a_quantity_of_its_own_keeps_it(small_lexicon):
    from training.lexicon import Variant

    small_lexicon.entries["moby"] = {"twice": [Variant("two times", "moby"), Variant("three times", "moby"),
                                               Variant("doubly", "moby")]}
    engine = EngineConfig("m", {"moby": 1.0}, 1.0, 1.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[engine]))
    outs = {spinner.spin("They met twice.", random.Random(s), 1.0, engine)[0] for s in range(40)}
    assert outs == {"They met two times."}


def test_possessive_of_a_multiword_swap_goes_on_its_last_word(small_lexicon, seed_only_engine):
    from training.lexicon import Variant

    small_lexicon.entries["seed"]["river"] = [Variant("water course", "seed", "word", "")]
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[seed_only_engine]))
    spun, edits = spin_all(spinner, "We saw the river's bank.", seed_only_engine)
    assert spun == "We saw the water course's bank."
    assert apply_edits("We saw the river's bank.", edits) == spun


def test_fixed_seed_spin_is_unchanged(small_lexicon):
    """Speed work on the spinner must not change what it spins: these outputs were recorded before
    the caches of issue 12's throughput work and must stay as they are for seed 7."""
    from training.lexicon import Variant
    from training.rules import rule_table

    small_lexicon.entries["moby"] = {
        "war": [Variant("conflict", "moby"), Variant("two wars", "moby"), Variant("battle", "moby")],
        "river": [Variant("stream", "moby"), Variant("water course", "moby")],
        "old": [Variant("aged", "moby"), Variant("ancient", "moby")],
        "town": [Variant("city", "moby"), Variant("borough", "moby")]}
    small_lexicon.entries["rules"] = rule_table()
    spinner = Spinner(small_lexicon, SpinnerConfig(seed=7))
    texts = ["People said the war was over and at least fifteen people died overnight.",
             "The town's river is old, and it is twice as long as the Security Council said."]
    outs = [(spun, engine, round(rate, 4)) for i, text in enumerate(texts) for copy in range(4)
            for spun, _, engine, rate in [spinner.spin_example(text, "doc", i, copy)]]
    assert outs == [
        (texts[0], "none", 0.0),
        ("People mentioned the war was over and at least fifteen individuals died in a single day.", "thesaurus", 0.2288),
        ("People mentioned the struggle was actually over and at least fifteen people died overnight.", "mixed", 0.2227),
        (texts[0], "none", 0.0),
        ("The town's river is ancient, and it is truly twice as long as the Security Council mentioned.", "thesaurus",
         0.1656),
        ("The borough's river is old, and it is really twice as long as the Security Council said.", "thesaurus", 0.1034),
        ("The town's river is old, and it's twice as long as the Security Council mentioned.", "phrasal", 0.1775),
        ("The town's river is really old, and it is really twice as long as the Security Council mentioned.", "phrasal",
         0.1764),
    ]


def test_a_phrase_swap_keeps_the_names_inside_it(small_lexicon):
    from training.lexicon import Variant

    small_lexicon.entries["meteor"] = {
        "on july": [Variant("in july", "meteor", "phrase")],
        "to england": [Variant("to britain", "meteor", "phrase"), Variant("towards england", "meteor", "phrase")]}
    engine = EngineConfig("m", {"meteor": 1.0}, 1.0, 1.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[engine]))
    outs = {spinner.spin("We sailed to England on July 4.", random.Random(s), 1.0, engine)[0] for s in range(30)}
    assert outs == {"We sailed towards England in July 4."}


def test_a_capitalised_month_or_weekday_is_a_date_and_is_never_swapped(small_lexicon):
    from training.lexicon import Variant

    small_lexicon.entries["moby"] = {
        "august": [Variant("overwhelming", "moby"), Variant("grand", "moby")],
        "march": [Variant("parade", "moby")],
        "may": [Variant("might", "moby")],
    }
    spinner = Spinner(small_lexicon, SpinnerConfig(seed=3))
    text = "March began and it was released on August 3 while an august crowd said it may rain in May."
    spun = {spinner.spin(text, random.Random(k), 1.0)[0] for k in range(30)}
    assert all("March began" in s and "August 3" in s and s.endswith("in May.") for s in spun)
    assert any("overwhelming crowd" in s or "grand crowd" in s for s in spun)  # the adjective still spins
    assert any("might rain" in s for s in spun)


def test_a_thesaurus_swap_never_brings_in_a_name(small_lexicon):
    """MyThes lists people under their surnames: "Butler" -> "Samuel Butler" invents a given name,
    and a restorer trained on it learns to delete given names. Our seed table's names still spin."""
    from training.lexicon import Variant

    small_lexicon.entries["mythes"] = {
        "butler": [Variant("Samuel Butler", "mythes"), Variant("Butler Act", "mythes"), Variant("servant", "mythes")],
        "nigeria": [Variant("Federal Republic of Nigeria", "mythes")],
    }
    small_lexicon.entries["seed"]["house"] = [Variant("Home", "seed", "name")]
    engine = EngineConfig("t", {"mythes": 1.0, "seed": 1.0}, 1.0, 1.0, name_spin_prob=1.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[engine]))
    outs = {spinner.spin("The butler left Nigeria for the House.", random.Random(s), 1.0, engine)[0]
            for s in range(30)}
    assert all("Samuel" not in o and "Act" not in o and "Federal" not in o for o in outs), outs
    assert any("servant" in o for o in outs) and any("Home" in o for o in outs), outs


def test_a_thesaurus_swap_never_brings_in_a_unit(small_lexicon):
    """"15 days" -> "15 years" changes a fact; dropping a unit ("years" -> "a long time") does not."""
    from training.lexicon import Variant
    from training.spinner import units

    assert units("twenty-four hour periods") == {"hour"} and units("15 Centuries and 2 feet") == {"century", "foot"}
    assert units("daily") == units("day by day") == {"day"}  # the same unit, said another way
    small_lexicon.entries["mythes"] = {
        "day": [Variant("year", "mythes", "word", "NOUN"), Variant("twenty-four hour period", "mythes", "word", "NOUN")],
        "years": [Variant("long time", "mythes"), Variant("lunar months", "mythes")],
    }
    engine = EngineConfig("t", {"mythes": 1.0}, 1.0, 1.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[engine]))
    outs = {spinner.spin(text, random.Random(s), 1.0, engine)[0]
            for text in ("Stays of up to 15 days.", "It took years.") for s in range(30)}
    assert not any("year" in o or "hour" in o or "month" in o for o in outs), outs
    assert "It took long time." in outs, outs
