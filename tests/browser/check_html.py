#!/usr/bin/env python3
"""Opens an smtpaudit HTML report in headless Chromium through WebDriver (selenium) and prints
what a person would see, as JSON, for tests/html.rs to check:

    check_html.py REPORT.html SCREENSHOT.png FILTER_TEXT

Exit 77 when the browser stack (chromium, chromedriver, selenium) is missing, so the caller
can say why it skipped.
"""
import json
import os
import shutil
import sys

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:
    print("selenium is not installed", file=sys.stderr)
    sys.exit(77)


def find(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def main():
    report, screenshot, filter_text = sys.argv[1], sys.argv[2], sys.argv[3]
    browser = find("chromium", "chromium-browser", "google-chrome")
    driver_bin = find("chromedriver")
    if not browser or not driver_bin:
        print("chromium or chromedriver is not installed", file=sys.stderr)
        sys.exit(77)
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in ("--headless=new", "--disable-gpu", "--window-size=1400,1000",
              "--disable-dev-shm-usage", "--no-first-run"):
        opts.add_argument(a)
    if os.geteuid() == 0:
        opts.add_argument("--no-sandbox")
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    try:
        driver.get("file://" + os.path.abspath(report))
        out = {}
        # A script smuggled in through a banner or EHLO name would have opened a dialog.
        try:
            alert = driver.switch_to.alert
            out["alert"] = alert.text
            alert.dismiss()
        except NoAlertPresentException:
            out["alert"] = None
        out["title"] = driver.title
        out["problems_text"] = driver.find_element(By.ID, "problems").text
        out["servers_text"] = (driver.find_elements(By.ID, "servers") or [None])[0].text \
            if driver.find_elements(By.ID, "servers") else ""
        out["timeline_svgs"] = len(driver.find_elements(By.CSS_SELECTOR, "#timeline svg"))
        out["rows_before"] = len(driver.find_elements(By.CSS_SELECTOR, "#flow-rows tr"))
        out["table_text"] = driver.find_element(By.ID, "flow-table").text
        # The page's own two scripts (data and code) and no image: markup from the wire
        # would add elements.
        out["scripts"] = driver.execute_script("return document.scripts.length")
        out["images"] = driver.execute_script("return document.images.length")
        out["external_resources"] = driver.execute_script(
            "return performance.getEntriesByType('resource').map(function(e){return e.name})")
        box = driver.find_element(By.ID, "filter")
        box.send_keys(filter_text)
        out["rows_after"] = len(driver.find_elements(By.CSS_SELECTOR, "#flow-rows tr"))
        out["shown"] = driver.find_element(By.ID, "shown").text
        out["rows_after_text"] = driver.find_element(By.ID, "flow-rows").text
        driver.save_screenshot(screenshot)
        out["screenshot_bytes"] = os.path.getsize(screenshot)
        box.clear()
        box.send_keys("no-such-flow-anywhere")
        out["rows_nomatch"] = len(driver.find_elements(By.CSS_SELECTOR, "#flow-rows tr"))
        out["console_errors"] = [
            e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"
        ] if hasattr(driver, "get_log") else []
        print(json.dumps(out))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
