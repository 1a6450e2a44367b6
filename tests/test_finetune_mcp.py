"""Fine-tuning over MCP: the `finetune` toolset, the job and its events as resources, and `wait_for_job` following a
fine-tune to its end with progress (steps done of total), in both protocol eras."""

from __future__ import annotations

import asyncio
import json

import pytest
from mcp_types import TextResourceContents

from tests.support.finetune import GPT, TuningStack, training_file, tuning
from tests.support.mcp_jobs import MODES, PATIENCE_SECONDS, ProgressSeen, connect

__all__ = ["tuning"]

TOOLS = {
    "fine_tuning_jobs_create",
    "fine_tuning_jobs_list",
    "fine_tuning_jobs_retrieve",
    "fine_tuning_jobs_cancel",
    "fine_tuning_jobs_events",
    "fine_tuning_jobs_checkpoints",
    "wait_for_job",
}


@pytest.mark.parametrize("protocol", list(MODES))
async def test_wait_for_job_follows_a_fine_tune_and_its_resources_read(tuning: TuningStack, protocol: str) -> None:
    client = tuning.client("openai")
    source = training_file(client)
    seen = ProgressSeen()
    async with connect(tuning.portico, tuning.portico.admin_key, protocol) as mcp:
        assert {tool.name for tool in (await mcp.list_tools()).tools} >= TOOLS
        arguments = {
            "model": GPT,
            "training_file": source,
            "suffix": "mcp",
            "route": {"virtual_key": tuning.keys["openai"]},
        }
        created = (await mcp.call_tool("fine_tuning_jobs_create", arguments)).structured_content
        assert created is not None and created["status"] == "validating_files", created
        waiting = {"kind": "fine_tuning_jobs", "id": created["id"], "timeout_seconds": 120}
        async with asyncio.timeout(PATIENCE_SECONDS * 2):
            result = await mcp.call_tool("wait_for_job", waiting, progress_callback=seen)
        outcome = result.structured_content
        assert outcome is not None and (outcome["status"], outcome["finished"]) == ("succeeded", True), outcome
        assert outcome["job"]["fine_tuned_model"].startswith(f"ft:{GPT}:portico-sim:mcp:")

        [job] = (await mcp.read_resource(f"portico://fine_tuning_jobs/{created['id']}")).contents
        assert isinstance(job, TextResourceContents) and json.loads(job.text)["status"] == "succeeded"
        [events] = (await mcp.read_resource(f"portico://fine_tuning_jobs/{created['id']}/events")).contents
        assert isinstance(events, TextResourceContents)
        assert json.loads(events.text)["data"][0]["message"] == "The job has successfully completed"
    progress = [value for value, _, _ in seen.values]
    assert progress == sorted(set(progress)), "progress only grows"
