"""Secrets out of URLs in messages: one masking for database URLs and model endpoints (``--base-url``).

``mask_url`` hides the password of ``scheme://user:password@host`` (as ``user:***@host``, the form
SQLAlchemy's ``hide_password`` prints) and the values of secret-looking query parameters
(``api_key``, ``token``, ``password``, ``secret``, ``key``). ``scrub`` removes a URL's secrets from
any text, such as an exception message that quotes the URL. Pure string functions; no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_PARAM = re.compile(r"(?i)(api[-_]?key|token|password|passwd|pwd|secret|key|auth|sig(nature)?)")
_USERINFO = re.compile(r"(?<=://)([^/@:\s]*):[^\s/]*@")  # fallback for what urlsplit refuses


def mask_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``; other URLs unchanged."""
    if not isinstance(url, str) or not url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. a broken IPv6 literal: mask by pattern
        return _USERINFO.sub(rf"\1:{MASK}@", url)
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.fullmatch(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _SECRET_PARAM.fullmatch(k) else v) for k, v in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
        found += [v for k, v in parse_qsl(parts.query) if _SECRET_PARAM.fullmatch(k) and v]
    except ValueError:
        m = re.search(r"://[^/@:\s]*:([^\s/]*)@", url)
        found = [m.group(1)] if m else []
    return [s for s in found if len(s) >= 3]


def scrub(text: str, *urls: str | None) -> str:
    """``text`` with each of ``urls`` masked and their secrets (passwords, keys) replaced by ``***``."""
    for url in urls:
        if not url:
            continue
        text = text.replace(url, mask_url(url))
        for secret in _secrets(url):
            text = text.replace(secret, MASK)
    return text


def is_loopback(url: str | None) -> bool:
    """Whether ``url`` points at this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    if not url:
        return False
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost
        return False
