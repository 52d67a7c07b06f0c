"""The explainer's work in the background: a new image's predictions, heatmap and
feature maps on a large model, and a long method's explanation, each a
:class:`~cnnviz_widgets.engine.jobs.Job` on the panel's :class:`~.runner.Runner`
(progress, Stop), mixed into :class:`~.image_explainer.ImageExplainer`."""

from __future__ import annotations

import time
from typing import Any

from ..engine import Attribution, Job
from .common import esc
from .runner import duration


class BackgroundWork:
    """The background half of :class:`~.image_explainer.ImageExplainer` (a mixin: it uses
    the panel's runner, run bar, settings and drawing methods)."""

    @staticmethod
    def _run_steps(steps: Any, report: Any = None, stopping: Any = None) -> list[BaseException]:
        """Each step on its own: a method that fails leaves the others shown.  With
        ``report`` and ``stopping`` (a job's), progress is reported and Stop ends it
        between steps."""
        errors: list[BaseException] = []
        for k, step in enumerate(steps):
            if report is not None:
                report(k, len(steps))
            try:
                step()
            except Exception as err:
                errors.append(err)
            if stopping is not None and stopping():
                break
        return errors

    def _image_in_background(self, steps: Any) -> None:
        """A new image on a large model: predictions, heatmap and feature maps in the
        background (the first image also compiles the model's functions)."""
        self.busy = True
        self.run_bar.start(len(steps), "working… predictions, heatmap, feature maps")
        start = time.perf_counter()
        job = Job(lambda report, stopping: self._run_steps(steps, report, stopping), "image")

        def paint(p: Any, rate: float, text: bool) -> None:
            what = ("predictions", "heatmap", "feature maps")[min(p.done, 2)]
            seconds = duration(time.perf_counter() - start)
            self.status.value = f"working… {what} ({p.done + 1} of {p.total}) · {seconds}"

        def finish(errors: list[BaseException] | None, error: BaseException | None) -> None:
            self.busy = False
            if job.stopped:
                self.run_bar.end(self.progress.value, "warning", "stopped")
                return
            errors = [*(errors or []), *([error] if error is not None else [])]
            if errors:
                self.messages.show_error(errors[0])
            text = self.status.value if self.attribution is not None else ""
            self.run_bar.end(len(steps), "danger" if errors else "success", text)

        self._job = "image"
        self.runner.run_job(job, paint=paint, finish=finish, after=self._after_background)

    def _explain_in_background(self, method: str, target: int | None) -> None:
        image = self.image
        total, unit, units = self.settings.steps(method)
        self.busy = True
        self.run_bar.start(total, f"working… {esc(self.settings.what(method))}")
        start = time.perf_counter()
        job = self._attribution_job(method, target, stoppable=True)

        def finish(result: Attribution | None, error: BaseException | None) -> None:
            self.busy = False
            if (error is None and result is None) or self.image is not image:
                shown = "the picture shown is the previous one"
                self.run_bar.end(self.progress.value, "warning", f"stopped; {shown}")
            elif error is not None:
                self.run_bar.end(self.progress.value, "danger", "failed: see the message")
                self.attribution = None
                self.overlay.show_plain(self.image)
                self.messages.show_error(error)
            else:
                self.run_bar.end(total, "success", "")
                self._show_result(result, time.perf_counter() - start)

        self._job = "explain"
        self.runner.run_job(job, finish=finish, after=self._after_background, unit=(unit, units))
