"""Headless Chromium (Debian's `chromium` and `chromium-driver`) driven by Selenium, for tests
that look at pages the way a person would.

The browser resolves no host name at all (`--host-resolver-rules`: every host maps to
nothing; only the 127.0.0.1 test server stays reachable), has its background services off,
and records every request a page makes (Chrome's performance log), so a test can assert that
a page asked the network for nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

HOST_RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
PAGE_LOAD_SECONDS = 120
DESKTOP, PHONE = (1280, 900), (390, 844)


def find_browser() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def need_browser() -> tuple[str, str]:
    found = find_browser()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver are missing: scripts/test-services.sh should "
                        "have installed them")
        pytest.skip("chromium and chromium-driver are not installed (run "
                    "scripts/test-services.sh)")
    return found


class Browser:
    def __init__(self, chromium: str, chromedriver: str, profile: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-default-apps", "--hide-scrollbars",
                     "--metrics-recording-only", "--mute-audio",
                     f"--host-resolver-rules={HOST_RULES}", f"--user-data-dir={profile}",
                     f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        # an explicit driver and browser: Selenium Manager is never asked to download one
        service = Service(executable_path=chromedriver)
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
        self.driver.set_script_timeout(PAGE_LOAD_SECONDS)

    def open(self, url: str) -> None:
        self.requests()                    # forget what earlier pages asked for
        self.driver.get(url)

    def requests(self) -> list[str]:
        """URLs requested since the last call (every Network.requestWillBeSent)."""
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def screenshot(self, path: Path, size: tuple[int, int], *, mobile: bool = False) -> Path:
        """A full-page PNG at `size` CSS pixels wide (the viewport grows to the page)."""
        width, height = size
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        full = max(height, int(self.js("return document.documentElement.scrollHeight")))
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {**metrics, "height": full})
        path.write_bytes(self.driver.get_screenshot_as_png())
        return path

    def reset_size(self) -> None:
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def quit(self) -> None:
        self.driver.quit()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])
