"""Amazon SNS topics: the one AWS call of `backuppolicy.notify.SnsNotifier`, ``Publish``.

`SnsTopic` makes the call, with the retries and error mapping of every AWS target
(`backuppolicy.aws.AwsBackend`); the notifier formats the event and reaches this module lazily,
so ``import backuppolicy.notify`` never imports boto3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from backuppolicy.aws._client import AwsBackend, RetryPolicy

if TYPE_CHECKING:
    import boto3
    from botocore.client import BaseClient
    from types_boto3_sns.type_defs import MessageAttributeValueTypeDef

__all__ = ["SnsTopic"]


class SnsTopic:
    """One SNS topic, by ARN: `publish` a message to it.

    Args:
        topic_arn: The topic's ARN (checked by the caller).
        session: A `boto3.Session`.
        region: AWS region (default: the session's).
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
        clients: Mapping[str, BaseClient] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.topic_arn = topic_arn
        self.backend = AwsBackend(
            f"sns:{topic_arn.rpartition(':')[2]}",
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            retry=retry,
        )

    def __repr__(self) -> str:
        return f"SnsTopic({self.topic_arn!r})"

    def publish(self, subject: str, message: str, *, attributes: Mapping[str, str]) -> str:
        """Publish *message* with *subject* and string message *attributes*; its message id.

        Raises:
            backuppolicy.BackendError: The call failed (no such topic, denied ...).
        """
        values: dict[str, MessageAttributeValueTypeDef] = {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        }
        response = self.backend.call(
            "sns",
            "publish",
            resource=self.topic_arn,
            TopicArn=self.topic_arn,
            Subject=subject,
            Message=message,
            MessageAttributes=values,
        )
        return str(response.get("MessageId", ""))
