"""Notifications of failed backups and other trouble (seed §1.7).

A `Notifier` is anything with ``notify(event)``. Built in: `LogNotifier` (the standard
`logging` module), `SnsNotifier` (an Amazon SNS topic) and `WebhookNotifier` (a JSON POST,
e.g. to a chat or paging service). `notify_all` sends one event to every notifier and never
raises: a failing notifier is logged and reported back, and never hides the original failure.

Example:
    >>> from datetime import datetime, UTC
    >>> event = Event(kind=EventKind.BACKUP_FAILED, policy="web-apps", target="orders-db",
    ...               message="CreateDBSnapshot failed", error="AccessDenied",
    ...               at=datetime(2026, 11, 26, 4, 0, tzinfo=UTC))
    >>> event.subject
    '[backuppolicy] web-apps: backup failed for orders-db'
    >>> event.hint
    'Check the error, then run a manual backup: backuppolicy backup --policy FILE --target orders-db.'
"""

from __future__ import annotations

import base64
import enum
import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import attrs

from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.model import ensure_aware
from backuppolicy.core.secrets import Secret, redact_url, scrub, secret_cause

if TYPE_CHECKING:
    import boto3

    from backuppolicy.aws import RetryPolicy
    from backuppolicy.aws.sns import SnsTopic

__all__ = [
    "Event",
    "EventKind",
    "Heartbeat",
    "LogNotifier",
    "Notifier",
    "NotifierFailure",
    "SnsNotifier",
    "WebhookNotifier",
    "notify_all",
]

_log = logging.getLogger("backuppolicy.notify")
_SNS_SUBJECT_MAX = 100


class EventKind(enum.Enum):
    """What went wrong."""

    BACKUP_FAILED = "backup_failed"
    """A backup of a target failed."""
    COPY_FAILED = "copy_failed"
    """A tier copy (e.g. the weekly off-site copy) failed."""
    VERIFICATION_FAILED = "verification_failed"
    """An integrity check or restore test failed."""
    OVERDUE = "overdue"
    """A target has no completed backup as recent as its schedule requires."""
    PRUNE_FAILED = "prune_failed"
    """Deleting expired backups failed (nothing unsafe was deleted)."""


_HINTS = {
    EventKind.BACKUP_FAILED: (
        "Check the error, then run a manual backup: "
        "backuppolicy backup --policy FILE --target {target}."
    ),
    EventKind.COPY_FAILED: (
        "The local copy exists; check the destination region/store, its KMS key and permissions, "
        "then re-run the backup job (copies are idempotent)."
    ),
    EventKind.VERIFICATION_FAILED: (
        "Do not rely on this backup: inspect the evidence in the backup testing log and take a new "
        "backup of {target}."
    ),
    EventKind.OVERDUE: (
        "The scheduler may not be running: check the cron/systemd/EventBridge job, then run "
        "backuppolicy backup --policy FILE --target {target}."
    ),
    EventKind.PRUNE_FAILED: (
        "Nothing unsafe was deleted; expired backups stay until the next successful prune run."
    ),
}
_TITLES = {
    EventKind.BACKUP_FAILED: "backup failed",
    EventKind.COPY_FAILED: "copy failed",
    EventKind.VERIFICATION_FAILED: "verification failed",
    EventKind.OVERDUE: "backup overdue",
    EventKind.PRUNE_FAILED: "prune failed",
}


def _aware(_inst: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    ensure_aware(value, field=attribute.name)


@attrs.frozen
class Event:
    """One thing worth telling people about.

    Attributes:
        kind: The `EventKind`.
        policy: Name of the policy.
        target: Name of the target concerned.
        message: What happened, in one line.
        at: When it happened (timezone-aware).
        error: The error text, if any.
        details: Extra facts (point id, tier, operation ...).
    """

    kind: EventKind
    policy: str
    target: str
    message: str
    at: datetime = attrs.field(validator=_aware)
    error: str | None = None
    details: Mapping[str, object] = attrs.field(factory=dict, hash=False)

    @property
    def subject(self) -> str:
        """A one-line subject for e-mail, SNS and chat."""
        return f"[backuppolicy] {self.policy}: {_TITLES[self.kind]} for {self.target}"

    @property
    def hint(self) -> str:
        """A short remediation hint."""
        return _HINTS[self.kind].format(target=self.target)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (what `WebhookNotifier` posts and `SnsNotifier` publishes)."""
        return {
            "kind": self.kind.value,
            "subject": self.subject,
            "policy": self.policy,
            "target": self.target,
            "message": self.message,
            "error": self.error,
            "hint": self.hint,
            "at": self.at.isoformat(),
            "details": {str(k): _jsonable(v) for k, v in self.details.items()},
        }

    def to_text(self) -> str:
        """Plain-text body for humans."""
        lines = [self.subject, "", self.message]
        if self.error:
            lines += ["", f"Error: {self.error}"]
        lines += ["", f"What to do: {self.hint}", f"When: {self.at.isoformat()}"]
        lines += [f"{key}: {value}" for key, value in self.details.items()]
        return "\n".join(lines)


def _jsonable(value: object) -> str | int | float | bool | None:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@runtime_checkable
class Notifier(Protocol):
    """**Protocol:** something that delivers an `Event` to people or systems."""

    def notify(self, event: Event) -> None:
        """Deliver *event*; raise on failure (`notify_all` contains the failure)."""
        ...


@attrs.frozen
class NotifierFailure:
    """A notifier that failed to deliver an event.

    Attributes:
        notifier: The notifier that failed.
        event: The event it failed to deliver.
        error: The exception it raised.
    """

    notifier: Notifier
    event: Event
    error: BaseException


def notify_all(notifiers: Iterable[Notifier], event: Event) -> list[NotifierFailure]:
    """Send *event* to every notifier; never raises, returns the failures.

    A failing notifier is logged at ERROR and does not stop the others.
    """
    failures = []
    for notifier in notifiers:
        try:
            notifier.notify(event)
        except Exception as exc:  # noqa: BLE001 - a notifier must never hide the original failure
            _log.error("notifier %r failed for %r: %s", notifier, event.subject, exc)
            failures.append(NotifierFailure(notifier=notifier, event=event, error=exc))
    return failures


@attrs.frozen
class LogNotifier:
    """Log events through `logging` (logger ``backuppolicy.events`` by default).

    Attributes:
        logger: Name of the logger.
        level: Log level (default ``logging.ERROR``).
    """

    logger: str = "backuppolicy.events"
    level: int = logging.ERROR

    def notify(self, event: Event) -> None:
        """Log *event*'s text with its fields as ``extra``."""
        logging.getLogger(self.logger).log(
            self.level, "%s", event.to_text(), extra={"backuppolicy_event": event.to_dict()}
        )


class SnsNotifier:
    """Publish events to an Amazon SNS topic (JSON message, subject line for e-mail).

    Args:
        topic_arn: The topic's ARN.
        session: A `boto3.Session`; region, endpoint_url, clients and retry as for every AWS target.
        region: AWS region (default: from the topic ARN).
        endpoint_url: Endpoint override (moto server, LocalStack).
        clients: Ready clients (``{"sns": client}``).
        retry: The `backuppolicy.aws.RetryPolicy`.
    """

    def __init__(
        self,
        topic_arn: str,
        *,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        parts = topic_arn.split(":") if isinstance(topic_arn, str) else []
        if len(parts) != 6 or parts[:3] != ["arn", "aws", "sns"]:  # noqa: PLR2004
            raise PolicyError.for_field(
                "topic_arn",
                "an SNS topic ARN like 'arn:aws:sns:us-east-1:123456789012:backups'",
                topic_arn,
            )
        self.topic_arn = topic_arn
        from backuppolicy.aws.sns import SnsTopic  # noqa: PLC0415 - boto3 only for an SNS notifier

        self._topic: SnsTopic = SnsTopic(
            topic_arn,
            session=session,
            region=region or parts[3],
            endpoint_url=endpoint_url,
            clients=clients,
            retry=retry,
        )

    def __repr__(self) -> str:
        return f"SnsNotifier({self.topic_arn!r})"

    def notify(self, event: Event) -> None:
        """Publish *event* (raises `backuppolicy.BackendError` on failure)."""
        self._topic.publish(
            event.subject[:_SNS_SUBJECT_MAX],
            json.dumps(event.to_dict(), sort_keys=True),
            attributes={"kind": event.kind.value, "target": event.target},
        )


def _to_secret(value: str | Secret) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


def _to_secret_headers(value: object) -> Mapping[str, Secret]:
    if not isinstance(value, Mapping):
        raise PolicyError.for_field("headers", "a mapping of header names to values", "...")
    result: dict[str, Secret] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise PolicyError.for_field("headers", "non-empty header names", key)
        result[key] = _to_secret(item)
    return result


@attrs.frozen
class WebhookNotifier:
    """POST events as JSON to a URL (chat, paging or ticketing webhooks).

    The URL and the header values are `backuppolicy.Secret` values (plain text is wrapped):
    webhook URLs carry tokens, headers carry credentials. They are redacted in ``repr``, in
    errors and in logs, and revealed only to make the request; a reference
    (`Secret.from_env`, `Secret.from_file`) is read then, each time. A ``user:password@`` in
    the URL is sent as HTTP Basic authentication (unless *headers* set ``Authorization``).

    Attributes:
        url: ``http://`` or ``https://`` URL.
        timeout: Seconds to wait for the server.
        headers: Extra HTTP headers (e.g. an authorization token).
    """

    url: Secret = attrs.field(converter=_to_secret)
    timeout: float = 10.0
    headers: Mapping[str, Secret] = attrs.field(
        factory=dict, converter=_to_secret_headers, hash=False, repr=False
    )

    @url.validator
    def _check_url(self, _attribute: attrs.Attribute[Secret], value: Secret) -> None:
        if value.reference is None:
            self._checked_url(value.reveal())

    def _checked_url(self, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise PolicyError.for_field("url", "an http:// or https:// URL", str(self.url))
        return url

    def notify(self, event: Event) -> None:
        """POST *event* (raises `backuppolicy.BackendError` on an HTTP or network error).

        A reference that cannot be read raises `backuppolicy.PolicyError` naming it.
        """
        url = self._checked_url(self.url.reveal())
        secrets = [url, *(value.reveal() for value in self.headers.values())]
        body = json.dumps(event.to_dict(), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "backuppolicy"}
        url, basic = _split_userinfo(url)
        if basic:
            headers["Authorization"] = basic
        headers.update(zip(self.headers, secrets[1:], strict=True))
        shown = redact_url(secrets[0])
        if self.url.reference:
            shown = f"{self.url.reference} ({shown})"
        try:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
            with _OPENER.open(request, timeout=self.timeout) as response:
                response.read()
        except (OSError, ValueError, http.client.HTTPException) as exc:
            why = ""
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()  # it holds the response and its socket
                if 300 <= exc.code < 400:  # noqa: PLR2004 - the redirection statuses
                    why = " (redirects are not followed: they would carry the credentials along)"
            # The error of urllib or http.client may quote the URL or a header: scrub it, and
            # chain the original only when its text holds no secret (tracebacks print it).
            raise BackendError(
                f"webhook {shown} failed: {scrub(f'{type(exc).__name__}: {exc}', secrets)}{why}",
                backend="webhook",
                operation="POST",
                resource=shown,
            ) from secret_cause(exc, secrets)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: a 3xx answer is an `urllib.error.HTTPError`.

    urllib follows a 301/302/303 answer to a POST as a GET with the same headers, to any host:
    the ``Authorization`` of a webhook (its header or its ``user:password@``) would be sent
    wherever the ``Location`` points, and the event itself would be dropped.
    """

    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        """Refuse every redirect."""
        return


_OPENER: Final = urllib.request.build_opener(_NoRedirects)


def _split_userinfo(url: str) -> tuple[str, str | None]:
    """*url* without ``user:password@``, and the Basic ``Authorization`` value it stood for."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    pair = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
    basic = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), basic


@attrs.frozen
class Heartbeat:
    """Pings of a dead man's switch, in the healthchecks.io / Cronitor convention.

    ``start()`` GETs ``<url>/start``, ``success()`` GETs ``<url>`` and ``failure()`` GETs
    ``<url>/fail``: the service pages someone when a run fails, and also when no run arrives
    in time, which nothing on the machine itself can notice. The URL is a
    `backuppolicy.Secret` (it is the credential of the check), revealed only to make the
    request. A ping never raises: a failing one is logged (the URL redacted) and reported as
    ``False``, so a heartbeat service that is down never fails a backup run.

    Example:
        >>> Heartbeat(Secret.from_env("BACKUPPOLICY_HEARTBEAT_URL"))
        Heartbeat(url=Secret(env='BACKUPPOLICY_HEARTBEAT_URL'), timeout=10.0)

    Attributes:
        url: The check's ping URL (``https://hc-ping.com/<uuid>``).
        timeout: Seconds to wait for each ping.
    """

    url: Secret = attrs.field(converter=_to_secret)
    timeout: float = 10.0

    def start(self) -> bool:
        """Ping ``<url>/start``: a run began (the service can then time it)."""
        return self._ping("/start")

    def success(self) -> bool:
        """Ping ``<url>``: the run succeeded."""
        return self._ping("")

    def failure(self) -> bool:
        """Ping ``<url>/fail``: the run failed."""
        return self._ping("/fail")

    def _ping(self, suffix: str) -> bool:
        try:
            base = self.url.reveal()
        except PolicyError as exc:
            _log.error("heartbeat %s%s not sent: %s", self.url, suffix, exc)
            return False
        shown = f"{self.url.reference or redact_url(base)}{suffix}"
        if not base.startswith(("http://", "https://")):
            _log.error("heartbeat %s not sent: expected an http:// or https:// URL", shown)
            return False
        url, basic = _split_userinfo(base.rstrip("/") + suffix)
        headers = {"User-Agent": "backuppolicy"}
        if basic:
            headers["Authorization"] = basic
        try:
            request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310
            with _OPENER.open(request, timeout=self.timeout) as response:
                response.read(1024)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()
            _log.error(
                "heartbeat %s failed: %s", shown, scrub(f"{type(exc).__name__}: {exc}", [base])
            )
            return False
        return True
