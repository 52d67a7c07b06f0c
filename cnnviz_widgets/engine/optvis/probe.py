"""What ``precision="auto"`` measures for optimization: short runs in both precisions.

A reduced precision changes an optimization's gradients (on VGG16 the bfloat16 input
gradient has cosine 0.91 to float32's), yet the optimization can reach the same objective
as fast in steps, and each step is faster.  So the choice is judged by the result, not by
the gradient: :func:`probe_optimization` takes :data:`PROBE_STEPS` steps of the same
objective from the same start in float32 and in the reduced precision, and a second time in
float32 with other random transforms (how far float32 strays from itself by chance),
interleaved (each step of one followed by the same step of the others, the order reversed
every step), times every step, and scores the start and the final images with the float32
model (the objective on the images themselves, without the random transforms of the
steps).  :func:`~cnnviz_widgets.engine.model.precision.choose_precision` then keeps the
reduced precision when it is at least ``MIN_SPEEDUP`` times faster and its objective is
within :data:`PROBE_TOLERANCE` of float32's.

The probe's objective is the first class's logit (a model without classes: the first
channel of its last spatial layer), with the default preset, at the batch and image size
of the run that asked; its compiled steps are the ones such a run then uses.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model import budget
from ..model.internals import Tap, class_count
from ..model.loading import LoadedModel
from ..model.precision import register_optimization_probe
from ..model.scoring import Net, default_cam_layer
from . import objectives as obj

__all__ = ["PROBE_STEPS", "PROBE_TOLERANCE", "ProbeOutcome", "probe_optimization"]

PROBE_STEPS = 32
"""Steps the probe takes in each precision (the first, which traces the step, and the
second are not timed).  An optimization climbs slowly over its first ~16 steps (Adam's
warm-up, the Fourier image): a shorter probe would compare noise."""

PROBE_TOLERANCE = 0.2
"""The reduced run's objective may fall below the lower of the two float32 runs' by at
most this fraction of float32's progress from the start, all scored in float32.  Short
runs diverge a little even when longer ones end at the same objective, and two float32
runs whose transforms differ diverge too (measured figures: docs/benchmarks.md); a reduced
precision that loses more than that would need more steps than its speed gains back."""

_UNTIMED = 2


@dataclass(frozen=True)
class ProbeOutcome:
    """What one probe measured.

    Attributes:
        reduced: the precision probed against float32.
        speedup: median over the timed steps of float32's step time over the reduced one's
            (paired step by step).
        start: the objective of the starting image, scored in float32.
        float32: the objective after the probe's steps in float32, scored in float32.
        objective: the objective after the same steps in ``reduced``, scored in float32.
        steps: the steps taken in each precision.
        float32_again: the objective of a second float32 run from the same start whose
            random transforms differ (how much float32 varies by chance alone); ``None``
            when not run.
    """

    reduced: str
    speedup: float
    start: float
    float32: float
    objective: float
    steps: int
    float32_again: float | None = None

    @property
    def shortfall(self) -> float:
        """How far the reduced run fell short of float32's objective, as a fraction of
        float32's progress: below the lower of the float32 runs (two runs differing only in
        their random transforms differ too), 0 or less when it reached it, ``inf`` when
        float32 made no progress and the reduced run did worse."""
        runs = [v for v in (self.float32, self.float32_again) if v is not None]
        gained = max(runs) - self.start
        gap = min(runs) - self.objective
        if gained <= 0:
            return 0.0 if gap <= 0 else float("inf")
        return gap / gained

    @property
    def matches(self) -> bool:
        """The reduced run reached float32's objective within :data:`PROBE_TOLERANCE`."""
        return bool(np.isfinite(self.objective)) and self.shortfall <= PROBE_TOLERANCE


def _probe_objective(loaded: LoadedModel):
    """``(objective, float32 scorer of display images)``: the first class's logit, or
    (a model without classes) the mean of the first channel of its last spatial layer."""
    try:
        class_count(loaded.model)
    except CnnvizError:
        path = default_cam_layer(loaded)
        net = Net(loaded, [Tap(path, "output")], scores=False)

        def channel(images):
            acts, _, _ = net(images)
            return float(tf.reduce_mean(tf.cast(acts[0], tf.float32)[..., 0]))

        return obj.channel(path, 0), channel
    net = Net(loaded, [])

    def logit(images):
        _, logits, _ = net(images)
        return float(tf.reduce_mean(logits[:, 0]))

    return obj.class_logit(0), logit


def _started(run):
    """The run's compiled step, taken for the probe (another if a run is using it)."""
    c = run._c
    if not c.busy.acquire(blocking=False):
        c = run._fresh()
        c.busy.acquire()
    return c


def probe_optimization(
    loaded: LoadedModel, reduced: str, batch: int = 1, size: int | None = None
) -> ProbeOutcome:
    """Run :data:`PROBE_STEPS` optimization steps in float32 and in ``reduced`` from the
    same start, interleaved and timed, and score both results in float32 (see the module).

    Args:
        loaded: the model (float32).
        reduced: ``"bfloat16"`` or ``"float16"``.
        batch: images optimized at once.
        size: the image size, for models that take any size.

    Returns:
        A :class:`ProbeOutcome`.
    """
    from .run import optimize

    objective, score = _probe_objective(loaded)
    kwargs = dict(steps=PROBE_STEPS, batch=int(batch), seed=0)
    if size is not None:
        kwargs["size"] = int(size)
    with budget.long_runs_to(lambda _message: None):  # a probe is short: no "long run" warning
        runs = {p: optimize(loaded, objective, precision=p, **kwargs) for p in ("float32", reduced)}
    steps = {p: _started(r) for p, r in runs.items()}
    try:
        run = runs["float32"]
        weights = tf.constant(run._weights)
        full = steps["float32"]
        rng = np.random.default_rng(run.seed)
        init = full.param.init(rng, full.batch, full.h, full.w, full.c)
        for c in steps.values():
            c.reset(init, run.lr)
        start = score(full.render())
        times: dict[str, list[float]] = {p: [] for p in steps}
        for k in range(PROBE_STEPS):
            seed = tf.constant([run.seed, k], tf.int32)
            order = list(steps) if k % 2 == 0 else list(steps)[::-1]
            for p in order:
                times[p].append(step_seconds(p, steps[p], runs[p]._values, weights, seed))
        scored = {p: score(c.render()) for p, c in steps.items()}
        # float32 once more from the same start with other random transforms (the same
        # compiled step, after the timed runs): how far float32 strays from itself
        full.reset(init, run.lr)
        for k in range(PROBE_STEPS):
            seed = tf.constant([run.seed + 1, k], tf.int32)
            step_seconds("float32", full, run._values, weights, seed)
        again = score(full.render())
    finally:
        for c in steps.values():
            c.busy.release()
    ratios = [
        a / max(b, 1e-9)
        for a, b in zip(times["float32"][_UNTIMED:], times[reduced][_UNTIMED:], strict=True)
    ]
    return ProbeOutcome(
        reduced=reduced,
        speedup=float(statistics.median(ratios)) if ratios else 0.0,
        start=start,
        float32=scored["float32"],
        objective=scored[reduced],
        steps=PROBE_STEPS,
        float32_again=again,
    )


def step_seconds(precision: str, step, values, weights, seed) -> float:
    """Take one step of the compiled ``step`` (in ``precision``) and return its seconds
    (tests replace this to simulate another machine's timings)."""
    t0 = time.perf_counter()
    _, ok = step.step(values, weights, seed)
    bool(ok)  # waits for the step
    return time.perf_counter() - t0


register_optimization_probe(probe_optimization, PROBE_TOLERANCE)
