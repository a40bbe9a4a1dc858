"""The dashboard (/ui/ on --http-port) in a real browser: Debian's Chromium driven by Playwright.

A server with real jobs: the queues page shows live counts; a dead job is found by filtering by
state, opened, retried with the button, and seen to complete (a worker runs it); pause from the
page holds a queue. Screenshots go to a temporary folder, or to JOBQ_SCREENSHOTS
(`JOBQ_SCREENSHOTS=docs/img .venv/bin/pytest tests/e2e/test_dashboard.py` makes the docs' ones).

Chromium comes from Debian's `chromium` package (.ci/run installs it); elsewhere the test is
skipped unless JOBQ_REQUIRE_CHROMIUM=1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright, expect
from redis.asyncio import Redis

from jobqueue import AsyncClient, JobContext, NonRetryableError, Worker
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("JOBQ_REQUIRE_CHROMIUM") != "1",
    reason="Chromium is not installed (apt-get install chromium)",
)
WAIT_MS = 15_000


@pytest.fixture
async def served(redis: Redis, settings: ServerSettings) -> AsyncIterator[App]:
    chosen = settings.model_copy(update={"http_port": 0})
    running = await start_app(chosen, Store(redis, store_config(chosen)))
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def page(served: App) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    async with async_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            opened = await browser.new_page(viewport={"width": 1280, "height": 720})
            opened.set_default_timeout(WAIT_MS)
            yield opened
        finally:
            await browser.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("JOBQ_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_an_operator_finds_a_dead_job_retries_it_and_sees_it_complete(
    served: App, page: Page, screenshots: Path
) -> None:
    fixed = asyncio.Event()  # the bug is fixed: the second attempt succeeds

    async def send(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        if not fixed.is_set():
            raise NonRetryableError("smtp: 550 mailbox unavailable")
        return {"sent": True}

    target = f"127.0.0.1:{served.port}"
    worker = Worker(target, handlers={"emails": send})
    running = asyncio.create_task(worker.run())
    try:
        async with AsyncClient(target) as client:
            dead = await client.enqueue("emails", {"to": "ops@example.com"}, max_attempts=1)
            assert (await client.wait(dead.job_id, timeout=10)).state.value == "dead"
            await client.create_queue("reports", partitions=3)  # its jobs over three partitions
            for n in range(3):
                await client.enqueue("reports", {"month": n}, delay=3600)
            await client.enqueue("images", {"imageUrl": "https://example.com/cat.png"})

        base = f"http://127.0.0.1:{served.http_port}"
        await page.goto(f"{base}/ui/")
        emails = page.locator('#queues tr[data-queue="emails"]')
        await expect(emails.locator('td[data-state="dead"]')).to_have_text("1")
        reports = page.locator('#queues tr[data-queue="reports"]')
        await expect(reports.locator('td[data-state="scheduled"]')).to_have_text("3")  # one queue
        await expect(reports).to_contain_text("3 partitions")
        await page.screenshot(path=str(screenshots / "dashboard-queues.png"), full_page=True)

        await emails.get_by_role("link", name="emails").click()
        await page.select_option("#state", "dead")
        row = page.locator(f'#jobs tr[data-job="{dead.job_id}"]')
        await expect(row).to_contain_text("smtp: 550 mailbox unavailable")
        await row.get_by_role("link").click()
        await expect(page.locator("#job-state")).to_have_text("DEAD")
        await expect(page.locator("#errors")).to_contain_text("smtp: 550 mailbox unavailable")
        await page.screenshot(path=str(screenshots / "dashboard-job.png"), full_page=True)

        fixed.set()
        await page.click("#retry")
        await expect(page.locator("#job-state")).to_have_text("COMPLETED")  # followed live to its end
        await expect(page.locator("main")).to_contain_text('"sent": true')

        await page.goto(f"{base}/ui/")
        await page.locator('#queues tr[data-queue="images"]').get_by_role("button", name="Pause").click()
        await expect(page.locator('#queues tr[data-queue="images"]')).to_contain_text("paused")
        async with AsyncClient(target) as client:
            assert (await client.stats("images"))[0].paused
    finally:
        worker.stop(now=True)
        await running


async def test_an_operator_narrows_a_queue_by_metadata_and_enqueue_time(
    served: App, page: Page, screenshots: Path
) -> None:
    async with AsyncClient(f"127.0.0.1:{served.port}") as client:
        acme = [
            (await client.enqueue("reports", {"n": n}, metadata={"customer": "acme"})).job_id
            for n in range(2)
        ]
        other = (await client.enqueue("reports", {"n": 9}, metadata={"customer": "globex"})).job_id

    await page.goto(f"http://127.0.0.1:{served.http_port}/ui/#/queue/reports?state=queued")
    await expect(page.locator("#jobs tbody tr")).to_have_count(3)
    await page.fill('#filters input[name="meta"]', "customer=acme")
    await page.click('#filters button:has-text("Filter")')
    await expect(page.locator("#jobs tbody tr")).to_have_count(2)
    for job_id in acme:
        await expect(page.locator(f'#jobs tr[data-job="{job_id}"]')).to_have_count(1)
    await expect(page.locator(f'#jobs tr[data-job="{other}"]')).to_have_count(0)
    await page.screenshot(path=str(screenshots / "dashboard-filters.png"), full_page=True)

    # Enqueued from a time after every job: none left, and the page says so.
    await page.fill('#filters input[name="from"]', "2999-01-01T00:00:00")
    await page.click('#filters button:has-text("Filter")')
    await expect(page.locator("#jobs")).to_contain_text("No queued job matches.")
    await page.click('#filters button:has-text("Clear")')
    await expect(page.locator("#jobs tbody tr")).to_have_count(3)
