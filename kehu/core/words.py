"""Amounts in words, as printed on contracts, quotes and invoices.

Chinese (人民币大写) follows the rules of 《支付结算办法》 (附件一 "正确写法"), the ones
banks check on cheques and accountants apply on contracts:

* Digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟万亿, then 元角分; ten is 壹拾, never 拾.
* Zeros between digits are written as one 零 however many there are (1,005 → 壹仟零伍;
  10,000,050 → 壹仟万零伍拾); zeros at the end of the integer part are not written.
* Where the rules leave the 零 to the writer (the 万 or 元 digit is 0 but the digit after
  it, 仟 or 角, is not: 1,680.32 → 壹仟陆佰捌拾元零叁角贰分 or 壹仟陆佰捌拾元叁角贰分),
  it is left out, consistently: 101,000 → 壹拾万壹仟元整, 1,680.32 → 壹仟陆佰捌拾元叁角贰分.
  A whole group of zeros keeps its 零 (100,001,000 → 壹亿零壹仟元整; 壹亿壹仟 would read
  as 110,000,000).
* When the 角 digit is 0 and the 分 digit is not, 零 follows 元 (10.01 → 壹拾元零壹分);
  an amount below one yuan starts at its first non-zero digit (0.05 → 伍分).
* 整 ends an amount with no 角 and no 分 (100 → 壹佰元整); after 角 it is left out
  (0.50 → 伍角), which the rules allow and most finance software prints.
* 亿 groups stack: 1,000,000,000,000 → 壹万亿元整.

English follows the documentary-credit and trade-invoice convention ("SAY … ONLY"):
``SAY CNY ONE HUNDRED TWENTY-THREE THOUSAND FOUR HUNDRED FIFTY-SIX AND CENTS TWELVE ONLY``.
Capitals, the ISO currency code, no "and" or commas inside the whole-unit words (so the one
"AND" separates units from cents and nothing can be read twice), cents as "CENTS …" in words,
and "ONLY" closing it so nothing can be added after.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from num2words import num2words

MAX_AMOUNT = Decimal("9999999999999.99")
_CENT = Decimal("0.01")
_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")


def _checked(amount) -> Decimal:
    if isinstance(amount, float):
        raise ValueError("Money is Decimal, never float.")
    try:
        value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"Not an amount: {amount!r}") from exc
    if not value.is_finite():
        raise ValueError(f"Not an amount: {amount!r}")
    if value < 0:
        raise ValueError("Amounts in words are for amounts of 0 or more.")
    if value > MAX_AMOUNT:
        raise ValueError(f"Amounts in words go up to {MAX_AMOUNT:,}.")
    if value != value.quantize(_CENT):
        raise ValueError("Amounts in words are in cents: at most two decimal places.")
    return value.quantize(_CENT)


def _below_ten_thousand(number: int) -> str:
    """1–9999 with inner zeros as one 零 and no trailing zeros (1005 → 壹仟零伍)."""
    digits = f"{number:04d}"
    words = []
    pending_zero = False
    started = False
    for position, char in enumerate(digits):
        digit = int(char)
        if digit == 0:
            pending_zero = started
            continue
        if pending_zero:
            words.append("零")
            pending_zero = False
        words.append(_DIGITS[digit] + _SMALL_UNITS[3 - position])
        started = True
    return "".join(words)


def _integer_words(number: int) -> str:
    """A positive whole number: groups of 万 and 亿, recursively (so 万亿 comes out right).

    A 零 joins a group to the next one when the next one's first digit (仟, or 仟万 below
    亿) is 0; when it is not, no 零 is written (the short form the rules allow).
    """
    if number < 10_000:
        return _below_ten_thousand(number)
    unit, name = (100_000_000, "亿") if number >= 100_000_000 else (10_000, "万")
    high, low = divmod(number, unit)
    words = _integer_words(high) + name
    if low:
        if low < unit // 10:
            words += "零"
        words += _integer_words(low)
    return words


def amount_in_chinese_words(amount: Decimal) -> str:
    """人民币大写 of ``amount`` (without the 人民币 prefix): 1005000.50 → 壹佰万伍仟元伍角.

    Raises ``ValueError`` for negative amounts, amounts above 9,999,999,999,999.99 and
    fractions of a cent.
    """
    value = _checked(amount)
    cents = int(value * 100)
    yuan, rest = divmod(cents, 100)
    jiao, fen = divmod(rest, 10)
    if cents == 0:
        return "零元整"
    words = _integer_words(yuan) + "元" if yuan else ""
    if jiao:
        words += _DIGITS[jiao] + "角"
    elif fen and yuan:
        words += "零"
    if fen:
        words += _DIGITS[fen] + "分"
    if not jiao and not fen:
        words += "整"
    return words


def _english_integer(number: int) -> str:
    # num2words writes British "one hundred and five, …": the trade form has neither.
    text = num2words(number, lang="en").replace(",", "").replace(" and ", " ")
    return " ".join(text.split()).upper()


def amount_in_english_words(amount: Decimal, currency: str = "CNY") -> str:
    """``SAY CNY ONE HUNDRED TWENTY-THREE … AND CENTS TWELVE ONLY`` (see the module notes).

    Whole amounts end ``… ONLY`` with no cents; below one unit it reads
    ``SAY CNY ZERO AND CENTS FIVE ONLY``. Same limits as the Chinese form.
    """
    value = _checked(amount)
    cents = int(value * 100)
    units, rest = divmod(cents, 100)
    words = f"SAY {currency.upper()} {_english_integer(units)}"
    if rest:
        label = "CENT" if rest == 1 else "CENTS"
        words += f" AND {label} {_english_integer(rest)}"
    return words + " ONLY"
