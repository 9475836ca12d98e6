"""The restore-test sweeper of one AWS region, for sweeping without a target (`Sweepable`)."""

from __future__ import annotations

import os
from collections.abc import MutableSet
from datetime import datetime

import boto3

from backuppolicy.aws._client import AwsBackend
from backuppolicy.aws.ec2 import sweep_volumes
from backuppolicy.aws.rds import sweep_databases
from backuppolicy.core.targets import IsolationProfile, SweptResource

__all__ = ["RegionSweeper"]


class RegionSweeper(AwsBackend):
    """Sweeps restored RDS instances and clusters, then EBS volumes, left in its *region*."""

    def __init__(
        self,
        region: str,
        *,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        super().__init__(
            "restore-test-sweeper", session=session, region=region, endpoint_url=endpoint_url
        )

    def sweep_restore_tests(
        self,
        isolation: IsolationProfile,
        *,
        before: datetime,
        dry_run: bool,
        seen: MutableSet[str],
        temp_dir: str | os.PathLike[str] | None = None,  # noqa: ARG002 - no directories here
    ) -> list[SweptResource]:
        """Remove the region's leftovers that no target swept yet in this run (*seen*)."""
        swept: list[SweptResource] = []
        for service, sweep in (("rds", sweep_databases), ("ec2", sweep_volumes)):
            if f"{service}:{self.region}" in seen:
                continue
            seen.add(f"{service}:{self.region}")
            swept.extend(sweep(self, self.region, isolation, before, dry_run=dry_run))
        return swept
