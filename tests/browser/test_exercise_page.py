"""An exercise in a real JupyterLab page: a right answer shows a green ✓, a slip an orange
hint, an empty answer a gray "no answer yet", drawn by the checks' HTML in the notebook.

Exercise 2 is opened with task 2a answered as the solution does, task 2b with the sums
before the activation (a usual slip) and task 2c left empty; the "Compare with the model"
cell then shows the model's value for task 2a only.  Set CNNVIZ_SCREENSHOTS=1 to
also write docs/exercise_checks.png.
"""

from __future__ import annotations

import os

import nbformat
import numpy as np
import pytest
from PIL import Image

from .pages import REPO, open_and_run

NAME = "02_one_convolution.ipynb"
SLIP = """
window = image[24 - 3 : 24 + 4, 40 - 3 : 40 + 4, :]
outputs = [float((window * kernel[:, :, :, f]).sum() + bias[f]) for f in (7, 8, 9)]  # sums
outputs
"""


@pytest.fixture(scope="module")
def exercise_page(lab, browser_context):
    url, root = lab
    exercise = nbformat.read(REPO / "notebooks" / "exercises" / NAME, as_version=4)
    solution = nbformat.read(REPO / "teacher" / "solutions" / NAME, as_version=4)
    answers = [i for i, c in enumerate(exercise.cells) if "answer" in c.metadata.get("tags", [])]
    assert len(answers) == 3
    exercise.cells[answers[0]].source = solution.cells[answers[0]].source  # right
    exercise.cells[answers[1]].source = SLIP.strip()  # the activation forgotten
    nbformat.write(exercise, root / NAME)  # the third stays empty
    page = open_and_run(browser_context, url, NAME, "exercise", ".cnnviz-check-empty")
    return page, answers


def test_a_right_answer_a_slip_and_no_answer(exercise_page):
    page, _ = exercise_page
    checks = page.locator(".cnnviz-check")
    assert checks.count() == 3
    states = [checks.nth(i).get_attribute("data-check") for i in range(3)]
    assert states == ["pass", "hint", "empty"]
    assert "✓" in checks.nth(0).inner_text() and "Right" in checks.nth(0).inner_text()
    hint = checks.nth(1).inner_text()
    assert "Hint" in hint and "sum before the activation function" in hint
    # "Compare with the model" shows the model's value for the task answered right only
    compare = page.locator(".jp-OutputArea-output", has_text="task 2a:").inner_text()
    assert "task 2a: sum of products + bias" in compare
    assert compare.count("not shown until its check passes") == 2  # 2b (a slip), 2c (empty)
    colour = checks.nth(0).evaluate("e => getComputedStyle(e).borderLeftColor")
    assert colour == "rgb(26, 127, 55)"  # green
    colour = checks.nth(1).evaluate("e => getComputedStyle(e).borderLeftColor")
    assert colour == "rgb(179, 89, 0)"  # orange


def test_screenshot(exercise_page, tmp_path):
    page, answers = exercise_page
    cells = page.locator(".jp-Notebook .jp-Cell")
    # the notebook scrolls inside its panel: bring task 2a's answer to the top of it
    cells.nth(answers[0]).evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    first = cells.nth(answers[0]).bounding_box()  # task 2a's answer
    last = cells.nth(answers[1] + 1).bounding_box()  # task 2b's check
    bottom = min(last["y"] + last["height"], page.viewport_size["height"])
    clip = dict(x=first["x"], y=first["y"], width=first["width"], height=bottom - first["y"])
    page.mouse.move(0, 0)
    out_dirs = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    for folder in out_dirs:
        page.screenshot(path=str(folder / "exercise_checks.png"), clip=clip)
    shot = np.asarray(Image.open(tmp_path / "exercise_checks.png"))
    assert shot.shape[0] > 200 and shot[..., :3].std() > 10
