"""The web page in a real browser (Debian's headless Chromium driven by Selenium through
chromedriver) against `mmagent serve` on a scripted model: type a message with an image, watch
the tool call and the streamed answer, see the image the tool made, approve a call, rate a turn
and find the rating in the feedback store. Skipped when no Chromium is installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmagent.agent import ScriptedChatModel
from serve_fixtures import served_agent

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1200,900"]

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
                                reason="no chromium/chromedriver (apt-get install chromium chromium-driver)")


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    except Exception as err:  # noqa: BLE001 - a browser that will not start here is a skip, not a failure of the page
        pytest.skip(f"chromium did not start: {type(err).__name__}: {str(err).splitlines()[0]}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_chat_with_an_image_tool_calls_approval_and_thumbs_up(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from mmagent.feedback import FeedbackStore

    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), "green").save(photo)
    model = ScriptedChatModel([
        '<tool_call>{"name": "resize_image", "arguments": {"image": "image_1", "width": 20}}</tool_call>',
        "I resized your photo to 20 pixels wide.",
        '<tool_call>{"name": "crop_image", "arguments": {"image": "image_2", "box": {"x0": 0, "y0": 0, "x1": 10, "y1": 10}}}</tool_call>',
        "Cropped after your approval.",
    ])
    with served_agent(tmp_path / "srv", model, tools=["resize_image", "crop_image"], approval=["crop_image"]) as (url, agent):
        browser.get(url + "/")
        wait = WebDriverWait(browser, 20)
        wait.until(EC.text_to_be_present_in_element((By.ID, "model"), "scripted"))
        browser.find_element(By.ID, "image").send_keys(str(photo))
        browser.find_element(By.ID, "prompt").send_keys("Make this smaller please")
        browser.find_element(By.ID, "send").click()

        answer = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".assistant .answer")))
        assert answer.text == "I resized your photo to 20 pixels wide."
        tool = browser.find_element(By.CSS_SELECTOR, ".assistant .tool[data-tool='resize_image']")
        assert "resize_image(image=\"image_1\", width=20)" in tool.text and '"width":20' in tool.text
        made = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".assistant img.art")))
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", made) == 20)
        assert browser.find_element(By.CSS_SELECTOR, ".user img.thumb")  # the upload, shown with the message

        browser.find_element(By.CSS_SELECTOR, ".assistant .rate-up").click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".assistant .feedback").get_attribute("data-recorded") == "up")
        turn_id = agent.result(agent_session(browser)).turn_id
        rows = FeedbackStore(agent.log.path).for_turn(turn_id)
        assert [(r.rating, r.source) for r in rows] == [("up", "http")]

        browser.find_element(By.ID, "prompt").send_keys("Now crop it")
        browser.find_element(By.ID, "send").click()
        approve = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".approval button.approve")))
        assert "crop_image" in browser.find_element(By.CSS_SELECTOR, ".approval").text
        approve.click()
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".msg.assistant:last-child .answer"), "Cropped after your approval."))
        assert len(browser.find_elements(By.CSS_SELECTOR, ".msg.assistant:last-child img.art")) == 1
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] if hasattr(browser, "get_log") else []
        assert errors == []


def agent_session(browser) -> str:
    return browser.find_element("id", "session").text.removeprefix("session ")
