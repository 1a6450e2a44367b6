"""The two things every Bedrock job (batch inference, model customization) needs before it can be created: the IAM
role Bedrock assumes, and an S3 bucket to stage data in. Checked at create time, each error naming its field."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from batch.native import s3
from gateway.job_options import ProviderJobRequest
from portico.errors import InvalidRequest

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget

ROLE_ARN = re.compile(r"arn:aws(-[^:]+)?:iam::\d{12}:role/.+")
BUCKET_PARAM = "x-portkey-aws-s3-bucket"


def role_arn(request: ProviderJobRequest, target: ResolvedTarget, job: str) -> str:
    """`role_arn` from the body (or provider_options), else the virtual key's awsRoleArn. `job` names the kind of
    job in the message ("batch job", "fine-tuning job")."""
    role = request.provider_param("role_arn") or str(target.settings.get("awsRoleArn") or "")
    if not role:
        raise InvalidRequest(
            f"A Bedrock {job} needs the IAM role Bedrock assumes to read and write S3: send 'role_arn' (or "
            "provider_options.role_arn), or set awsRoleArn on the virtual key.",
            param="role_arn",
            code="missing_role_arn",
        )
    if not ROLE_ARN.fullmatch(role):
        raise InvalidRequest(f"'{role}' is not an IAM role ARN.", param="role_arn", code="invalid_role_arn")
    return role


def staging_bucket(
    request: ProviderJobRequest, target: ResolvedTarget, output: s3.S3Uri | None, job: str, output_param: str
) -> str:
    """portkey_options' bucket, else the virtual key's awsS3Bucket, else the bucket of the s3:// output location."""
    options = request.portkey_options
    bucket = (options.aws_s3_bucket if options else None) or target.settings.get("awsS3Bucket")
    bucket = bucket or (output.bucket if output else None)
    if not bucket:
        raise InvalidRequest(
            f"A Bedrock {job} stages its data in S3: name a bucket in portkey_options '{BUCKET_PARAM}', set "
            f"awsS3Bucket on the virtual key, or send an s3:// '{output_param}'.",
            param=BUCKET_PARAM,
            code="missing_s3_bucket",
        )
    return s3.check_bucket(str(bucket), BUCKET_PARAM)
