"""Bedrock's control plane for batch inference (the boto3 `bedrock` client's REST-JSON API): Create, Get, List and
StopModelInvocationJob, signed with SigV4 and sent through Portico's upstream client.

The base URL is the operator's `provider_endpoints["bedrock"]` when set (a VPC endpoint, or the simulator, which
serves runtime and control plane on one URL), else `https://bedrock.{region}.amazonaws.com`; it never comes from
the caller, so it is trusted. A job ARN travels in the path: the request is signed over the URL exactly as aiohttp
(yarl) will send it, so the signature matches what arrives.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from yarl import URL

from batch.native.calls import Json, call_json
from portico.errors import InvalidRequest

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget
    from portico.context import Services

SERVICE = "bedrock"
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def region_of(target: ResolvedTarget) -> str:
    region = str(target.settings.get("awsRegion") or "")
    if not REGION.fullmatch(region):
        raise InvalidRequest(f"Invalid awsRegion '{region}' on the virtual key.", param="awsRegion")
    return region


@dataclass(frozen=True)
class BedrockControl:
    services: Services
    target: ResolvedTarget

    def _base(self) -> str:
        configured = self.services.settings.provider_endpoints.get(self.target.provider)
        return (configured or f"https://bedrock.{region_of(self.target)}.amazonaws.com").rstrip("/")

    def _signed(self, method: str, url: str, payload: bytes) -> dict[str, str]:
        secrets = self.target.secrets
        credentials = Credentials(
            str(secrets.get("awsAccessKeyId", "")),
            str(secrets.get("awsSecretAccessKey", "")),
            secrets.get("awsSessionToken") or None,
        )
        headers = {"content-type": "application/json", "accept": "application/json"}
        request = AWSRequest(method=method, url=url, data=payload, headers=headers)
        SigV4Auth(credentials, SERVICE, region_of(self.target)).add_auth(request)
        return dict(request.headers.items())

    async def _call(self, method: str, path: str, body: Json | None = None) -> Json:
        url = str(URL(self._base() + path))
        payload = b"" if body is None else json.dumps(body).encode()
        # The control-plane URL comes from configuration, whatever the virtual key's own custom host says.
        target = dataclasses.replace(self.target, trusted=True)
        headers = self._signed(method, url, payload)
        return await call_json(self.services, target, method, url, headers=headers, data=payload or None)

    async def create(self, body: Json) -> str:
        return str((await self._call("POST", "/model-invocation-job", body))["jobArn"])

    async def get(self, job_arn: str) -> Json:
        return await self._call("GET", f"/model-invocation-job/{quote(job_arn, safe='')}")

    async def stop(self, job_arn: str) -> None:
        await self._call("POST", f"/model-invocation-job/{quote(job_arn, safe='')}/stop")

    async def find(self, job_name: str, token: str) -> str | None:
        """The ARN of the job named `job_name` (names are unique per account and region) that was created with
        `token`, if there is one: a caller-chosen name may belong to another batch's job."""
        listing = await self._call("GET", f"/model-invocation-jobs?nameContains={quote(job_name, safe='')}")
        for summary in listing.get("invocationJobSummaries") or []:
            if not isinstance(summary, dict) or summary.get("jobName") != job_name:
                continue
            if summary.get("clientRequestToken") in (None, token):
                return str(summary["jobArn"])
        return None
