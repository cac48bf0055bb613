"""Amounts in words: known cases from finance practice, then properties over many amounts."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kehu.core.words import MAX_AMOUNT, amount_in_chinese_words, amount_in_english_words

DIGITS = "零壹贰叁肆伍陆柒捌玖"
SMALL = {"拾": 10, "佰": 100, "仟": 1000}


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("1005000.50", "壹佰万伍仟元伍角"),
        ("100.00", "壹佰元整"),
        ("0.05", "伍分"),
        ("10.01", "壹拾元零壹分"),
        ("101000.00", "壹拾万壹仟元整"),
        ("0", "零元整"),
        ("0.00", "零元整"),
        ("0.01", "壹分"),
        ("0.10", "壹角"),
        ("0.55", "伍角伍分"),
        ("1", "壹元整"),
        ("10", "壹拾元整"),
        ("11", "壹拾壹元整"),
        ("20", "贰拾元整"),
        ("110", "壹佰壹拾元整"),
        ("1005", "壹仟零伍元整"),
        ("1050", "壹仟零伍拾元整"),
        ("1500", "壹仟伍佰元整"),
        ("1409.50", "壹仟肆佰零玖元伍角"),  # 《支付结算办法》's own example
        ("6007.14", "陆仟零柒元壹角肆分"),  # idem
        ("1680.32", "壹仟陆佰捌拾元叁角贰分"),  # idem, short form
        ("107000.53", "壹拾万柒仟元伍角叁分"),  # idem, short form
        ("325.04", "叁佰贰拾伍元零肆分"),
        ("10000", "壹万元整"),
        ("10050", "壹万零伍拾元整"),
        ("10500", "壹万零伍佰元整"),
        ("100000", "壹拾万元整"),
        ("1000500", "壹佰万零伍佰元整"),
        ("10001000", "壹仟万壹仟元整"),
        ("100001000", "壹亿零壹仟元整"),  # a whole group of zeros keeps its 零
        ("10000050", "壹仟万零伍拾元整"),
        ("123456.12", "壹拾贰万叁仟肆佰伍拾陆元壹角贰分"),
        ("100000000", "壹亿元整"),
        ("100000001", "壹亿零壹元整"),
        ("100010000", "壹亿零壹万元整"),
        ("110000000", "壹亿壹仟万元整"),
        ("1010000000", "壹拾亿壹仟万元整"),
        ("100100000000", "壹仟零壹亿元整"),
        ("1000000000000", "壹万亿元整"),
        ("1000100000000", "壹万零壹亿元整"),
        ("1000010000000", "壹万亿壹仟万元整"),
        ("9999999999999.99", "玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    ],
)
def test_chinese_known_cases(amount, words):
    assert amount_in_chinese_words(Decimal(amount)) == words


@pytest.mark.parametrize("bad", ["-0.01", "-100", "10000000000000.00", "1.005", "NaN", "Infinity"])
def test_chinese_refuses(bad):
    with pytest.raises(ValueError):
        amount_in_chinese_words(Decimal(bad))
    with pytest.raises(ValueError):
        amount_in_english_words(Decimal(bad))


def test_float_refused():
    with pytest.raises(ValueError):
        amount_in_chinese_words(1.5)  # type: ignore[arg-type]


def test_trailing_zeros_in_the_decimal_are_fine():
    assert amount_in_chinese_words(Decimal("12.3000")) == "壹拾贰元叁角"
    assert amount_in_chinese_words(Decimal("12")) == "壹拾贰元整"


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (
            "123456.12",
            "SAY CNY ONE HUNDRED TWENTY-THREE THOUSAND FOUR HUNDRED FIFTY-SIX "
            "AND CENTS TWELVE ONLY",
        ),
        ("100.00", "SAY CNY ONE HUNDRED ONLY"),
        ("0", "SAY CNY ZERO ONLY"),
        ("0.05", "SAY CNY ZERO AND CENTS FIVE ONLY"),
        ("10.01", "SAY CNY TEN AND CENT ONE ONLY"),
        ("1005000.50", "SAY CNY ONE MILLION FIVE THOUSAND AND CENTS FIFTY ONLY"),
        ("1105", "SAY CNY ONE THOUSAND ONE HUNDRED FIVE ONLY"),
    ],
)
def test_english_known_cases(amount, words):
    assert amount_in_english_words(Decimal(amount)) == words


def test_english_currency_code():
    assert amount_in_english_words(Decimal("2.50"), currency="usd") == (
        "SAY USD TWO AND CENTS FIFTY ONLY"
    )


# --- properties ---------------------------------------------------------------------------


def _parse_integer(text: str) -> int:
    """Chinese financial numerals back to an int; 零 only separates, so it is skipped."""
    if not text:
        return 0
    if "亿" in text:
        high, _sep, low = text.rpartition("亿")
        return _parse_integer(high) * 100_000_000 + _parse_integer(low)
    if "万" in text:
        high, _sep, low = text.rpartition("万")
        return _parse_integer(high) * 10_000 + _parse_integer(low)
    total, digit = 0, 0
    for char in text:
        if char in SMALL:
            assert digit, f"a unit without its digit in {text}"
            total += digit * SMALL[char]
            digit = 0
        elif char != "零":
            digit = DIGITS.index(char)
    return total + digit


def _parse(words: str) -> Decimal:
    body = words.removesuffix("整")
    integer, _sep, fraction = body.rpartition("元")
    cents = 0
    if "角" in fraction:
        cents += DIGITS.index(fraction[fraction.index("角") - 1]) * 10
    if "分" in fraction:
        cents += DIGITS.index(fraction[fraction.index("分") - 1])
    return Decimal(_parse_integer(integer)) + Decimal(cents) / 100


def _reference(amount: Decimal) -> str:
    """A second, digit-by-digit statement of the same rules, to check the first against.

    A run of zeros between non-zero digits is one 零, except where it ends at a 万 or 亿
    digit whose unit is written and the next digit is the following group's 仟 (the short
    form). A whole group of zeros keeps its 零: 100,001,000 is 壹亿零壹仟, never 壹亿壹仟
    (which reads as 110,000,000).
    """
    cents = int(amount * 100)
    yuan, rest = divmod(cents, 100)
    if cents == 0:
        return "零元整"
    out = ""
    if yuan:
        digits = str(yuan)
        top = len(digits) - 1
        zero_run_low = None
        units_written: set[int] = set()
        for index, char in enumerate(digits):
            exponent = top - index
            digit = int(char)
            if digit == 0:
                zero_run_low = exponent
            else:
                if zero_run_low is not None and zero_run_low not in units_written:
                    out += "零"
                zero_run_low = None
                out += DIGITS[digit] + ("", "拾", "佰", "仟")[exponent % 4]
            if exponent in (4, 12) and any(d != "0" for d in digits[max(0, index - 3) : index + 1]):
                out += "万"
                units_written.add(exponent)
            if exponent == 8:
                out += "亿"
                units_written.add(exponent)
        out += "元"
    jiao, fen = divmod(rest, 10)
    if jiao:
        out += DIGITS[jiao] + "角"
    elif fen and yuan:
        out += "零"
    if fen:
        out += DIGITS[fen] + "分"
    return out + ("整" if not rest else "")


amounts = st.one_of(
    st.decimals(min_value=0, max_value=MAX_AMOUNT, places=2, allow_nan=False),
    # Many zeros, where the 零 rules bite: digits drawn mostly from {0, 1}.
    st.lists(st.sampled_from("0000015"), min_size=1, max_size=15).map(
        lambda ds: Decimal("".join(ds)).scaleb(-2)
    ),
)


@given(amounts)
def test_chinese_round_trips_and_matches_the_reference(amount):
    words = amount_in_chinese_words(amount)
    assert _parse(words) == amount
    assert words == _reference(amount)


@given(amounts)
def test_chinese_invariants(amount):
    words = amount_in_chinese_words(amount)
    assert "零零" not in words
    for unit in "元万亿角分":
        assert f"零{unit}" not in words or words == "零元整"
    assert words.endswith("整") == (amount % 1 == 0)
    assert words.count("整") <= 1
    assert not words.startswith("零") or words == "零元整"
    assert set(words) <= set(DIGITS + "拾佰仟万亿元角分整")
    # Ten is 壹拾 in finance, never a bare 拾.
    for index, char in enumerate(words):
        if char in "拾佰仟":
            assert words[index - 1] in DIGITS[1:]


@given(amounts)
def test_english_shape(amount):
    words = amount_in_english_words(amount)
    assert words.startswith("SAY CNY ") and words.endswith(" ONLY")
    assert words == words.upper() and "," not in words
    assert words.count(" AND ") == (0 if amount % 1 == 0 else 1)
