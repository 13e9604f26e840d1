"""PII redaction for every prompt that leaves for an external model (judge, critic, filler, writer, DLM).

One step, built on Microsoft Presidio's pattern recognizers with no language model loaded
(``NoOpNlpEngine``; spaCy is imported by Presidio but no spaCy model is needed or downloaded):

* Presidio's own recognizers for e-mail addresses, phone numbers (``phonenumbers``, several
  countries' formats), credit/debit card numbers (Luhn-checked), IBANs (checksum), US SSNs and IP
  addresses;
* recognizers of our own where Presidio has none without NER: street addresses ("12 Elm Street",
  JSON ``address1``/``zip`` fields) and dates of birth (a date after "born", "DOB", "date of birth",
  "birthday", or in a ``dob``/``birth_date`` field).

Every finding is replaced by a fixed placeholder (``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IBAN]``,
``[SSN]``, ``[IP]``, ``[ADDRESS]``, ``[DOB]``) so a model still sees *that* a detail was given. The
engine is built lazily on the first call (nothing happens at import) and is thread-safe to share.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

PLACEHOLDERS: Mapping[str, str] = {
    "EMAIL_ADDRESS": "[EMAIL]",
    "PHONE_NUMBER": "[PHONE]",
    "CREDIT_CARD": "[CARD]",
    "IBAN_CODE": "[IBAN]",
    "US_SSN": "[SSN]",
    "IP_ADDRESS": "[IP]",
    "STREET_ADDRESS": "[ADDRESS]",
    "DATE_OF_BIRTH": "[DOB]",
}
PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "IN", "CA", "BR", "AU", "ES", "IT", "NL", "MX", "JP")

_STREET_WORDS = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|"
    r"Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Strasse|Straße|Rue|Calle|Via"
)
_DATE = (
    r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|"
    r"(?:\d{1,2}\s+)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}|"
    r"\d{1,2}\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{4}"
)
# (entity, regex, the group that is the PII) — keyed patterns redact only the value, not the key
_OWN_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (
        "STREET_ADDRESS",
        rf"\b(?P<v>\d{{1,6}}\s+(?:[A-Z][\w'-]*\s+){{1,4}}(?:{_STREET_WORDS})\b\.?"
        r"(?:,?\s+(?:Apt|Apartment|Suite|Unit|#)\.?\s*\w+)?)",
        "v",
    ),
    (
        "STREET_ADDRESS",
        r"""(?i)["']?(?:address\d?|street|address_line\d?|zip|zipcode|postal_code|postcode)["']?\s*[:=]\s*"""
        r"""["'](?P<v>[^"']+)["']""",
        "v",
    ),
    (
        "DATE_OF_BIRTH",
        rf"(?i)(?:date\s+of\s+birth|birth\s*date|birth_date|d\.?o\.?b\.?|born(?:\s+on)?|birthday)"
        rf"""["']?\s*(?:is|was|[:=])?\s*["']?(?P<v>{_DATE})""",
        "v",
    ),
)


class Redactor:
    """Presidio-backed redaction; ``redact(text)`` is thread-safe once built (lazily, on first use)."""

    def __init__(self, *, phone_regions: Sequence[str] = PHONE_REGIONS, score_threshold: float = 0.0) -> None:
        self.phone_regions = tuple(phone_regions)
        self.score_threshold = score_threshold
        self._engines: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def _build(self) -> tuple[Any, Any]:
        with self._lock:
            if self._engines is None:
                self._engines = _build_engines(self.phone_regions)
            return self._engines

    def findings(self, text: str) -> list[tuple[str, int, int]]:
        """``(entity, start, end)`` of every PII finding in ``text``."""
        analyzer, _ = self._build()
        res = analyzer.analyze(
            text=text, language="en", entities=list(PLACEHOLDERS), score_threshold=self.score_threshold
        )
        return [(r.entity_type, r.start, r.end) for r in res]

    def redact(self, text: str) -> str:
        """``text`` with every finding replaced by its placeholder (overlaps: the longer finding wins)."""
        if not text or not text.strip():
            return text
        analyzer, anonymizer = self._build()
        res = analyzer.analyze(
            text=text, language="en", entities=list(PLACEHOLDERS), score_threshold=self.score_threshold
        )
        if not res:
            return text
        from presidio_anonymizer.entities import OperatorConfig

        ops = {e: OperatorConfig("replace", {"new_value": p}) for e, p in PLACEHOLDERS.items()}
        return str(anonymizer.anonymize(text=text, analyzer_results=res, operators=ops).text)

    def redact_messages(self, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """OpenAI-format messages with every string content and tool-call argument redacted."""
        out: list[dict[str, Any]] = []
        for m in messages:
            d = dict(m)
            c = d.get("content")
            if isinstance(c, str):
                d["content"] = self.redact(c)
            elif isinstance(c, list):
                d["content"] = [
                    {**p, "text": self.redact(str(p.get("text", "")))}
                    if isinstance(p, Mapping) and "text" in p
                    else p
                    for p in c
                ]
            if d.get("tool_calls"):
                calls = []
                for call in d["tool_calls"]:
                    call = dict(call)
                    fn = dict(call.get("function") or {})
                    if isinstance(fn.get("arguments"), str):
                        fn["arguments"] = self.redact(fn["arguments"])
                    call["function"] = fn
                    calls.append(call)
                d["tool_calls"] = calls
            out.append(d)
        return out


def _import_presidio() -> None:
    """Import Presidio without its optional transformers/torch engines (we use no NLP engine).

    Presidio's package import reaches for ``transformers`` (and spaCy's thinc for ``torch``) inside
    ``try: import``; hiding both for the duration of the import saves seconds and keeps torch out of
    processes that never use it. Modules already imported are left alone.
    """
    import sys

    hidden = [m for m in ("transformers", "torch") if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]
    try:
        import presidio_analyzer  # noqa: F401
        import presidio_anonymizer  # noqa: F401
    finally:
        for m in hidden:
            if sys.modules.get(m, "") is None:
                del sys.modules[m]


def _build_engines(phone_regions: Sequence[str]) -> tuple[Any, Any]:
    _import_presidio()
    import tldextract
    from presidio_analyzer import (
        AnalyzerEngine,
        EntityRecognizer,
        Pattern,
        PatternRecognizer,
        RecognizerRegistry,
        RecognizerResult,
    )
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )
    from presidio_anonymizer import AnonymizerEngine

    # the bundled public-suffix snapshot: tldextract's default would try to download the list
    offline_tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):  # type: ignore[misc]
        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline_tld(pattern_text).fqdn)

    class GroupRecognizer(EntityRecognizer):  # type: ignore[misc]
        """A regex recognizer that reports only the named group (the value after a key)."""

        def __init__(self, entity: str, regex: str, group: str) -> None:
            self.regex, self.group = re.compile(regex), group
            super().__init__(supported_entities=[entity], name=f"{entity}:{len(regex)}")

        def load(self) -> None:
            return None

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            ent = self.supported_entities[0]
            return [
                RecognizerResult(entity_type=ent, start=m.start(self.group), end=m.end(self.group), score=0.9)
                for m in self.regex.finditer(text)
                if m.group(self.group)
            ]

    registry = RecognizerRegistry(supported_languages=["en"])
    for rec in (
        OfflineEmailRecognizer(),
        PhoneRecognizer(supported_regions=tuple(phone_regions), leniency=1),
        CreditCardRecognizer(),
        IbanRecognizer(),
        UsSsnRecognizer(),
        IpRecognizer(),
        # SSNs written without separators or with spaces, which Presidio's weak patterns score ~0
        PatternRecognizer(
            supported_entity="US_SSN",
            patterns=[Pattern("ssn-keyed", r"(?i)(?<=ssn[:\s#]{1})\s*\d{3}[- ]?\d{2}[- ]?\d{4}\b", 0.9)],
        ),
    ):
        registry.add_recognizer(rec)
    for entity, regex, group in _OWN_PATTERNS:
        registry.add_recognizer(GroupRecognizer(entity, regex, group))
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    nlp.load()
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    return analyzer, AnonymizerEngine()


@functools.cache
def default_redactor() -> Redactor:
    """The shared default ``Redactor`` (built on first use, then reused: building it takes ~1 s)."""
    return Redactor()


def redact(text: str) -> str:
    """``text`` with PII replaced by placeholders, using the default redactor."""
    return default_redactor().redact(text)


def redact_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-format ``messages`` with PII redacted, using the default redactor."""
    return default_redactor().redact_messages(messages)
