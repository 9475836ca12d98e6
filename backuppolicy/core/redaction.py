"""Redaction of credentials in URLs, DSNs and free text: pure string functions.

`backuppolicy.core.secrets` builds the `Secret` type on these; `backuppolicy.core.exceptions`
quotes refused values through them. They import nothing else of ours, so both can use them
without an import cycle.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

__all__ = [
    "HTTP_SCHEMES",
    "KV_SECRET_RE",
    "REDACTED",
    "SECRET_PATH_HOSTS",
    "URL_IN_TEXT_RE",
    "looks_token",
    "redact_text",
    "redact_url",
]

REDACTED: Final = "***"
"""What stands in for a secret in every output."""

WORD_RE: Final = re.compile(r"[a-z][a-z._-]{0,15}")
# Services whose webhook URLs are credentials in their whole path, whatever it looks like.
SECRET_PATH_HOSTS: Final = re.compile(
    r"(?i)(^|\.)(hooks\.slack\.com|discord(app)?\.com|webhook\.office\.com|outlook\.office\.com"
    r"|hooks\.zapier\.com|chat\.googleapis\.com|api\.telegram\.org|events\.pagerduty\.com)$"
)
KV_SECRET_RE: Final = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)(\s*=\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s;&]+)"
)
# A URL in free text; the scheme's length is bounded, so a long run of letters costs linear time.
URL_IN_TEXT_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s'\"<>]+")
HTTP_SCHEMES: Final = ("http", "https")


def looks_token(segment: str) -> bool:
    """Whether a URL path segment may be a credential: anything but a short lowercase word.

    Webhook services put their tokens in the path (Slack ``/services/T000/B000/XXXX``,
    Discord ``/api/webhooks/<id>/<token>``); words such as ``hooks`` or ``services`` are safe.
    """
    return not WORD_RE.fullmatch(segment)


def redact_url(text: str) -> str:
    """*text* with the credentials of a URL or DSN replaced by ``***``, for display.

    Keeps the scheme, host, port, user name of a DSN, a database name and the first word of a
    web path; hides passwords, query values, fragments and every other path segment of an
    http(s) URL (webhook tokens live there). ``key=value`` DSNs lose their ``password=``.
    Text that is neither is returned unchanged.

    Example:
        >>> redact_url("https://hooks.slack.com/services/T000/B000/XXXX")
        'https://hooks.slack.com/services/***'
        >>> redact_url("https://user:pw@alerts.example/hook?token=abc&team=ops")
        'https://***@alerts.example/hook?token=***&team=***'
        >>> redact_url("host=db user=app password=hunter2 dbname=shop")
        'host=db user=app password=*** dbname=shop'
    """
    try:
        parts = urllib.parse.urlsplit(text)
        if not parts.scheme or not parts.netloc:
            return KV_SECRET_RE.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return REDACTED
    scheme = parts.scheme.lower()
    web = scheme in HTTP_SCHEMES
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
    if userinfo is None:
        netloc = host
    elif web or ":" not in userinfo:
        netloc = f"{REDACTED}@{host}" if web or not userinfo else f"{userinfo}@{host}"
    else:
        netloc = f"{userinfo.partition(':')[0]}:{REDACTED}@{host}"
    path = parts.path
    if web and path not in {"", "/"}:
        segments = path.split("/")[1:]
        first = segments[0]
        known = bool(SECRET_PATH_HOSTS.search(parts.hostname or ""))
        kept = REDACTED if looks_token(first) or (known and len(segments) == 1) else first
        path = f"/{kept}" + (f"/{REDACTED}" if len(segments) > 1 and kept != REDACTED else "")
    query = (
        "&".join(
            f"{key}={REDACTED}"
            for key, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        )
        or REDACTED
        if parts.query
        else ""
    )
    out = f"{parts.scheme}://{netloc}{path}"
    if query:
        out += f"?{query}"
    if parts.fragment:
        out += f"#{REDACTED}"
    return out


def redact_text(text: str) -> str:
    """*text* with every URL in it redacted (`redact_url`) and its ``password=`` items hidden.

    For free text that may quote a credential nobody named as a secret, such as a value that an
    error message quotes. Linear in the length of *text*.

    Example:
        >>> redact_text("got {'url': 'https://hooks.slack.com/services/T0/B0/XXXX'}")
        "got {'url': 'https://hooks.slack.com/services/***'}"
        >>> redact_text("host=db password=hunter2 dbname=shop")
        'host=db password=*** dbname=shop'
    """
    text = URL_IN_TEXT_RE.sub(lambda m: redact_url(m[0]), text)
    return KV_SECRET_RE.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
