"""Normalised forms of names and phone numbers, for duplicate checks and pinyin search."""

from __future__ import annotations

import re
import unicodedata

from pypinyin import Style, lazy_pinyin

# Longest first, so "股份有限公司" goes before "有限公司" and "公司".
COMPANY_SUFFIXES = tuple(
    sorted(
        (
            "股份有限公司",
            "有限责任公司",
            "有限公司",
            "集团公司",
            "集团",
            "公司",
            "co.,ltd.",
            "co.,ltd",
            "co., ltd.",
            "co., ltd",
            "co ltd",
            "company limited",
            "corporation",
            "limited",
            "ltd.",
            "ltd",
            "inc.",
            "inc",
            "llc",
            "corp.",
            "corp",
            "gmbh",
        ),
        key=len,
        reverse=True,
    )
)

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
_NOT_DIGIT = re.compile(r"\D+")


def name_normalize(name: str) -> str:
    """The comparable form of a customer name.

    NFKC folds full-width letters and punctuation, then lower case, company suffixes
    dropped (repeatedly: "某某集团有限公司" loses both), spaces and punctuation removed.
    "华为技术有限公司" and "华为技术 （有限公司）" compare equal.
    """
    text = unicodedata.normalize("NFKC", name or "").lower().strip()
    text = re.sub(r"\s+", " ", text)
    changed = True
    while changed and text:
        changed = False
        stripped = text.rstrip(" .,()（）")
        for suffix in COMPANY_SUFFIXES:
            if stripped.endswith(suffix) and len(stripped) > len(suffix):
                text = stripped[: -len(suffix)].rstrip(" ,.")
                changed = True
                break
    return _NOT_WORD.sub("", text)


def phone_normalize(phone: str) -> str:
    """Digits only, without the country code: "+86 138-1234-5678" → "13812345678"."""
    digits = _NOT_DIGIT.sub("", unicodedata.normalize("NFKC", phone or ""))
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def _syllables(name: str) -> list[str]:
    text = unicodedata.normalize("NFKC", name or "").lower()
    # Non-Chinese runs come back whole ("abc"); split them so each word counts once.
    return [s for part in lazy_pinyin(text, style=Style.NORMAL) for s in _NOT_WORD.split(part) if s]


def name_initials(name: str) -> str:
    """Pinyin initials: "华为技术有限公司" → "hwjsyxgs"; Latin words keep their first letter."""
    return "".join(s[0] for s in _syllables(name))


def name_pinyin(name: str) -> str:
    """Full pinyin without tones or spaces: "华为" → "huawei"."""
    return "".join(_syllables(name))
