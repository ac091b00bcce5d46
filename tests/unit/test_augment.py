"""Augmenters: synonym files, WordNet, typos, back-translation plumbing and the factory."""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import pytest

from coldstart.training.augment import (
    AugmentConfig,
    BackTranslationConfig,
    BackTranslator,
    Compose,
    Identity,
    ParaphraseTable,
    RandomChoice,
    SynonymAugmenter,
    SynonymConfig,
    TypoAugmenter,
    TypoConfig,
    WordNetSynonyms,
    load_default_synonyms,
    load_synonyms,
    make_augmenter,
    parse_synonyms,
)
from coldstart.training.augment.synonyms import term_key
from coldstart.training.augment.typos import QWERTY_NEIGHBOURS

# --- synonym file parsing -----------------------------------------------------------------

RULES = """\
# a comment, then a blank line

sofa, couch, settee
TV,  Television
fridge, icebox => refrigerator
2x4, two   by four
tv stand, media console
inch, inches => inch, inches, in, "
comma\\, escaped, plain
sofa, chesterfield
"""


@pytest.fixture(scope="module")
def table():
    return parse_synonyms(RULES.splitlines(), source="test.txt")


def test_comments_and_blank_lines_are_ignored(table):
    assert not any(k[0] == "#" for k in table.rules)
    assert ("a",) not in table.rules


def test_equivalence_maps_every_term_to_the_others(table):
    assert table.alternatives(("couch",)) == ("sofa", "settee")
    assert table.alternatives(("settee",)) == ("sofa", "couch")


def test_equivalence_without_expand_maps_to_the_first_term():
    t = parse_synonyms(["sofa, couch, settee"], expand=False)
    assert t.alternatives(("couch",)) == ("sofa",)
    assert t.alternatives(("settee",)) == ("sofa",)
    assert t.alternatives(("sofa",)) == ()


def test_explicit_mapping_goes_one_way(table):
    assert table.alternatives(("fridge",)) == ("refrigerator",)
    assert table.alternatives(("icebox",)) == ("refrigerator",)
    assert table.alternatives(("refrigerator",)) == ()
    # a term mapped to itself is kept in the rule but never offered as its own replacement
    assert table.alternatives(("inch",)) == ("inches", "in", '"')
    assert table.alternatives(("in",)) == ()


def test_multi_word_terms_case_folding_and_whitespace(table):
    assert table.alternatives(("two", "by", "four")) == ("2x4",)
    assert table.alternatives(("2x4",)) == ("two by four",)
    assert table.alternatives(("tv",)) == ("Television",)
    assert table.alternatives(("tv", "stand")) == ("media console",)
    assert table.max_key_tokens == 3


def test_rules_for_the_same_term_merge(table):
    assert table.alternatives(("sofa",)) == ("couch", "settee", "chesterfield")


def test_backslash_escapes_a_comma(table):
    assert table.alternatives(("plain",)) == ("comma, escaped",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a => b => c", "test.txt line 2: more than one '=>'"),
        ("a, , b", r"test.txt line 2: empty term .*\\,"),
        ("a => ", "test.txt line 2: empty term"),
    ],
)
def test_bad_lines_name_the_line_and_the_fix(line, message):
    with pytest.raises(ValueError, match=message):
        parse_synonyms(["# header", line], source="test.txt")


def test_load_synonyms_from_a_file(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("hoodie, hooded sweatshirt\n", encoding="utf-8")
    assert load_synonyms(path).alternatives(("hoodie",)) == ("hooded sweatshirt",)
    with pytest.raises(FileNotFoundError, match="fix the path"):
        load_synonyms(tmp_path / "missing.txt")


def test_default_list_parses_and_covers_the_basics():
    t = load_default_synonyms()
    assert len(t) >= 150
    for a, b in [
        ("sofa", "couch"),
        ("fridge", "refrigerator"),
        ("tv", "television"),
        ("sneakers", "trainers"),
        ("hoodie", "sweatshirt"),
        ("2x4", "two by four"),
    ]:
        assert b in t.alternatives(term_key(a)), (a, b)
    assert '"' in t.alternatives(("inch",)) and t.alternatives(("in",)) == ()
    assert t.alternatives(("tap",)) == (), "'tap' alone is ambiguous (tap and die)"


# --- synonym replacement ------------------------------------------------------------------


def test_replacements_come_only_from_the_same_group(table):
    augment = SynonymAugmenter([table], prob=1.0)
    pattern = re.compile(
        r"(Couch|Settee|Chesterfield) and (Television) on a (media console) "
        r"with (refrigerator) and (two by four)"
    )
    rng = random.Random(0)
    seen = set()
    for _ in range(50):
        out = augment("Sofa and tv on a tv stand with icebox and 2x4", rng)
        assert pattern.fullmatch(out), out
        seen.add(out.split()[0])
    assert seen == {"Couch", "Settee", "Chesterfield"}


def test_explicit_mapping_direction_is_respected(table):
    augment = SynonymAugmenter([table], prob=1.0)
    rng = random.Random(1)
    assert augment("fridge", rng) == "refrigerator"
    assert augment("refrigerator", rng) == "refrigerator"


def test_matching_respects_token_boundaries_and_case(table):
    augment = SynonymAugmenter([table], prob=1.0)
    rng = random.Random(2)
    assert augment("sofas and tvstand", rng) == "sofas and tvstand"
    assert augment("SOFA", rng) in {"Couch", "Settee", "Chesterfield"}
    assert augment("two-by-four", rng) == "two-by-four"


def test_inch_mark_replacement_is_spaced_from_digits(table):
    augment = SynonymAugmenter([table], prob=1.0)
    outs = {augment("12 inch pipe", random.Random(s)) for s in range(30)}
    assert outs == {"12 inches pipe", "12 in pipe", '12 " pipe'}
    t = parse_synonyms(['" => inch'])
    assert SynonymAugmenter([t], prob=1.0)('12" pipe', random.Random(0)) == "12 inch pipe"


def test_synonym_probability_limit_and_determinism(table):
    text = "sofa tv fridge 2x4"
    assert SynonymAugmenter([table], prob=0.0)(text, random.Random(0)) == text
    one = SynonymAugmenter([table], prob=1.0, max_replacements=1)
    out = one(text, random.Random(0))
    assert sum(a != b for a, b in zip(text.split(), out.split(), strict=True)) == 1
    half = SynonymAugmenter([table], prob=0.5)
    assert [half(text, random.Random(9)) for _ in range(3)] == [half(text, random.Random(9))] * 3


# --- WordNet ------------------------------------------------------------------------------


def write_fake_wordnet(root: Path) -> None:
    """A 5-synset WordNet with real file layout: byte offsets, hex counts, licence header."""
    synsets = {
        "A": (["Grey", "Zane_Grey"], ["@i"]),  # an instance: a person
        "B": (["grey", "gray"], ["@"]),
        "C": (["sofa", "couch", "lounge"], ["@", "~"]),
        "D": (["couch", "frame"], ["@"]),
        "E": (["tee_shirt", "T-shirt"], []),
    }
    data, offsets = "  1 fake licence header line\n", {}
    for name, (words, pointers) in synsets.items():
        offsets[name] = len(data.encode())
        ptrs = " ".join(f"{p} 00000000 n 0000" for p in pointers)
        data += (
            f"{offsets[name]:08d} 06 n {len(words):02x} "
            + " ".join(f"{w} 0" for w in words)
            + f" {len(pointers):03d} {ptrs} | a gloss  \n"
        )
    index = "  1 fake licence header line\n"
    for lemma, senses in {
        "grey": "AB",
        "gray": "B",
        "sofa": "C",
        "couch": "CD",
        "lounge": "C",
        "tee_shirt": "E",
        "t-shirt": "E",
    }.items():
        index += (
            f"{lemma} n {len(senses)} 1 @ {len(senses)} 0 "
            + " ".join(f"{offsets[s]:08d}" for s in senses)
            + "  \n"
        )
    (root / "data.noun").write_text(data, encoding="utf-8")
    (root / "index.noun").write_text(index, encoding="utf-8")


def test_wordnet_reader_on_a_fake_database(tmp_path):
    write_fake_wordnet(tmp_path)
    wn = WordNetSynonyms(tmp_path, parts_of_speech=("noun",))
    assert wn.alternatives(("grey",)) == ("gray",), "the instance sense must be skipped"
    assert wn.alternatives(("couch",)) == ("sofa", "lounge")
    assert wn.alternatives(("tee", "shirt")) == ("T-shirt",)
    assert wn.alternatives(("armchair",)) == ()
    two = WordNetSynonyms(tmp_path, parts_of_speech=("noun",), max_senses=2)
    assert two.alternatives(("couch",)) == ("sofa", "lounge", "frame")
    out = SynonymAugmenter([wn], prob=1.0)("grey tee shirt", random.Random(0))
    assert out == "gray T-shirt"


def test_wordnet_absent_is_skipped_with_a_log_line(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="coldstart.training.augment.wordnet"):
        assert WordNetSynonyms.load_if_available(tmp_path) is None
    assert "WordNet synonyms disabled" in caplog.text and "wordnet-base" in caplog.text
    config = SynonymConfig(use_default=False, use_wordnet=True, wordnet_dir=str(tmp_path))
    augment = make_augmenter(AugmentConfig(synonyms=config, typos=None, synonym_prob=1.0))
    assert augment("grey sofa", random.Random(0)) == "grey sofa"


@pytest.mark.skipif(
    not Path("/usr/share/wordnet/index.noun").is_file(),
    reason="Debian wordnet-base is not installed",
)
def test_installed_wordnet():
    wn = WordNetSynonyms(parts_of_speech=("noun",))
    assert "couch" in wn.alternatives(("sofa",))
    assert "Zane Grey" not in wn.alternatives(("grey",))


# --- typos --------------------------------------------------------------------------------


def osa_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: Levenshtein plus adjacent transpositions."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


QUERY = "Cordless drill/driver kit 18v, 2x4 lumber and a grey corner  sofa"
NOISY = TypoConfig(swap_prob=0.25, drop_prob=0.25, duplicate_prob=0.25, keyboard_prob=0.25)


def test_typos_are_deterministic_for_a_seeded_rng():
    augment = TypoAugmenter(NOISY)
    outs = [augment(QUERY, random.Random(s)) for s in range(20)]
    assert outs == [augment(QUERY, random.Random(s)) for s in range(20)]
    assert len(set(outs)) > 10


def test_typos_stay_within_one_edit_per_eligible_token():
    augment = TypoAugmenter(NOISY)
    tokens = QUERY.split(" ")
    for seed in range(200):
        out = augment(QUERY, random.Random(seed)).split(" ")
        assert len(out) == len(tokens), "whitespace must be kept"
        for before, after in zip(tokens, out, strict=True):
            if augment.eligible(before):
                assert osa_distance(before, after) <= 1, (before, after)
            else:  # short tokens ("kit", "a") and tokens with digits ("18v,", "2x4")
                assert before == after


@pytest.mark.parametrize("op", ["swap", "drop", "duplicate", "keyboard"])
def test_each_typo_kind(op):
    augment = TypoAugmenter(
        TypoConfig(
            **{f"{o}_prob": float(o == op) for o in ["swap", "drop", "duplicate", "keyboard"]}
        )
    )
    for seed in range(30):
        out = augment("couch", random.Random(seed))
        assert osa_distance("couch", out) == 1
        if op == "drop":
            assert len(out) == 4
        elif op == "duplicate":
            assert len(out) == 6 and any(out[i] == out[i + 1] for i in range(5))
        elif op == "swap":
            assert sorted(out) == sorted("couch")
        else:
            (i,) = [k for k in range(5) if out[k] != "couch"[k]]
            assert out[i] in QWERTY_NEIGHBOURS["couch"[i]]


def test_qwerty_neighbours_are_symmetric():
    assert set(QWERTY_NEIGHBOURS) == set("abcdefghijklmnopqrstuvwxyz")
    for key, near in QWERTY_NEIGHBOURS.items():
        assert key not in near
        for other in near:
            assert key in QWERTY_NEIGHBOURS[other], (key, other)


def test_typo_limits_and_config_errors():
    capped = TypoAugmenter(
        TypoConfig(swap_prob=0, drop_prob=1.0, duplicate_prob=0, keyboard_prob=0, max_typos=1)
    )
    assert osa_distance("grey corner sofa", capped("grey corner sofa", random.Random(0))) == 1
    with pytest.raises(ValueError, match="sum"):
        TypoConfig(swap_prob=0.6, drop_prob=0.6)
    with pytest.raises(ValueError, match="min_token_letters"):
        TypoConfig(min_token_letters=1)


# --- combinators and factory --------------------------------------------------------------


class Tag:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __call__(self, text: str, rng: random.Random) -> str:
        return text + self.tag


def test_compose_applies_each_step_with_its_probability():
    assert (
        Compose([(Tag("a"), 1.0), (Tag("b"), 0.0), (Tag("c"), 1.0)])("x", random.Random(0)) == "xac"
    )
    rng = random.Random(0)
    outs = [Compose([(Tag("a"), 0.3)])("", rng) for _ in range(4000)]
    assert outs.count("a") / 4000 == pytest.approx(0.3, abs=0.03)


def test_random_choice_applies_at_most_one():
    choose = RandomChoice([(Tag("a"), 0.5), (Tag("b"), 0.3)])
    rng = random.Random(0)
    outs = [choose("", rng) for _ in range(5000)]
    assert set(outs) == {"", "a", "b"}
    assert outs.count("a") / 5000 == pytest.approx(0.5, abs=0.03)
    assert outs.count("") / 5000 == pytest.approx(0.2, abs=0.03)
    with pytest.raises(ValueError, match="sum to"):
        RandomChoice([(Tag("a"), 0.7), (Tag("b"), 0.7)])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Compose([(Tag("a"), 1.5)])


def test_make_augmenter_builds_and_validates():
    augment = make_augmenter(AugmentConfig(synonym_prob=1.0, typo_prob=1.0))
    assert isinstance(augment, Compose) and len(augment.steps) == 2
    first = [augment("grey sofa with ottoman", random.Random(s)) for s in range(10)]
    assert first == [augment("grey sofa with ottoman", random.Random(s)) for s in range(10)]
    assert isinstance(make_augmenter(AugmentConfig(synonyms=None, typos=None)), Identity)
    assert isinstance(make_augmenter(AugmentConfig(mode="choice")), RandomChoice)
    with pytest.raises(ValueError, match="mode='compose'"):
        AugmentConfig(mode="choice", synonym_prob=0.8, typo_prob=0.8)
    with pytest.raises(ValueError, match="no source"):
        SynonymConfig(use_default=False)


# --- back-translation plumbing ------------------------------------------------------------

WORDS = "red grey blue sofa couch drill cordless steel hammer rot grau blau bohrer hammer".split()


def save_tiny_marian(path: Path, seed: int) -> None:
    """A random 1-layer MarianMTModel with a word-level fast tokenizer (no sentencepiece)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        forced_eos_token_id=1,
    )
    MarianMTModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


@pytest.fixture(scope="module")
def marian_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("marian")
    save_tiny_marian(root / "en-de", seed=0)
    save_tiny_marian(root / "de-en", seed=1)
    return str(root / "en-de"), str(root / "de-en")


def test_back_translation_round_trip_loads_from_paths(marian_dirs):
    config = BackTranslationConfig(*marian_dirs, device="cpu", batch_size=2, max_new_tokens=6)
    translator = BackTranslator(config)
    texts = ["red sofa", "cordless steel drill hammer", "grey couch", "blue", "unknown words here"]
    out = translator.paraphrase(texts)
    assert len(out) == len(texts) and all(isinstance(t, str) and t for t in out)
    assert translator.paraphrase(texts[::-1]) == out[::-1], "order must follow the input"
    assert translator.paraphrase([]) == []
    assert translator("red sofa", random.Random(0)) == out[0]


def test_back_translation_config_errors(tmp_path):
    with pytest.raises(ValueError, match="'cpu', 'cuda'"):
        BackTranslationConfig("a", "b", device="gpu")
    with pytest.raises(FileNotFoundError, match="hf download"):
        BackTranslator(BackTranslationConfig(str(tmp_path / "nope"), "b", device="cpu"))


def test_paraphrase_table():
    table = ParaphraseTable.from_pairs(
        ["red sofa", "red sofa", "drill"], ["red couch", "crimson sofa", "drill"]
    )
    assert table.paraphrases == {"red sofa": ("red couch", "crimson sofa")}
    assert {table("red sofa", random.Random(s)) for s in range(20)} == {"red couch", "crimson sofa"}
    assert table("drill", random.Random(0)) == "drill"
