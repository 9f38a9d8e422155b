"""How the desk compares what people write: numbers, names, readings, institutions (pure).

Each function turns a spelling into a comparison key, so that the ways one name is written get one
key: full- or half-width, spaces of any kind, hiragana or katakana, any dash for a long vowel, an
old or a new form of a kanji, with or without the corporation's legal form. Keys are for comparing,
never for display, and every key function is idempotent: key(key(x)) == key(x).

The variant kanji and the legal forms are data, in name_variants.toml beside this file.
"""
from __future__ import annotations

import re
import tomllib
import unicodedata
from pathlib import Path

import jaconv

_DATA = tomllib.loads(Path(__file__).with_name("name_variants.toml").read_text(encoding="utf-8"))

LONG_VOWEL = "ー"
# Every mark people type for a long vowel or a hyphen, as it stands after NFKC (which has already
# turned ｰ into ー, ～ into ~, － and ﹣ into -, ‑ into ‐). In kana they all mean ー; elsewhere
# (ABC-1) the one mark is as good as any other for comparing.
_DASHES = "-‐‒–—―⁃⁓−∼─━⸺⸻~〜〰ー"
# Written between the parts of a name like a space: ジョン・スミス, ジョン＝スミス.
_SEPARATORS = "・·‧•∙⋅゠="
_DROPPED_CATEGORIES = ("Cc", "Cf")  # controls, and invisible format characters (ZWSP, BOM, ...)
_KATAKANA = "ァ-ヺ"  # the letters, without ー・ヽヾ
_ONE_AS_LONG_VOWEL = re.compile(rf"(?<=[{_KATAKANA}])一(?=[{_KATAKANA}]|\Z)")  # タロ一 typed for タロー
_SMALL_KE_KA = str.maketrans("ヶヵ", "ケカ")  # 一ヶ谷/一ケ谷, 桜ヶ丘/桜ケ丘: never a different name


def member_no(s: str) -> str:
    """'ｍ０００１ ' -> 'M0001', as the registry import stores numbers. NFKC once more after upper()
    (which can leave a letter decomposed: ῒ), so that the key is idempotent on any text."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", s).upper()).strip()


def person_name(s: str) -> str:
    """A name as written (kanji or kana): widths, spaces, kana, dashes and variant kanji folded."""
    return _fold(s).translate(_VARIANTS)


def kana(s: str) -> str:
    """A reading, folded as person_name folds names (a reading typed in kanji by mistake too).

    Small kana stay small (キヤ and キャ are different readings), except ヶ and ヵ, which are never
    a different reading from ケ and カ. ヴ stays ヴ: ヴ and ブ are two spellings a person chooses,
    not a typing accident, and a reading that differs there still matches on the name."""
    return person_name(s)


def institution_key(name: str) -> str:
    """An institution's name as person_name, without legal forms (医療法人社団, ㈱, ...) at its
    start or its end. A name that is nothing but legal forms keeps them: the key is never empty
    for a name that is not blank."""
    key = person_name(name)
    while True:  # a strip can bring a new end into view (…一株式会社 -> …一): settle it
        settled = person_name(_strip_legal_forms(key) or key)
        if settled == key:
            return key
        key = settled


# --- internals --------------------------------------------------------------------------------

def _fold(s: str) -> str:
    s = "".join(c for c in unicodedata.normalize("NFKC", s).casefold() if not _invisible(c))
    s = jaconv.hira2kata(s.translate(_TO_LONG_VOWEL)).translate(_SMALL_KE_KA)
    # NFKC again: it joins what a space kept apart (カ ゛, typed with a spacing ゛, is ガ)
    s = _ONE_AS_LONG_VOWEL.sub(LONG_VOWEL, _expand_iteration_marks(unicodedata.normalize("NFKC", s)))
    return re.sub(f"{LONG_VOWEL}+", LONG_VOWEL, s)


def _invisible(c: str) -> bool:
    return (c.isspace() or c in _SEPARATORS or unicodedata.category(c) in _DROPPED_CATEGORIES
            or _is_variation_selector(c))


def _is_variation_selector(c: str) -> bool:
    o = ord(c)
    return 0xFE00 <= o <= 0xFE0F or 0xE0100 <= o <= 0xE01EF or 0x180B <= o <= 0x180D


def _expand_iteration_marks(s: str) -> str:
    """佐々木 -> 佐佐木, いすゞ (イスヾ) -> イスズ: a repeat mark compares as what it repeats."""
    out: list[str] = []
    for c in s:
        prev = out[-1] if out else ""
        if c == "々" and _is_kanji(prev):
            c = prev
        elif c in "ヽヾ" and prev and re.fullmatch(f"[{_KATAKANA}]", prev):
            plain = unicodedata.normalize("NFD", prev)[0]
            voiced = unicodedata.normalize("NFC", plain + "\u3099")
            c = plain if c == "ヽ" else voiced if len(voiced) == 1 else c
        out.append(c)
    return "".join(out)


def _is_kanji(c: str) -> bool:
    o = ord(c) if len(c) == 1 else 0
    return 0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3FFFF


def _strip_legal_forms(key: str) -> str:
    while key:
        form = next((f for f in _LEGAL_FORMS if key.startswith(f) or key.endswith(f)), None)
        if form is None:
            return key
        key = key[len(form):] if key.startswith(form) else key[:-len(form)]
    return key


def _variant_table(groups: list[dict]) -> dict[int, str]:
    table: dict[int, str] = {}
    for group in groups:
        canonical = group["canonical"]
        if unicodedata.normalize("NFKC", canonical) != canonical or not group.get("source"):
            raise ValueError(f"variant group {canonical}: canonical form must be NFKC, source given")
        for variant in group["variants"]:
            if ord(variant) in table:
                raise ValueError(f"variant {variant} is in two groups")
            table[ord(variant)] = canonical
    if any(ord(group["canonical"]) in table for group in groups):
        raise ValueError("a canonical form is another group's variant")
    return table


_TO_LONG_VOWEL = str.maketrans({d: LONG_VOWEL for d in _DASHES})
_VARIANTS = _variant_table(_DATA["variants"])
_LEGAL_FORMS = sorted({person_name(f) for section in ("words", "abbreviations")
                       for f in _DATA["legal_forms"][section]}, key=lambda f: (-len(f), f))
