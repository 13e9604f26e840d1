"""PII redaction for trace text shown to a denoiser: emails, phone numbers, card numbers, addresses.

Pure regex passes, applied in an order that keeps them from eating each other (cards before phones,
emails first). Replacements are fixed placeholders (``[EMAIL]``, ``[PHONE]``, ``[CARD]``,
``[ADDRESS]``) so the DLM still sees *that* a detail was given, not the detail itself.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# 13-19 digits, optionally grouped by spaces or dashes (credit/debit card numbers)
_CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
# international or North-American style numbers: +1 (555) 123-4567, 555.123.4567, +44 20 7946 0958
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}(?![\w-])"
)
_STREET_WORDS = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|"
    r"Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq"
)
# "123 Main Street", "4 Elm Ave, Suite 5" (+ optional apartment/suite)
_ADDRESS = re.compile(
    rf"\b\d{{1,6}}\s+(?:[A-Z][\w'-]*\s+){{1,4}}(?:{_STREET_WORDS})\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Unit|#)\.?\s*\w+)?"
)
# JSON-ish address fields from tool results: "address1": "..." / "zip": "12345"
_ADDRESS_FIELD = re.compile(r'("(?:address\d?|street|address_line\d?)"\s*:\s*)"[^"]*"', re.IGNORECASE)
_ZIP_FIELD = re.compile(r'("(?:zip|zipcode|postal_code)"\s*:\s*)"[^"]*"', re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with emails, card numbers, phone numbers and street addresses replaced by placeholders."""
    text = _EMAIL.sub("[EMAIL]", text)
    text = _ADDRESS_FIELD.sub(r'\1"[ADDRESS]"', text)
    text = _ZIP_FIELD.sub(r'\1"[ZIP]"', text)
    text = _CARD.sub("[CARD]", text)
    text = _PHONE.sub("[PHONE]", text)
    return _ADDRESS.sub("[ADDRESS]", text)
