"""PII redaction for trace text shown to a denoiser: the one project-wide step, ``diffprompt.redact``.

Kept as a module so the DLM layout's import stays put; Presidio's pattern recognizers (no language
model) replace emails, phone numbers, card numbers, IBANs, SSNs, IP addresses, street addresses and
dates of birth with placeholders (``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[ADDRESS]``, ...).
"""

from __future__ import annotations

from diffprompt.redact import redact

__all__ = ["redact"]
