"""Tests for backuppolicy.notify: events, log, SNS (-> SQS on moto), webhooks (local HTTP server)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest

import backuppolicy as bp
from backuppolicy.notify import (
    Event,
    EventKind,
    LogNotifier,
    Notifier,
    SnsNotifier,
    WebhookNotifier,
    notify_all,
)

AT = datetime(2026, 11, 26, 4, 5, tzinfo=UTC)


@pytest.fixture(name="event")
def _event() -> Event:
    return Event(
        kind=EventKind.BACKUP_FAILED,
        policy="web-apps",
        target="orders-db",
        message="CreateDBSnapshot failed",
        error="AccessDenied: not allowed",
        at=AT,
        details={"tier": "local", "when": AT},
    )


class _Recorder(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(
            {"body": json.loads(self.rfile.read(length)), "headers": dict(self.headers)}
        )
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(name="webhook_url")
def _webhook_url() -> Iterator[str]:
    _Recorder.received = []
    _Recorder.status = 200
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


class TestEvent:
    def test_dict_has_target_policy_error_and_hint(self, event):
        """The message carries target, policy, error and a remediation hint."""
        data = event.to_dict()
        assert ("orders-db", "web-apps", "AccessDenied: not allowed") == (
            data["target"],
            data["policy"],
            data["error"],
        )
        assert "backuppolicy backup --policy FILE --target orders-db" in data["hint"]
        assert AT.isoformat() == data["details"]["when"]
        json.dumps(data)

    @pytest.mark.parametrize("kind", list(EventKind))
    def test_every_kind_has_subject_and_hint(self, kind):
        """No kind is left without words."""
        event = Event(kind=kind, policy="p", target="t", message="m", at=AT)
        assert event.subject.startswith("[backuppolicy] p: ")
        assert event.hint

    def test_naive_time_rejected(self):
        """Events need aware times."""
        with pytest.raises(bp.PolicyError, match="^at: expected a timezone-aware"):
            Event(
                kind=EventKind.OVERDUE, policy="p", target="t", message="m", at=datetime(2026, 1, 1)
            )


class TestLogNotifier:
    def test_logs_text_and_structured_extra(self, event, caplog):
        """The log record has the text and the event as a dict."""
        with caplog.at_level(logging.ERROR, logger="backuppolicy.events"):
            LogNotifier().notify(event)
        (record,) = caplog.records
        assert "What to do:" in record.getMessage()
        assert "orders-db" == record.backuppolicy_event["target"]  # type: ignore[attr-defined]
        assert isinstance(LogNotifier(), Notifier)


class TestSnsNotifier:
    def test_publishes_to_topic_delivered_to_sqs(self, aws, event):
        """A published event arrives in an SQS queue subscribed to the topic."""
        import boto3

        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="backups")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="ops")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

        SnsNotifier(topic).notify(event)

        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        envelope = json.loads(messages[0]["Body"])
        assert event.subject == envelope["Subject"]
        assert event.to_dict() == json.loads(envelope["Message"])

    def test_missing_topic_raises_backend_error(self, aws, event):
        """Publishing to a topic that does not exist fails loudly."""
        with pytest.raises(bp.BackendError) as info:
            SnsNotifier("arn:aws:sns:us-east-1:123456789012:nope").notify(event)
        assert "Publish" == info.value.operation

    def test_topic_publishes_with_string_attributes(self, aws):
        """`SnsTopic.publish` (aws/sns.py) makes the Publish call and answers its message id."""
        import boto3

        from backuppolicy.aws.sns import SnsTopic

        topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="b")["TopicArn"]
        message_id = SnsTopic(topic, region="us-east-1").publish(
            "subject", "{}", attributes={"kind": "failure"}
        )
        assert message_id

    def test_bad_arn_is_a_policy_error(self):
        """A malformed ARN is refused at construction."""
        with pytest.raises(bp.PolicyError, match="^topic_arn: expected an SNS topic ARN"):
            SnsNotifier("backups")


class TestWebhookNotifier:
    def test_posts_json(self, event, webhook_url):
        """The event is POSTed as JSON with custom headers."""
        WebhookNotifier(webhook_url, headers={"Authorization": "Bearer x"}).notify(event)
        (request,) = _Recorder.received
        assert event.to_dict() == request["body"]
        assert "Bearer x" == request["headers"]["Authorization"]

    def test_http_error_raises_backend_error(self, event, webhook_url):
        """A 500 from the server is an error, not silent success."""
        _Recorder.status = 500
        with pytest.raises(bp.BackendError, match="webhook"):
            WebhookNotifier(webhook_url).notify(event)

    def test_user_info_is_sent_as_basic_auth(self, event, webhook_url):
        """``user:password@`` in the URL becomes a Basic Authorization header, not part of the host."""
        url = webhook_url.replace("http://", "http://ops:s3cret@")
        WebhookNotifier(url).notify(event)
        (request,) = _Recorder.received
        assert "Basic b3BzOnMzY3JldA==" == request["headers"]["Authorization"]

    def test_reference_is_read_when_sending(self, event, webhook_url, monkeypatch):
        """A URL and a header from the environment are read at send time, not at construction."""
        hook = WebhookNotifier(
            bp.Secret.from_env("BP_HOOK_URL"),
            headers={"Authorization": bp.Secret.from_env("BP_HOOK_AUTH")},
        )
        monkeypatch.setenv("BP_HOOK_URL", webhook_url)
        monkeypatch.setenv("BP_HOOK_AUTH", "Bearer late")
        hook.notify(event)
        (request,) = _Recorder.received
        assert "Bearer late" == request["headers"]["Authorization"]
        assert "WebhookNotifier(url=Secret(env='BP_HOOK_URL'), timeout=10.0)" == repr(hook)

    def test_error_names_the_redacted_url(self, event, webhook_url):
        """A failed POST says where it went, with the token hidden."""
        _Recorder.status = 500
        with pytest.raises(bp.BackendError) as info:
            WebhookNotifier(f"{webhook_url}/T0123/tok3n").notify(event)
        assert f"webhook {webhook_url}/*** failed: HTTPError: HTTP Error 500" in str(info.value)
        assert "tok3n" not in str(info.value)

    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    def test_a_redirect_never_carries_the_credentials_elsewhere(self, event, status):
        """A webhook that redirects (to another host) is a failure; no credential follows it.

        urllib follows a 301/302/303 of a POST as a GET with the same headers, so the
        Authorization header (and the Basic credentials of ``user:password@``) would reach
        whatever host the Location names.
        """
        seen: list[dict[str, str]] = []

        class Elsewhere(BaseHTTPRequestHandler):
            def _record(self) -> None:
                seen.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST = _record  # noqa: N815 - BaseHTTPRequestHandler's names

            def log_message(self, *args: object) -> None:
                pass

        elsewhere = HTTPServer(("127.0.0.1", 0), Elsewhere)
        target = f"http://127.0.0.1:{elsewhere.server_address[1]}/collect"

        class Redirect(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(status)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        hook = HTTPServer(("127.0.0.1", 0), Redirect)
        servers = [elsewhere, hook]
        for server in servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        port = hook.server_address[1]
        try:
            for notifier in (
                WebhookNotifier(
                    f"http://127.0.0.1:{port}/hook", headers={"Authorization": "Bearer s3cret"}
                ),
                WebhookNotifier(f"http://ops:s3cret@127.0.0.1:{port}/hook"),
            ):
                with pytest.raises(bp.BackendError, match=f"{status}"):
                    notifier.notify(event)
        finally:
            for server in servers:
                server.shutdown()
                server.server_close()
        assert [] == seen

    def test_url_validated(self):
        """Only http(s) URLs are accepted."""
        with pytest.raises(bp.PolicyError, match="^url: expected an http"):
            WebhookNotifier("file:///etc/passwd")


class TestNotifyAll:
    def test_failing_notifier_does_not_stop_others_or_raise(self, event, webhook_url, caplog):
        """One broken channel is reported; the others still deliver."""

        class Broken:
            def notify(self, event: Event) -> None:
                raise RuntimeError("smtp down")

        broken = Broken()
        with caplog.at_level(logging.ERROR, logger="backuppolicy.notify"):
            failures = notify_all([broken, WebhookNotifier(webhook_url)], event)
        assert [broken] == [f.notifier for f in failures]
        assert "smtp down" == str(failures[0].error)
        assert 1 == len(_Recorder.received)
        assert "smtp down" in caplog.text
