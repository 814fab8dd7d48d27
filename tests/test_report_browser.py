"""`seqctl report` and the `seqctl serve` pages in a real browser: headless Chromium with no
name resolution, screenshots at desktop and phone width, and every request recorded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser import DESKTOP, PAGE_LOAD_SECONDS, PHONE, Browser, need_browser, png_size
from tests.conftest import ROOT
from tests.test_analytics import CONTACTS
from tests.test_server import sent, server  # noqa: F401  (fixtures)

SEQUENCE = "cold-saas-intro"
BACKGROUND = "rgb(245, 247, 250)"        # --bg of seqctl/data/page.css
ACCENT = "rgb(47, 111, 222)"             # --accent


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, chromedriver = need_browser()
    instance = Browser(chromium, chromedriver, tmp_path_factory.mktemp("chromium-profile"))
    yield instance
    instance.quit()


def _seqctl(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "seqctl", *args], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """The demo's data (`seqctl demo --keep`), its report and its `stats --json`."""
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCTL_")}
    env["TMPDIR"] = str(folder)
    _seqctl(env, "demo", "--keep")
    [demo] = folder.glob("seqctl-demo-*")
    env["SEQCTL_HOME"] = str(demo / "home")
    report = folder / "report.html"
    _seqctl({**env, "SEQCTL_NOW": "2026-03-23T17:00:00Z"}, "report", "-o", str(report))
    stats = json.loads(_seqctl(env, "stats", SEQUENCE, "--json").stdout)
    return report, stats


def _offline(urls: list[str]) -> list[str]:
    return [url for url in urls if not url.startswith(("file://", "data:"))]


def test_the_report_renders_offline_with_the_numbers_of_stats_and_svg_charts(
        browser, demo_report, tmp_path):
    report, stats = demo_report
    browser.open(report.as_uri())
    assert _offline(browser.requests()) == []              # asked the network for nothing
    assert browser.js("return document.title") == f"seqctl report: {SEQUENCE}"
    section = f'section[data-sequence="{SEQUENCE}"]'
    assert browser.js(f"return document.querySelector('{section} h2').textContent") == SEQUENCE

    cells = browser.js(f"""
        return [...document.querySelectorAll('{section} table.funnel tbody tr')].map(tr => ({{
            step: tr.dataset.step, variant: tr.dataset.variant,
            metrics: Object.fromEntries([...tr.querySelectorAll('td[data-metric]')]
                .map(td => [td.dataset.metric, td.dataset.value ?? td.textContent.trim()]))}}));
    """)
    expected = [{"step": str(row["step"]), "variant": row["variant"],
                 "metrics": {**{key: str(row[key]) for key in
                                ("sent", "opens", "clicks", "replies", "bounces", "unsubscribes")},
                             "reply_rate": str(row["reply_rate"])}} for row in stats["steps"]]
    assert cells == expected
    assert stats["totals"]["sent"] > 0 and stats["totals"]["replies"] > 0
    totals = browser.js(f"""return Object.fromEntries([...document.querySelectorAll(
        '{section} .kpi[data-total]')].map(k => [k.dataset.total, k.dataset.value]));""")
    for key in ("enrolled", "sent", "replies", "reply_rate", "meetings", "bounces",
                "unsubscribes"):
        assert totals[key] == str(stats["totals"][key])
    verdicts = browser.js(f"return [...document.querySelectorAll('{section} .verdicts li')]"
                          ".map(li => li.textContent.trim())")
    assert verdicts == [f"Step {test['step']}: {test['verdict']}" for test in stats["ab_tests"]]

    # the charts are drawn: inline <svg> elements with a real size on the page
    sizes = browser.js(f"return [...document.querySelectorAll('{section} .chart svg')]"
                       ".map(svg => svg.getBoundingClientRect().width)")
    assert len(sizes) >= 3 and min(sizes) > 100

    desktop = browser.screenshot(tmp_path / "report-desktop.png", DESKTOP)
    assert png_size(desktop)[0] == DESKTOP[0]
    phone = browser.screenshot(tmp_path / "report-phone.png", PHONE, mobile=True)
    assert png_size(phone)[0] == PHONE[0]
    # at phone width the page itself never scrolls sideways (wide tables scroll in their box)
    assert browser.js("return document.documentElement.scrollWidth <= window.innerWidth")
    assert browser.js("return document.querySelector('.kpi').getBoundingClientRect().right "
                      "<= window.innerWidth")
    browser.reset_size()
    assert _offline(browser.requests()) == []
    keep = os.environ.get("SEQCTL_SCREENSHOTS")    # `make screenshots`: docs/report-*.png
    if keep:
        for shot in (desktop, phone):
            shutil.copyfile(shot, Path(keep) / shot.name)


def test_the_request_log_does_see_a_page_that_asks_the_network(browser, tmp_path):
    # the check above can fail: a page with one remote image is caught, though no host resolves
    page = tmp_path / "remote.html"
    page.write_text('<!DOCTYPE html><img src="https://cdn.example.com/pixel.png">')
    browser.open(page.as_uri())
    assert _offline(browser.requests()) == ["https://cdn.example.com/pixel.png"]


def test_the_unsubscribe_pages_share_the_reports_look_and_work(browser, sent, server,  # noqa: F811
                                                               tmp_path):
    db, mail = sent
    browser.open(mail[CONTACTS[0]]["unsubscribe"])
    assert browser.js("return document.querySelector('h1').textContent") == "Unsubscribe"
    style = browser.js("""const body = getComputedStyle(document.body);
        const button = getComputedStyle(document.querySelector('button'));
        return [body.backgroundColor, button.backgroundColor,
                document.querySelector('main .card') !== null];""")
    assert style == [BACKGROUND, ACCENT, True]
    assert png_size(browser.screenshot(tmp_path / "unsubscribe-phone.png", PHONE,
                                       mobile=True))[0] == PHONE[0]
    browser.reset_size()
    browser.driver.find_element("css selector", "button[type=submit]").click()
    WebDriverWait(browser.driver, PAGE_LOAD_SECONDS).until(
        lambda driver: driver.title == "Unsubscribed")      # the POST's answer has loaded
    assert browser.js("return document.querySelector('h1').textContent") == "Unsubscribed"
    assert browser.js("return getComputedStyle(document.body).backgroundColor") == BACKGROUND
    browser.screenshot(tmp_path / "unsubscribed-desktop.png", DESKTOP)
    browser.reset_size()
    assert all(url.startswith(server) for url in browser.requests())
    assert db.execute("SELECT reason FROM suppressions WHERE email = ?",
                      [CONTACTS[0]]).fetchone() is not None
