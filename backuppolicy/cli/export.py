"""``backuppolicy export ...`` and ``backuppolicy targets``: compile a policy for AWS, list its targets.

* ``export aws-backup [--apply [--yes]]``: the AWS Backup vault, plan, selection, Vault Lock and
  restore testing plan (`backuppolicy.aws.backup_plan.export_aws_backup`); ``--apply`` creates or
  updates them after a confirmation (``--yes`` answers it; without a terminal it is required).
  Warnings (targets AWS Backup does not cover, a compliance-mode lock) go to stderr.
* ``export cloudformation [--format yaml|json]``: one CloudFormation template that runs the
  policy on Lambda, EventBridge Scheduler and Step Functions
  (`backuppolicy.aws.cloudformation.export_cloudformation`); YAML unless ``--format json`` or
  ``--json``.
* ``export iam [--workflow W ...]``: the least-privilege IAM policy document.
* ``export lifecycle``: S3 lifecycle configurations per bucket.
* ``export scheduler --lambda-arn ARN --role-arn ARN --policy-url URL``: EventBridge Scheduler
  schedules that run the library in Lambda.
* ``targets [--tag KEY=VALUE ...] [--kind KIND ...] [--name GLOB] [--in-region R ...]``: the
  policy's targets and what its selector targets resolve to now, per account and region (exit
  status 1 if one could not be resolved), plus what an ad-hoc selector given by the options
  finds; ``--unprotected`` lists resources that nothing covers.

Every other export prints JSON (the documents are JSON); ``--json`` changes nothing for them.
Each takes only the options it uses: ``--policy`` and ``--json`` for all, ``--profile``,
``--region`` and ``--endpoint-url`` only where AWS is called (``export aws-backup``, ``targets``);
none takes ``--now`` or ``--target``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import TYPE_CHECKING, Any, TextIO

from backuppolicy.cli._common import (
    AWS_OPTIONS,
    EXIT_FAILURES,
    EXIT_OK,
    POLICY_OPTIONS,
    Handler,
    Parser,
    Subcommands,
    UsageError,
    add_apply_options,
    confirm,
    emit,
    load_policy,
    option_parser,
)

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy
    from backuppolicy.core.specs import TargetSpec

__all__ = ["register"]


def _dump(data: object, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _warn(lines: list[str]) -> None:
    for line in lines:
        sys.stderr.write(f"backuppolicy: WARNING: {line}\n")


def _aws_backup(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.aws import backup_plan  # noqa: PLC0415 - boto3 only for this command

    policy = load_policy(args)
    lock = None
    if args.lock_min is not None or args.lock_max is not None:
        lock = backup_plan.VaultLock(
            args.lock_min, args.lock_max, changeable_for_days=args.lock_changeable_for_days
        )
    elif args.lock_changeable_for_days is not None:
        raise UsageError("--lock-changeable-for-days needs --lock-min-days or --lock-max-days")
    options: dict[str, Any] = {
        "region": args.region,
        "account_id": args.account_id,
        "vault_name": args.vault,
        "kms_key_arn": args.kms_key_arn,
        "iam_role_arn": args.iam_role_arn,
        "vault_lock": lock,
        "continuous": args.continuous,
        "cold_storage_after_days": args.cold_storage_after_days,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", backup_plan.ComplianceModeWarning)  # printed below
        if args.apply:
            parts = [p.strip() for p in args.parts.split(",") if p.strip()]
            locked = " (with a Vault Lock)" if lock is not None and "vault-lock" in parts else ""
            confirm(args, f"Create or update {', '.join(parts)} in AWS{locked}?")
            result = backup_plan.apply_aws_backup(
                policy, endpoint_url=args.endpoint_url, parts=parts, **options
            )
            document = result.pop("document")
        else:
            document = backup_plan.export_aws_backup(policy, **options)
            result = None
    _warn(document["Warnings"])
    _dump({"document": document, "applied": result} if result is not None else document, out)
    return EXIT_OK


def _iam(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.aws import iam  # noqa: PLC0415

    policy = load_policy(args)
    if args.holds:  # the deny statements that make AWS refuse to delete held RDS snapshots
        document = iam.hold_deny_policy(
            account_id=args.account_id or "*", release_role_arns=args.release_role_arn or ()
        )
        _dump(document, out)
        return EXIT_OK
    workflows = args.workflow or list(iam.WORKFLOWS)
    side = getattr(args, "account", None) or "production"
    _dump(iam.iam_policy(policy, workflows, account_id=args.account_id or "*", side=side), out)
    return EXIT_OK


def _lifecycle(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.aws import lifecycle_scheduler  # noqa: PLC0415

    _dump(lifecycle_scheduler.export_lifecycle(load_policy(args)), out)
    return EXIT_OK


def _scheduler(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.aws import lifecycle_scheduler  # noqa: PLC0415

    document = lifecycle_scheduler.export_scheduler(
        load_policy(args),
        lambda_arn=args.lambda_arn,
        role_arn=args.role_arn,
        policy_url=args.policy_url,
        apply_prune=args.apply_prune,
    )
    _dump(document, out)
    return EXIT_OK


def _cloudformation(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.aws import backup_plan, cloudformation  # noqa: PLC0415

    policy = load_policy(args)
    lock = None
    if args.lock_min is not None or args.lock_max is not None:
        lock = backup_plan.VaultLock(
            args.lock_min, args.lock_max, changeable_for_days=args.lock_changeable_for_days
        )
    elif args.lock_changeable_for_days is not None:
        raise UsageError("--lock-changeable-for-days needs --lock-min-days or --lock-max-days")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", backup_plan.ComplianceModeWarning)  # in the warnings
        template = cloudformation.export_cloudformation(
            policy, poll_seconds=args.poll_seconds, max_polls=args.max_polls, vault_lock=lock
        )
    _warn(template["Metadata"]["backuppolicy"]["warnings"])
    if args.format == "json" or args.json:
        _dump(template, out)
    else:
        out.write(cloudformation.to_yaml(template))
    return EXIT_OK


_EXPORTS: dict[str, Handler] = {
    "aws-backup": _aws_backup,
    "cloudformation": _cloudformation,
    "iam": _iam,
    "lifecycle": _lifecycle,
    "scheduler": _scheduler,
}


def _export(args: argparse.Namespace, out: TextIO) -> int:
    if args.export_what is None:
        raise UsageError("export needs what to export: " + ", ".join(_EXPORTS))
    return _EXPORTS[args.export_what](args, out)


def _tags(values: list[str] | None) -> dict[str, str | None]:
    tags: dict[str, str | None] = {}
    for value in values or []:
        key, sep, tag_value = value.partition("=")
        if not key:
            raise UsageError(f"--tag: expected KEY=VALUE or KEY (got {value!r})")
        tags[key] = tag_value if sep else None
    return tags


def _row(spec: TargetSpec, source: str, region: str | None) -> dict[str, object]:
    return {
        "name": spec.name,
        "kind": spec.kind,
        "resource": spec.resource,
        "source": source,
        "account": spec.account.account_id if spec.account is not None else None,
        "region": region,
    }


def _policy_targets(
    policy: Policy, args: argparse.Namespace
) -> tuple[list[dict[str, object]], list[dict[str, object]], list[str]]:
    """The policy's targets, selectors resolved: rows, errors, and text lines per account/region."""
    from backuppolicy.aws import discovery  # noqa: PLC0415 - boto3 only for this command

    listed: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    lines: list[str] = []
    resolved = discovery.resolve_targets(
        policy.targets, endpoint_url=args.endpoint_url, region=args.region
    )
    for found in resolved:
        spec = found.spec
        errors += [{"target": spec.name, "error": error} for error in found.errors]
        if spec.selector is None:
            listed.append(_row(spec, "policy", spec.settings.get("region")))
            lines.append(f"{spec.name}  {spec.kind}  {spec.resource}  (policy)")
            lines += [f"  FAILED {error}" for error in found.errors]
            continue
        lines.append(f"{spec.name}: {spec.resource}  (selector)")
        for account, region in found.searched:
            here = [t for t in found.targets if region is None or t.settings["region"] == region]
            who = f"account {account}" if account else "this account"
            lines.append(f"  {who}, {region or 'default region'}: {len(here)} found")
            for target in here:
                listed.append(_row(target, f"selector {spec.name}", target.settings["region"]))
                lines.append(f"    {target.name}  {target.kind}  {target.resource}")
        lines += [f"  FAILED {error}" for error in found.errors]
    return listed, errors, lines


def _targets(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.aws import discovery  # noqa: PLC0415 - boto3 only for this command
    from backuppolicy.core.selector import Selector  # noqa: PLC0415

    policy = load_policy(args)
    listed, errors, lines = _policy_targets(policy, args)
    selector = None
    if args.tag or args.kind or args.name:
        selector = Selector(
            tags=_tags(args.tag),
            resource_types=args.kind or (),
            name_pattern=args.name,
            regions=args.in_region or (),
        )
        for spec in discovery.resolve(selector, endpoint_url=args.endpoint_url):
            resource = next(iter(spec["settings"].values()))
            listed.append(
                {
                    "name": spec["name"],
                    "kind": spec["kind"],
                    "resource": resource,
                    "source": "selector",
                    "account": None,
                    "region": spec["settings"].get("region"),
                }
            )
            lines.append(f"{spec['name']}  {spec['kind']}  {resource}  (selector)")
    data: dict[str, object] = {"targets": listed, "errors": errors}
    if args.unprotected:
        found = discovery.unprotected_resources(
            policy,
            selectors=[selector] if selector else [],
            regions=args.in_region or (),
            endpoint_url=args.endpoint_url,
        )
        data["unprotected"] = found
        lines += ["", f"unprotected: {len(found)}"] + [f"  {r['arn']}" for r in found]
    emit(args, data, "\n".join(lines) or "no targets", out)
    return EXIT_FAILURES if errors else EXIT_OK


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add ``export`` and ``targets`` to the ``backuppolicy`` parser; return their handlers.

    *common* (every shared option) is not used: each command takes the groups it means.
    """
    del common
    policy_only = option_parser(POLICY_OPTIONS)
    with_aws = option_parser(POLICY_OPTIONS, AWS_OPTIONS)
    export = sub.add_parser(
        "export",
        help="compile the policy for AWS Backup, IAM, S3, Scheduler",
        description="Compile the policy into AWS documents: AWS Backup, IAM, S3, Scheduler.",
    )
    kinds = export.add_subparsers(dest="export_what", metavar="WHAT", parser_class=type(export))
    aws_backup = kinds.add_parser(
        "aws-backup",
        parents=[with_aws],
        help="AWS Backup vault, plan, selection, restore testing",
        description="Export the AWS Backup vault, plan, selection and restore testing plan.",
    )
    add_apply_options(aws_backup, "create or update them in AWS, after a confirmation")
    aws_backup.add_argument(
        "--parts",
        default="vault,vault-lock,plan,selection,restore-testing",
        help="with --apply: comma-separated parts to apply (default: all)",
    )
    aws_backup.add_argument(
        "--account-id", help="account id in ARNs (default: from STS on --apply)"
    )
    aws_backup.add_argument("--vault", help="vault name (default: backuppolicy-<policy>)")
    aws_backup.add_argument("--kms-key-arn", help="KMS key of the vault")
    aws_backup.add_argument("--iam-role-arn", help="role AWS Backup assumes")
    aws_backup.add_argument("--continuous", action="store_true", help="continuous backup (PITR)")
    aws_backup.add_argument("--cold-storage-after-days", type=int)
    aws_backup.add_argument("--lock-min-days", dest="lock_min", type=int, help="Vault Lock minimum")
    aws_backup.add_argument("--lock-max-days", dest="lock_max", type=int, help="Vault Lock maximum")
    aws_backup.add_argument(
        "--lock-changeable-for-days",
        type=int,
        help="COMPLIANCE MODE after this many days: the lock can then never be removed",
    )
    iam = kinds.add_parser(
        "iam",
        parents=[policy_only],
        help="least-privilege IAM policy document",
        description="Export the least-privilege IAM policy document of the workflows.",
    )
    iam.add_argument(
        "--workflow",
        action="append",
        choices=["backup", "prune", "verify", "restore-test", "holds", "enforce"],
        help="only these workflows (repeatable; default: all): holds = place/release legal "
        "holds, enforce = verify --enforce (on top of verify)",
    )
    iam.add_argument("--account-id", help="account id in ARNs (default: *)")
    iam.add_argument(
        "--holds",
        action="store_true",
        help="the deny statements that stop deletion of held RDS snapshots (install in an SCP "
        "or permissions boundary) instead of the workflows' policy",
    )
    iam.add_argument(
        "--release-role-arn",
        action="append",
        metavar="ARN",
        help="with --holds: a role that may still remove the hold tag (repeatable)",
    )
    iam.add_argument(
        "--account",
        choices=["production", "backup"],
        help="whose document: the targets' account (default), or the backup account of tiers "
        "with an 'account' role (then --account-id is production's, the account copied from)",
    )
    kinds.add_parser(
        "lifecycle",
        parents=[policy_only],
        help="S3 lifecycle rules from the retention",
        description="Export S3 lifecycle configurations, per bucket, from the retention.",
    )
    scheduler = kinds.add_parser(
        "scheduler",
        parents=[policy_only],
        help="EventBridge Scheduler schedules for the Lambda handler",
        description="Export EventBridge Scheduler schedules that run the Lambda handler.",
    )
    scheduler.add_argument("--lambda-arn", required=True)
    scheduler.add_argument("--role-arn", required=True, help="role the scheduler assumes")
    scheduler.add_argument("--policy-url", required=True, help="s3://bucket/key of the policy")
    scheduler.add_argument("--apply-prune", action="store_true", help="the prune run deletes")
    cfn = kinds.add_parser(
        "cloudformation",
        parents=[policy_only],
        help="one CloudFormation template: Lambda, Scheduler, Step Functions, IAM, SNS",
        description="Export one CloudFormation template that runs the policy on AWS: the Lambda "
        "function, EventBridge schedules, the restore-test state machine, IAM roles and SNS.",
    )
    cfn.add_argument(
        "--format", choices=["yaml", "json"], default="yaml", help="template format (yaml)"
    )
    cfn.add_argument(
        "--poll-seconds", type=int, default=60, help="seconds between polls of a restore (60)"
    )
    cfn.add_argument(
        "--max-polls", type=int, default=240, help="polls before a restore times out (240)"
    )
    cfn.add_argument("--lock-min-days", dest="lock_min", type=int, help="Vault Lock minimum")
    cfn.add_argument("--lock-max-days", dest="lock_max", type=int, help="Vault Lock maximum")
    cfn.add_argument(
        "--lock-changeable-for-days",
        type=int,
        help="COMPLIANCE MODE after this many days: the lock can then never be removed",
    )
    targets = sub.add_parser(
        "targets",
        parents=[with_aws],
        help="list the policy's targets and what a selector finds",
        description="List the policy's targets, and what its selectors (or one given here) find.",
    )
    targets.add_argument("--tag", action="append", metavar="KEY=VALUE", help="selector tag")
    targets.add_argument(
        "--kind",
        action="append",
        choices=["rds-instance", "aurora-cluster", "ec2-instance", "ebs-volume", "s3-bucket"],
    )
    targets.add_argument("--name", metavar="GLOB", help="selector name pattern")
    targets.add_argument("--in-region", action="append", metavar="REGION", help="search region")
    targets.add_argument(
        "--unprotected", action="store_true", help="also list resources nothing covers"
    )
    return {"export": _export, "targets": _targets}
