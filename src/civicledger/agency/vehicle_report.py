"""The printable history report: a PDF (fpdf2) or a standalone HTML page, each with the QR code
that verifies it.

The PDF is in Korean when a Hangul font is installed (Debian's NanumGothic), otherwise in English
with a core font: fpdf2's core fonts cannot draw Hangul, and a report must print on any machine.
The HTML page (for the CLI's ``--html``) is self-contained: inline CSS with a print stylesheet,
the QR code as inline SVG, every value escaped. The QR code carries ``qr_text``: the report's
payload, or a verify-page URL holding it.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from pathlib import Path

from fpdf import FPDF

from civicledger.services.identity.qr_image import qr_png, qr_svg
from civicledger.services.vehicles.report import VehicleReport

__all__ = ["HANGUL_FONT", "report_html", "report_lines", "report_pdf"]

HANGUL_FONT = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")

_LABELS = {
    "ko": {
        "title": "중고차 이력 보고서",
        "vehicle": "차량",
        "owners": "소유자 수",
        "as_of": "기준",
        "events": "기록 수",
        "mileage": "주행거리",
        "accidents": "사고 정보",
        "repairs": "정비",
        "inspections": "성능·상태점검기록부",
        "liens": "저당·압류 (미해제)",
        "flags": "주의",
        "none": "없음",
        "verify": "QR 코드로 이 보고서를 검증하세요",
        "rollback": "주행거리 조작 의심",
        "implausible_rate": "비정상 주행 속도",
        "cluster_replacement": "계기판 교체",
        "flood": "침수",
        "total_loss": "전손",
        "odometer_discrepancy": "주행거리 불일치",
        "implausible_mileage": "비정상 주행거리",
    },
    "en": {
        "title": "Used-car history report",
        "vehicle": "Vehicle",
        "owners": "Owners",
        "as_of": "As of",
        "events": "Events",
        "mileage": "Mileage",
        "accidents": "Accidents",
        "repairs": "Repairs",
        "inspections": "Inspection records",
        "liens": "Open liens and seizures",
        "flags": "Warnings",
        "none": "none",
        "verify": "Scan the QR code to verify this report",
        "rollback": "odometer rollback",
        "implausible_rate": "implausible rate",
        "cluster_replacement": "cluster replaced",
        "flood": "flood",
        "total_loss": "total loss",
        "odometer_discrepancy": "odometer discrepancy",
        "implausible_mileage": "implausible mileage",
    },
}


def _day(time_ms: int) -> str:
    return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def report_lines(report: VehicleReport, lang: str = "en") -> list[str]:
    """The report as lines of text (the PDF's body, and the CLI's plain output)."""
    t = _LABELS["ko" if lang == "ko" else "en"]

    def flags(names: tuple[str, ...]) -> str:
        return ", ".join(t.get(n, n) for n in names)

    lines = [
        f"{t['vehicle']}: {report.vin} ({report.make} {report.model_year}, {report.fuel})",
        f"{t['owners']}: {report.owner_count}",
        f"{t['as_of']}: {_day(report.as_of_ms)} · {t['events']}: {report.count}",
        f"{t['flags']}: {flags(report.flags) or t['none']}",
        "",
        f"{t['mileage']}:",
    ]
    for point in report.mileage:
        marks = f"  [{flags(point.flags)}]" if point.flags else ""
        lines.append(f"  {_day(point.time_ms)}  {point.km:>9,} km  {point.kind}{marks}")
    lines.append(f"{t['accidents']}:")
    for accident in report.accidents or ():
        kind = str(accident["accident"])
        lines.append(
            f"  {_day(accident['time_ms'])}  {t.get(kind, kind)}  {accident['paid_krw']:,} KRW"
        )
    if not report.accidents:
        lines.append(f"  {t['none']}")
    lines.append(f"{t['repairs']}: {len(report.repairs)}")
    lines.append(f"{t['inspections']}: {len(report.inspections)}")
    lines.append(f"{t['liens']}: {', '.join(report.open_encumbrances) or t['none']}")
    return lines


def report_pdf(report: VehicleReport, qr_text: str, *, font: Path = HANGUL_FONT) -> bytes:
    """The report as a one- or two-page A4 PDF with its QR code; Korean if ``font`` exists."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    if font.is_file():
        pdf.add_font("Hangul", "", str(font))
        family, lang = "Hangul", "ko"
    else:
        family, lang = "Helvetica", "en"
    t = _LABELS[lang]
    pdf.set_font(family, size=16)
    pdf.cell(0, 10, t["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.image(io.BytesIO(qr_png(qr_text, scale=4)), x=160, y=10, w=35)
    pdf.set_font(family, size=10)
    for line in report_lines(report, lang):
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(family, size=8)
    pdf.multi_cell(0, 4, f"{t['verify']}: {report.qr_payload}")
    return bytes(pdf.output())


_HTML_STYLE = (
    "body{font-family:sans-serif;max-width:48rem;margin:1rem auto;padding:0 1rem}"
    "pre{white-space:pre-wrap}figure{float:right;margin:0 0 1rem 1rem;text-align:center}"
    ".flag{color:#8c1d18;font-weight:700}"
    "@media print{body{margin:0;max-width:none}.no-print{display:none}}"
)


def report_html(report: VehicleReport, qr_text: str, lang: str = "en") -> str:
    """The report as one self-contained printable HTML page (Korean or English)."""
    t = _LABELS["ko" if lang == "ko" else "en"]
    flags = ", ".join(t.get(f, f) for f in report.flags) or t["none"]
    body = html.escape("\n".join(report_lines(report, lang)))
    return (
        f'<!doctype html><html lang="{"ko" if lang == "ko" else "en"}"><head>'
        f'<meta charset="utf-8"><title>{html.escape(t["title"])} {html.escape(report.vin)}</title>'
        f"<style>{_HTML_STYLE}</style></head><body>"
        f"<figure>{qr_svg(qr_text, scale=3)}<figcaption>{html.escape(t['verify'])}</figcaption>"
        f"</figure><h1>{html.escape(t['title'])}</h1>"
        f'<p class="flag" id="flags">{html.escape(t["flags"])}: {html.escape(flags)}</p>'
        f'<pre id="report">{body}</pre>'
        f'<p><code id="payload">{html.escape(report.qr_payload)}</code></p>'
        "</body></html>\n"
    )
