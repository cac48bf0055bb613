"""Printable contracts and quotes: A4 PDFs in Simplified Chinese or English (ReportLab).

Chinese is set in ReportLab's built-in CID font STSong-Light (宋体; the PDF viewer supplies
the glyphs, so there is no font file to install or embed); Latin text, numbers and
document numbers in Helvetica. Every piece of text is split into runs so each character is
set in a font that has it: an English PDF still prints a Chinese customer name.

Layout: the company header (logo, name, address, phone, tax number) on page 1 and a short
running header after it; title and number; the two parties; the key dates; the lines,
whose table header repeats on every page; totals with the amount in words (人民币大写 in
the Chinese PDF, with the English words under it; the English words in the English PDF);
payment terms and notes; signature blocks for both parties; "page x of y" in the footer.
A contract not yet (or no longer) in force, and a quote that cannot be accepted, carry a
pale watermark with their status so a draft is never mistaken for a signed copy.

The caller has checked that the user may see the document; no phone number or e-mail
address of the customer is printed, since field-level visibility depends on the viewer.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from django.utils import formats, translation
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from kehu.core.words import amount_in_chinese_words, amount_in_english_words

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"

ACCENT = colors.HexColor("#1F4E79")
INK = colors.HexColor("#1F2328")
MUTED = colors.HexColor("#5A6473")
RULE = colors.HexColor("#C9D3DF")
STRIPE = colors.HexColor("#F3F6FA")
PANEL = colors.HexColor("#EEF3F8")
WATERMARK = colors.Color(0.75, 0.2, 0.2, alpha=0.12)

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN_X = 18 * mm
MARGIN_TOP = 16 * mm
MARGIN_BOTTOM = 18 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN_X

CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "HKD": "HK$"}
LANGUAGES = ("zh-hans", "en")


def _fonts_register() -> None:
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        # No bold face exists for the CID font: <b> inside a CJK run keeps the regular one.
        pdfmetrics.registerFontFamily(
            CJK_FONT, normal=CJK_FONT, bold=CJK_FONT, italic=CJK_FONT, boldItalic=CJK_FONT
        )


# --- text -----------------------------------------------------------------------------------


def _is_latin(char: str) -> bool:
    """Helvetica (WinAnsi) has it; anything else goes to the CJK font."""
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _runs(text: str) -> list[tuple[str, str]]:
    """``text`` as (font, run) pairs: Latin runs in Helvetica, the rest in STSong-Light."""
    runs: list[tuple[str, str]] = []
    for char in text:
        font = LATIN_FONT if _is_latin(char) or char in "\n\t" else CJK_FONT
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + char)
        else:
            runs.append((font, char))
    return runs


def _markup(text: Any, *, bold: bool = False) -> str:
    """Paragraph markup for plain ``text``: escaped, CJK runs in the CJK font, line breaks kept."""
    parts = []
    for font, run in _runs(str(text or "")):
        escaped = escape(run).replace("\n", "<br/>")
        if font == CJK_FONT:
            parts.append(f'<font face="{CJK_FONT}">{escaped}</font>')
        else:
            parts.append(f"<b>{escaped}</b>" if bold else escaped)
    return "".join(parts)


def _style(name: str, **kwargs) -> ParagraphStyle:
    kwargs.setdefault("fontName", LATIN_FONT)
    kwargs.setdefault("fontSize", 9)
    kwargs.setdefault("leading", kwargs["fontSize"] * 1.4)
    kwargs.setdefault("textColor", INK)
    # Breaks between any two CJK characters; Latin words still break only at spaces.
    kwargs.setdefault("wordWrap", "CJK")
    return ParagraphStyle(name, **kwargs)


STYLES = {
    "body": _style("body"),
    "small": _style("small", fontSize=8, textColor=MUTED),
    "label": _style("label", fontSize=8, textColor=MUTED),
    "cell": _style("cell", fontSize=8.5),
    "cell_right": _style("cell_right", fontSize=8.5, alignment=TA_RIGHT),
    "cell_center": _style("cell_center", fontSize=8.5, alignment=TA_CENTER),
    "cell_code": _style("cell_code", fontSize=7, textColor=MUTED),
    "head": _style("head", fontSize=8, textColor=colors.white),
    "head_right": _style("head_right", fontSize=8, textColor=colors.white, alignment=TA_RIGHT),
    "head_center": _style("head_center", fontSize=8, textColor=colors.white, alignment=TA_CENTER),
    "section": _style("section", fontSize=10, textColor=ACCENT, spaceBefore=4, spaceAfter=2),
    "party": _style("party", fontSize=8.5),
    "party_name": _style("party_name", fontSize=10.5, leading=14),
    "total_label": _style("total_label", fontSize=9, alignment=TA_RIGHT, textColor=MUTED),
    "total_value": _style("total_value", fontSize=9, alignment=TA_RIGHT),
    "grand_label": _style("grand_label", fontSize=10.5, alignment=TA_RIGHT),
    "grand_value": _style("grand_value", fontSize=10.5, alignment=TA_RIGHT, textColor=ACCENT),
    "words": _style("words", fontSize=9.5, leading=14),
    "words_en": _style("words_en", fontSize=8, textColor=MUTED),
}


def _p(text: Any, style: str = "body", *, bold: bool = False) -> Paragraph:
    return Paragraph(_markup(text, bold=bold), STYLES[style])


def _labelled(label: str, value: Any, style: str = "body") -> Paragraph:
    """ "Label: value" with the label muted."""
    return Paragraph(
        f'<font color="#5A6473">{_markup(label)}</font> {_markup(value)}', STYLES[style]
    )


class _Heading(Flowable):
    """One line of heavy text. CJK has no bold face here, so glyphs are filled and stroked
    (text render mode 2); Latin runs use Helvetica-Bold. Shrinks to fit the width."""

    def __init__(self, text: str, size: float, *, color=INK, align: str = TA_LEFT, space=1.35):
        super().__init__()
        self.text, self.size, self.color, self.align, self.space = text, size, color, align, space

    def _width(self, size: float) -> float:
        return sum(
            pdfmetrics.stringWidth(run, LATIN_BOLD if font == LATIN_FONT else font, size)
            for font, run in _runs(self.text)
        )

    def wrap(self, availWidth, availHeight):
        self.width = availWidth
        while self.size > 6 and self._width(self.size) > availWidth:
            self.size -= 0.5
        return availWidth, self.size * self.space

    def draw(self) -> None:
        canvas = self.canv
        width = self._width(self.size)
        x = {TA_CENTER: (self.width - width) / 2, TA_RIGHT: self.width - width}.get(self.align, 0)
        y = self.size * (self.space - 1) / 2 + self.size * 0.15
        canvas.saveState()
        canvas.setFillColor(self.color)
        canvas.setStrokeColor(self.color)
        canvas.setLineWidth(self.size * 0.04)
        for font, run in _runs(self.text):
            text = canvas.beginText(x, y)
            if font == LATIN_FONT:
                text.setFont(LATIN_BOLD, self.size)
                x += pdfmetrics.stringWidth(run, LATIN_BOLD, self.size)
            else:
                text.setFont(font, self.size)
                text.setTextRenderMode(2)
                x += pdfmetrics.stringWidth(run, font, self.size)
            text.textOut(run)
            canvas.drawText(text)
        canvas.restoreState()


def _draw_runs(canvas, x: float, y: float, text: str, size: float, *, align: str = TA_LEFT):
    """Plain one-line text on the canvas with the right font per run (headers, footers)."""
    runs = _runs(text)
    width = sum(pdfmetrics.stringWidth(run, font, size) for font, run in runs)
    if align == TA_RIGHT:
        x -= width
    elif align == TA_CENTER:
        x -= width / 2
    for font, run in runs:
        canvas.setFont(font, size)
        canvas.drawString(x, y, run)
        x += pdfmetrics.stringWidth(run, font, size)


# --- values ---------------------------------------------------------------------------------


def _money(value: Decimal | None) -> str:
    return f"{value or Decimal('0'):,.2f}"


def _quantity(value: Decimal) -> str:
    from kehu.products.templatetags.products import qty

    return qty(value)


def _percent(value: Decimal) -> str:
    if not value:
        return "—"
    text = f"{value.normalize():f}"
    return f"{text}%"


def _date(value: datetime.date | None) -> str:
    return formats.date_format(value, "DATE_FORMAT") if value else "—"


def _address(customer) -> str:
    parts = [customer.province, customer.city, customer.district, customer.street]
    if customer.city and customer.city == customer.province:  # 上海市上海市
        parts[1] = ""
    return "".join(part for part in parts if part)


def _person(contact) -> str:
    if contact is None:
        return ""
    return f"{contact.name}（{contact.title}）" if contact.title else contact.name


# --- the document ---------------------------------------------------------------------------


@dataclass
class _Spec:
    """What differs between a contract and a quote; the layout is shared."""

    title: str
    number_label: str
    number: str
    document: Any
    facts: list[tuple[str, str]]
    intro: str
    terms_label: str
    terms: str
    closing: list[str] = field(default_factory=list)
    signature_labels: tuple[str, str] = ("", "")
    watermark: str = ""


def _company():
    from kehu.system.services import system_settings_get

    return system_settings_get()


def _logo(company, max_height: float = 16 * mm, max_width: float = 42 * mm) -> Image | None:
    if not company.logo:
        return None
    try:
        with company.logo.open("rb") as handle:
            data = io.BytesIO(handle.read())
        width, height = ImageReader(data).getSize()
        data.seek(0)
    except (OSError, ValueError):  # missing or unreadable file: print without the logo
        return None
    scale = min(max_height / height, max_width / width)
    return Image(data, width=width * scale, height=height * scale)


def _header(company) -> list[Flowable]:
    details = []
    if company.company_address:
        details.append(company.company_address)
    contact = []
    if company.company_phone:
        contact.append(_("Tel.: %(phone)s") % {"phone": company.company_phone})
    if company.company_tax_number:
        contact.append(_("Tax ID: %(number)s") % {"number": company.company_tax_number})
    if contact:
        details.append(" · ".join(contact))
    block: list[Flowable] = [_Heading(company.company_name, 15, color=ACCENT, space=1.5)]
    block += [_p(line, "small") for line in details]
    logo = _logo(company)
    if logo is not None:
        row = Table(
            [[logo, block]],
            colWidths=[logo.drawWidth + 5 * mm, CONTENT_WIDTH - logo.drawWidth - 5 * mm],
        )
    else:
        row = Table([[block]], colWidths=[CONTENT_WIDTH])
    row.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
                ("LINEBELOW", (0, 0), (-1, 0), 1.4, ACCENT),
            ]
        )
    )
    return [row]


def _title_block(spec: _Spec) -> list[Flowable]:
    number = Table(
        [
            [
                _labelled(_("Subject:"), spec.document.title),
                Paragraph(
                    f'<font color="#5A6473">{_markup(spec.number_label)}</font> '
                    f"{_markup(spec.number, bold=True)}",
                    _style("number", fontSize=9.5, alignment=TA_RIGHT),
                ),
            ]
        ],
        colWidths=[CONTENT_WIDTH * 0.6, CONTENT_WIDTH * 0.4],
    )
    number.setStyle(
        TableStyle(
            [
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
            ]
        )
    )
    return [
        Spacer(1, 3 * mm),
        _Heading(spec.title, 20, align=TA_CENTER, space=1.5),
        Spacer(1, 1 * mm),
        number,
        Spacer(1, 2 * mm),
    ]


def _parties(spec: _Spec, company) -> list[Flowable]:
    document = spec.document
    customer = document.customer
    seller = [_p(company.company_name, "party_name")]
    for label, value in (
        (_("Address:"), company.company_address),
        (_("Tel.:"), company.company_phone),
        (_("Tax ID:"), company.company_tax_number),
        (_("Bank and account:"), company.company_bank),
    ):
        if value:
            seller.append(_labelled(label, value, "party"))
    contact = document.contact or customer.contacts.order_by("-is_primary", "id").first()
    buyer = [_p(customer.name, "party_name")]
    for label, value in (
        (_("Customer no.:"), customer.code),
        (_("Address:"), _address(customer)),
        (_("Contact:"), _person(contact)),
    ):
        if value:
            buyer.append(_labelled(label, value, "party"))
    half = CONTENT_WIDTH / 2
    # Two boxes with a 4 mm gutter: an empty middle column.
    gutter = Table(
        [[_p(_("Seller"), "head"), "", _p(_("Buyer"), "head")], [seller, "", buyer]],
        colWidths=[half - 2 * mm, 4 * mm, half - 2 * mm],
    )
    gutter.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (0, 0), ACCENT),
                ("BACKGROUND", (2, 0), (2, 0), ACCENT),
                ("BOX", (0, 0), (0, -1), 0.6, RULE),
                ("BOX", (2, 0), (2, -1), 0.6, RULE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return [gutter, Spacer(1, 3 * mm)]


def _facts(spec: _Spec) -> list[Flowable]:
    cells = [
        [_p(label, "label") for label, _value in spec.facts],
        [_p(value, "body") for _label, value in spec.facts],
    ]
    width = CONTENT_WIDTH / len(spec.facts)
    table = Table(cells, colWidths=[width] * len(spec.facts))
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), PANEL),
                ("TOPPADDING", (0, 0), (-1, 0), 5),
                ("BOTTOMPADDING", (0, 0), (-1, 0), 0),
                ("TOPPADDING", (0, 1), (-1, 1), 1),
                ("BOTTOMPADDING", (0, 1), (-1, 1), 6),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return [table, Spacer(1, 3 * mm)]


# No. | product / description | unit | qty | unit price | discount | tax | amount
_COLUMNS = [8, 60, 12, 16, 23, 13, 12, 30]


def _lines_table(lines: Iterable[Any]) -> Table:
    header = [
        _p(_("No."), "head_center"),
        _p(_("Product / description"), "head"),
        _p(_("Unit"), "head_center"),
        _p(_("Qty"), "head_right"),
        _p(_("Unit price"), "head_right"),
        _p(_("Disc."), "head_right"),
        _p(_("Tax"), "head_right"),
        _p(_("Amount excl. tax"), "head_right"),
    ]
    rows: list[list[Any]] = [header]
    for position, line in enumerate(lines, start=1):
        product = [_p(line.description or line.product.name, "cell")]
        if line.product.code:
            product.append(_p(line.product.code, "cell_code"))
        rows.append(
            [
                _p(position, "cell_center"),
                product,
                _p(line.unit, "cell_center"),
                _p(_quantity(line.quantity), "cell_right"),
                _p(_money(line.unit_price), "cell_right"),
                _p(_percent(line.discount_rate), "cell_right"),
                _p(_percent(line.tax_rate), "cell_right"),
                _p(_money(line.subtotal), "cell_right"),
            ]
        )
    table = Table(rows, colWidths=[width * mm for width in _COLUMNS], repeatRows=1)
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LINEBELOW", (0, 1), (-1, -1), 0.4, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    for row in range(2, len(rows), 2):
        style.append(("BACKGROUND", (0, row), (-1, row), STRIPE))
    table.setStyle(TableStyle(style))
    return table


def _totals(document) -> list[Flowable]:
    currency = document.currency
    symbol = CURRENCY_SYMBOLS.get(currency, "")
    rows = [
        [
            _p(_("Amount before tax"), "total_label"),
            _p(_money(document.subtotal_amount), "total_value"),
        ],
        [_p(_("Tax"), "total_label"), _p(_money(document.tax_amount), "total_value")],
        [
            _p(_("Total (%(currency)s)") % {"currency": currency}, "grand_label"),
            Paragraph(
                _markup(f"{symbol}{_money(document.total_amount)}", bold=True),
                STYLES["grand_value"],
            ),
        ],
    ]
    table = Table(rows, colWidths=[50 * mm, 38 * mm], hAlign="RIGHT")
    table.setStyle(
        TableStyle(
            [
                ("LINEABOVE", (0, 2), (-1, 2), 1, ACCENT),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 2), (-1, 2), 5),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    chinese = translation.get_language() == "zh-hans"
    words: list[Flowable] = []
    english = amount_in_english_words(document.total_amount, currency=currency)
    if chinese and currency == "CNY":
        words.append(
            _labelled(
                _("Total in words:"),
                "人民币" + amount_in_chinese_words(document.total_amount),
                "words",
            )
        )
        words.append(_p(english, "words_en"))
    else:
        words.append(_labelled(_("Total in words:"), english, "words"))
    box = Table([[words]], colWidths=[CONTENT_WIDTH])
    box.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), PANEL),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return [Spacer(1, 2 * mm), KeepTogether([table, Spacer(1, 3 * mm), box]), Spacer(1, 4 * mm)]


def _text_section(label: str, text: str) -> list[Flowable]:
    text = (text or "").strip()
    if not text:
        return []
    return [KeepTogether([_p(label, "section"), _p(text)]), Spacer(1, 2 * mm)]


def _signatures(spec: _Spec, company) -> list[Flowable]:
    customer = spec.document.customer
    left_label, right_label = spec.signature_labels

    def block(heading: str, party: str) -> list[Flowable]:
        return [
            _p(heading, "label"),
            _p(party, "party_name"),
            Spacer(1, 5 * mm),
            _p(_("Authorised signature (and seal): ____________________")),
            Spacer(1, 5 * mm),
            _p(_("Date: ________________________")),
        ]

    half = CONTENT_WIDTH / 2
    table = Table(
        [[block(left_label, company.company_name), block(right_label, customer.name)]],
        colWidths=[half, half],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEABOVE", (0, 0), (-1, 0), 0.8, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return [Spacer(1, 3 * mm), KeepTogether(table)]


# --- pages ----------------------------------------------------------------------------------


def _canvas_class(footer: Callable[[Canvas, int, int], None]) -> type[Canvas]:
    """A canvas that knows the page count when it closes: "page x of y" on every page."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._page_states: list[dict] = []

        def showPage(self):
            self._page_states.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._page_states)
            for state in self._page_states:
                self.__dict__.update(state)
                footer(self, self._pageNumber, total)
                super().showPage()
            super().save()

    return NumberedCanvas


def _page_decorations(spec: _Spec, company):
    running = f"{company.company_name}    {spec.title}  {spec.number}"
    page_text = _("Page %(page)s of %(pages)s")
    watermark = spec.watermark

    def first_page(canvas: Canvas, doc) -> None:
        pass

    def later_pages(canvas: Canvas, doc) -> None:
        canvas.saveState()
        canvas.setFillColor(MUTED)
        _draw_runs(canvas, MARGIN_X, PAGE_HEIGHT - 11 * mm, running, 8)
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.6)
        canvas.line(MARGIN_X, PAGE_HEIGHT - 13 * mm, PAGE_WIDTH - MARGIN_X, PAGE_HEIGHT - 13 * mm)
        canvas.restoreState()

    def footer(canvas: Canvas, page: int, pages: int) -> None:
        # Drawn when the page is finished: the watermark lies over the table stripes.
        _watermark(canvas, watermark)
        canvas.saveState()
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.6)
        canvas.line(MARGIN_X, 13 * mm, PAGE_WIDTH - MARGIN_X, 13 * mm)
        canvas.setFillColor(MUTED)
        _draw_runs(canvas, MARGIN_X, 9 * mm, f"{spec.number}", 8)
        _draw_runs(
            canvas,
            PAGE_WIDTH - MARGIN_X,
            9 * mm,
            page_text % {"page": page, "pages": pages},
            8,
            align=TA_RIGHT,
        )
        canvas.restoreState()

    return first_page, later_pages, footer


def _watermark(canvas: Canvas, text: str) -> None:
    if not text:
        return
    canvas.saveState()
    canvas.setFillColor(WATERMARK)
    canvas.translate(PAGE_WIDTH / 2, PAGE_HEIGHT / 2)
    canvas.rotate(35)
    _draw_runs(canvas, 0, 0, text, 72, align=TA_CENTER)
    canvas.restoreState()


def _render(spec: _Spec, lines: list[Any]) -> bytes:
    _fonts_register()
    company = _company()
    buffer = io.BytesIO()
    first_page, later_pages, footer = _page_decorations(spec, company)
    doc = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM,
        title=f"{spec.title} {spec.number}",
        author=company.company_name,
        subject=spec.document.title,
        creator="Kehu",
        invariant=True,  # the same document gives the same bytes (no timestamp, fixed id)
    )
    # Frames without padding: tables and paragraphs share one left edge.
    frame = {
        "x1": MARGIN_X,
        "y1": MARGIN_BOTTOM,
        "width": CONTENT_WIDTH,
        "height": PAGE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM,
        "leftPadding": 0,
        "rightPadding": 0,
        "topPadding": 0,
        "bottomPadding": 0,
    }
    doc.addPageTemplates(
        [
            PageTemplate(
                "first", [Frame(**frame)], onPage=first_page, autoNextPageTemplate="later"
            ),
            PageTemplate("later", [Frame(**frame)], onPage=later_pages),
        ]
    )
    story: list[Flowable] = []
    story += _header(company)
    story += _title_block(spec)
    story += _parties(spec, company)
    story += _facts(spec)
    if spec.intro:
        story += [_p(spec.intro), Spacer(1, 2 * mm)]
    story.append(_lines_table(lines))
    story += _totals(spec.document)
    story += _text_section(spec.terms_label, spec.terms)
    story += _text_section(_("Notes"), spec.document.notes)
    for paragraph in spec.closing:
        story += [_p(paragraph), Spacer(1, 2 * mm)]
    story += _signatures(spec, company)
    doc.build(story, canvasmaker=_canvas_class(footer))
    return buffer.getvalue()


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"PDF language must be one of {', '.join(LANGUAGES)}: {language!r}")
    return language


def contract_pdf(*, contract, language: str) -> bytes:
    """The contract as an A4 PDF in ``language`` ("zh-hans" or "en")."""
    from kehu.sales.models import ContractStatus

    with translation.override(_check_language(language)):
        in_force = contract.status in (ContractStatus.ACTIVE, ContractStatus.COMPLETED)
        spec = _Spec(
            title=_("Sales contract"),
            number_label=_("Contract no.:"),
            number=contract.number,
            document=contract,
            facts=[
                (_("Signing date"), _date(contract.signed_on)),
                (_("Start date"), _date(contract.start_date)),
                (_("End date"), _date(contract.end_date)),
                (_("Sales representative"), str(contract.owner)),
            ],
            intro=_(
                "The seller and the buyer agree on the sale of the goods and services below "
                "on the terms of this contract."
            ),
            terms_label=_("Payment terms"),
            terms=contract.payment_terms,
            closing=[
                _(
                    "This contract takes effect when signed and sealed by both parties. "
                    "It is made in two copies, one for each party, with equal force."
                )
            ],
            signature_labels=(_("Seller"), _("Buyer")),
            watermark="" if in_force else str(contract.get_status_display()),
        )
        lines = list(contract.lines.select_related("product").order_by("sort_order", "id"))
        return _render(spec, lines)


def quote_pdf(*, quote, language: str) -> bytes:
    """The quote as an A4 PDF in ``language`` ("zh-hans" or "en")."""
    from kehu.sales.models import QuoteStatus

    with translation.override(_check_language(language)):
        stale = quote.status in (QuoteStatus.DRAFT, QuoteStatus.REJECTED, QuoteStatus.EXPIRED)
        spec = _Spec(
            title=_("Quotation"),
            number_label=_("Quote no.:"),
            number=quote.number,
            document=quote,
            facts=[
                (_("Quote date"), _date(quote.quote_date)),
                (_("Valid until"), _date(quote.valid_until)),
                (_("Prepared by"), str(quote.owner)),
            ],
            intro=_("Thank you for your enquiry. We are pleased to quote as follows."),
            terms_label=_("Terms"),
            terms=quote.terms,
            closing=[
                _("This quotation is valid until %(date)s.") % {"date": _date(quote.valid_until)}
            ],
            signature_labels=(_("Quoted by"), _("Accepted by the customer")),
            watermark=str(quote.get_status_display()) if stale else "",
        )
        lines = list(quote.lines.select_related("product").order_by("sort_order", "id"))
        return _render(spec, lines)
