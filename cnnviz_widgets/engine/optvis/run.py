"""Activation maximization: synthesize the input a class or a unit responds to most.

The work happens in one compiled step per (model, objective structure, batch, image size,
parameterization, transforms) (:mod:`.step`).  Class and channel indices, term weights, the
learning rate and the random seed are tensor inputs or variables, so changing them never
retraces, and the variables are reused from run to run, so memory stays flat.

A run is an iterator (:class:`Run`) that yields a :class:`Frame` every few steps and can be
stopped between steps (``run.job()`` makes it a :class:`~cnnviz_widgets.engine.jobs.Job`);
:func:`visualize` is the one-call form.
"""

from __future__ import annotations

import atexit
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import fields, replace

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..jobs import Job
from ..model import budget
from ..model.loading import as_loaded
from ..model.outputs import select_output
from ..model.precision import PrecisionChoice, check_precision, decide, model_in
from . import objectives as obj
from . import recipes
from .param import Fourier, Maco, Pixels, Raw, get_param
from .presets import Preset
from .results import Frame, Result, alpha_map, to_uint8
from .settings import check_settings, finite_number, objective_from
from .step import POOL_LOCK, CompiledStep, compiled_step, image_size
from .transforms import Transforms

STUCK_P = 0.01
"""A class image whose class probability is still below this a quarter into its run is
on a plateau: it is started again with more initial noise (once); one still below
``STUCK_P`` at the end is reported in ``Result.stuck``."""

PREVIEW_MAX_FLOPS = 2e9
"""``optimize(preview=True)`` takes its eager first step only when one pass (the batch
times the model's forward FLOPs per image) is at most this: a larger pass costs about
as much as the trace of its step, so an eager first step would show nothing sooner and
add a step to the run (measured: docs/benchmarks.md, "First image and warm-up")."""


def _class_probability_term(objective) -> tuple[int, bool] | None:
    """``(index, is_log)`` of the objective's class (log-)probability term, if any."""
    for i, (_, term) in enumerate(objective.terms):
        if isinstance(term, obj.ClassLogProbability):
            return i, True
        if isinstance(term, obj.ClassProbability):
            return i, False
    return None


class Run:
    """One optimization, as an iterator of :class:`Frame` objects.

    Iterate it (``for frame in run: ...``) to drive it; call :meth:`stop` from anywhere
    (another thread, a button callback) to end it after the current step.  The last frame
    has ``final=True``; :attr:`result` holds the outcome afterwards.
    """

    def __init__(
        self,
        compiled: CompiledStep,
        fresh,
        objective,
        user_terms: int,
        batch: int,
        *,
        steps: int,
        lr: float,
        seed: int,
        every: int,
        precision: PrecisionChoice | None = None,
        recipe: str = "",
        recipe_reason: str = "",
        start=None,
    ):
        self._c = compiled
        self.recipe = recipe
        self.recipe_reason = recipe_reason
        # (seeds, noise, draws) to start from a class-conditional seed, or None: the
        # param's init
        self._start = start
        self.precision = precision or PrecisionChoice("float32", "float32")
        self._fresh = fresh  # makes a step of the same configuration if this one is busy
        self.objective = objective
        self.steps = int(steps)
        self.every = max(1, int(every))
        self.seed = int(seed)
        self.lr = float(lr)
        self._stop = threading.Event()
        self._values = [
            {k: tf.constant(v) for k, v in t.values(batch, compiled.facts).items()}
            for _, t in objective.terms
        ]
        self._weights = np.array([w for w, _ in objective.terms], np.float32)
        self._user = np.zeros(len(objective.terms), np.float32)
        self._user[:user_terms] = self._weights[:user_terms]
        self.result: Result | None = None
        self.settings: dict = {}  # the checked settings (set by optimize)
        self._started = False
        # plateau check: a quarter into the run, for objectives with a class probability
        self._class_p = _class_probability_term(objective)
        self._check = max(16, self.steps // 4) if self.steps >= 32 else None
        self.restarted: list[int] = []
        self.output: str | None = None  # the output the class terms read (set by optimize)
        # a first frame from an eager step while the step is not compiled (set by optimize)
        self.preview = False

    def stop(self) -> None:
        """Ask the run to end after the step in progress (thread-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def job(self) -> Job[Result]:
        """This run as a :class:`~cnnviz_widgets.engine.jobs.Job` (the one protocol of long
        work): one progress per :class:`Frame` (``done`` steps of ``total``, ``item`` the
        frame); ``job.stop()`` ends it after the step in progress and ``job.result`` is the
        :class:`Result`."""

        def work(report, stopping) -> Result:
            for frame in self:
                if stopping():
                    self.stop()
                elif not frame.final:  # the job makes its own final progress
                    report(frame.step, self.steps, item=frame)
            return self.result

        return Job(work, f"optimization of {self.objective!r}")

    def _images(self) -> np.ndarray:
        return to_uint8(self._c.render().numpy())

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise CnnvizError("a Run can be iterated once; start a new one with optimize()")
        self._started = True
        c = self._c
        while not c.busy.acquire(timeout=0.05):
            if not c.warming:  # another run took it since optimize(): make or take another
                c = self._c = self._fresh()
                c.busy.acquire()
                break
        try:
            yield from self._iterate(c)
        finally:
            c.busy.release()

    def _classes(self) -> np.ndarray | None:
        """The class of each image, from the objective's first class term (or None)."""
        for (_, term), values in zip(self.objective.terms, self._values):
            if isinstance(term, obj._ClassTerm):
                return values["index"].numpy()
        return None

    def _init(self, c: CompiledStep, rng: np.random.Generator) -> np.ndarray:
        if self._start is None:
            return c.param.init(rng, c.batch, c.h, c.w, c.c)
        seeds, noise, draws = self._start
        classes = self._classes()
        if draws > 1 and classes is not None and c.logits is not None:
            # the draw the model finds most like its class (forward passes only)
            images = seeds.best_of(
                draws, c.class_log_probabilities, rng, classes, c.batch, c.h, c.w, noise=noise
            )
        else:
            images = seeds.sample(rng, classes, c.batch, c.h, c.w, noise=noise)
        return c.param.from_image(images)

    def _probabilities(self, scores: np.ndarray) -> np.ndarray | None:
        if self._class_p is None:
            return None
        i, is_log = self._class_p
        return np.exp(scores[i]) if is_log else scores[i]

    def _escape(self, c: CompiledStep, scores: np.ndarray) -> None:
        """Restart, with ten times the initial noise (twice the seed's spread), the images
        whose class probability is still below ``STUCK_P``."""
        p = self._probabilities(scores)
        if p is None:
            return
        stuck = ~(p >= STUCK_P)
        if not stuck.any():
            return
        rng = np.random.default_rng([self.seed, 1])
        if self._start is not None:
            seeds, noise, _ = self._start
            images = seeds.sample(rng, self._classes(), c.batch, c.h, c.w, noise=2 * noise)
            fresh = c.param.from_image(images)
        else:
            param = c.param
            if hasattr(param, "init_std"):
                param = replace(param, init_std=10 * param.init_std)
            fresh = param.init(rng, c.batch, c.h, c.w, c.c)
        c.restart(stuck, fresh)
        self.restarted = [int(i) for i in np.flatnonzero(stuck)]

    def _preview(self, c: CompiledStep, init: np.ndarray, weights, t0: float):
        """The first step taken eagerly, before the compiled step is traced (on a new
        model the trace takes several steps' time): a first frame to look at at once.
        Returns its scores if the run was stopped on it (it is then the run's first
        step), else ``None`` with the images back at ``init`` for the compiled run."""
        try:
            scores, ok = c._step(self._values, weights, tf.constant([self.seed, 0], tf.int32))
        except Exception:  # what fails eagerly only (the compiled run reports its own errors)
            ok = False
        if bool(ok):
            s = scores.numpy()
            seconds = time.perf_counter() - t0
            images = self._images()
            yield Frame(
                1, self.steps, images, self._user @ s, self._weights @ s, seconds, preview=True
            )
            if self._stop.is_set():  # stopped on it: the preview is the run's first step
                return s
        c.reset(init, self.lr, self.steps)
        return None

    def _iterate(self, c: CompiledStep) -> Iterator[Frame]:
        rng = np.random.default_rng(self.seed)
        init = self._init(c, rng)
        c.reset(init, self.lr, self.steps)
        weights = tf.constant(self._weights)
        history, totals = [], []
        error = None
        last_scores = None
        t0 = time.perf_counter()
        step = 0
        if self.preview and self.steps > 0 and c.tracing_count() == 0:
            kept = yield from self._preview(c, init, weights, t0)
            if kept is not None:
                history.append(self._user @ kept)
                totals.append(self._weights @ kept)
                step, last_scores = 1, kept
        while step < self.steps and not self._stop.is_set():
            seed = tf.constant([self.seed, step], tf.int32)
            scores, ok = c.step(self._values, weights, seed)
            if not bool(ok):
                error = (
                    f"the objective or its gradients became NaN or infinite at step "
                    f"{step + 1}, so the run stopped; the last good image (the last with a "
                    "finite objective) is kept. Lower the learning rate, or check a custom "
                    "objective for log/sqrt/division of values that can be <= 0"
                )
                break
            s = scores.numpy()
            history.append(self._user @ s)
            totals.append(self._weights @ s)
            step += 1
            last_scores = s
            if step == self._check and step < self.steps:
                self._escape(c, s)
            if step % self.every == 0 and step < self.steps and not self._stop.is_set():
                yield Frame(
                    step,
                    self.steps,
                    self._images(),
                    history[-1],
                    totals[-1],
                    time.perf_counter() - t0,
                )
        seconds = time.perf_counter() - t0
        images = self._images()
        # a run too short for the plateau check is not called stuck
        checked = self._check is not None and last_scores is not None
        final_p = self._probabilities(last_scores) if checked else None
        stuck = [] if final_p is None else [int(i) for i in np.flatnonzero(~(final_p >= STUCK_P))]
        b = c.batch
        hist = np.array(history, np.float32).reshape(-1, b)
        tot = np.array(totals, np.float32).reshape(-1, b)
        self.result = Result(
            images=images,
            history=hist,
            total_history=tot,
            steps=step,
            seconds=seconds,
            stopped=self._stop.is_set() and step < self.steps,
            error=error,
            objective=repr(self.objective),
            alpha=alpha_map(c.evidence.numpy()) if step else None,
            precision=self.precision.precision,
            precision_reason=self.precision.reason,
            recipe=self.recipe,
            recipe_reason=self.recipe_reason,
            restarted=list(self.restarted),
            stuck=stuck,
            output=self.output,
        )
        last = hist[-1] if len(hist) else np.full(b, np.nan, np.float32)
        last_t = tot[-1] if len(tot) else np.full(b, np.nan, np.float32)
        yield Frame(step, self.steps, images, last, last_t, seconds, final=True)


def optimize(
    model,
    objective,
    *,
    preset: str | Preset = "auto",
    steps: int | None = None,
    lr: float | None = None,
    batch: int | None = None,
    seed: int = 0,
    size: int | tuple[int, int] | None = None,
    param: str | Fourier | Pixels | Maco | Raw | None = None,
    transforms: Transforms | None = None,
    tv: float | None = None,
    lp: float | None = None,
    blur: float | None = None,
    every: int = 8,
    precision: str = "auto",
    min_steps: int = 0,
    output=None,
    preview: bool = True,
) -> Run:
    """Prepare an optimization and return it as a :class:`Run` (nothing runs until you
    iterate it).

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        objective: an ``Objective`` (see ``cnnviz_widgets.objectives``), or a class index,
            class name, or list of them (``objectives.class_score``: one image per class).
        preset: ``"auto"`` (default: the model's own recipe -- one registered with
            ``cw.register_recipe``, else the one its metadata declares (the embedded
            robust model: ``"robust"``), else ``"lucid"``; ``result.recipe`` and
            ``result.recipe_reason`` say which and why), ``"lucid"``, ``"robust"``,
            ``"tf-keras-vis"``, ``"keras-vis"``, ``"maco"`` or a ``Preset``.
        steps, lr: override the preset's number of steps and learning rate (Adam's, or
            the ``"l2"`` step size).
        batch: number of images; default: one per target of the objective.
        seed: makes the run repeatable (initial image and random transforms).
        size: the image size, for models that accept any size (default 224).
        param, transforms: override the preset's parameterization and transforms.
        tv, lp, blur: override the preset's regularizer weights (subtracted).
        every: yield a frame every this many steps.
        precision: what the model's passes run in: ``"auto"`` (default: bfloat16 or
            float16 where this hardware runs them measurably faster, else float32; see
            ``cnnviz_widgets.choose_precision``), ``"float32"``, ``"bfloat16"`` or
            ``"float16"``.  The image, its parameterization, Adam's state and the
            objective stay float32; ``run.precision`` and ``result.precision`` say what
            was used and why.
        min_steps: the fewest steps accepted (a panel's run asks for 1).
        output: for a model with several outputs, the one whose class scores the class
            terms read: its name (a dict output's key, or the output layer's name) or
            its index (see :func:`~cnnviz_widgets.select_output`); the class builders
            also take it (``objectives.class_logit(3, output="cls")``).  Channel, neuron
            and layer objectives read layers and need no output.
        preview: when the compiled step for this configuration is not traced yet (a new
            model, objective kind or batch size) and one pass is at most
            ``PREVIEW_MAX_FLOPS`` (small models, whose trace costs several steps), take
            the first step eagerly and yield
            it as a frame with ``preview=True`` before tracing: the first image comes
            without waiting for the trace.  The run then starts again from the same
            image in the compiled step, so its result is the same with or without the
            preview (the objective is evaluated once more: a custom term that counts its
            calls sees one more); stopped on the preview, the run keeps it as its step.
            :func:`visualize`, which shows no frames, leaves it out.

    Returns:
        A :class:`Run`; ``run.settings`` holds the checked settings it uses
        (:func:`check_settings`: steps, lr and the regularizer weights).

    Raises:
        RunTooLargeError: the run's estimated memory (``budget.check_optimize``) exceeds
            what is available; a run estimated to take long warns (``LongRunWarning``).
    """
    loaded = as_loaded(model)
    names = loaded.model  # layer references are resolved in the user's model
    objective = objective_from(objective, loaded)
    output = objective.output(output)
    if any(t.needs_logits for _, t in objective.terms) or output is not None:
        # class scores: a view of the one output they are of (checked, if given, either way)
        chosen = select_output(
            loaded,
            output,
            call="cw.visualize(model, objective, output={output})",
            what="class objectives",
        )
        if any(t.needs_logits for _, t in objective.terms):
            loaded = chosen
    p, reason = recipes.choose(preset, loaded)
    hwc = image_size(loaded, size)
    user_terms = len(objective.terms)
    checked = check_settings(p, steps=steps, lr=lr, tv=tv, lp=lp, blur=blur, min_steps=min_steps)
    weights = {name: checked[name] for name in ("tv", "lp", "blur")}
    for w, term in objective.terms:
        finite_number(f"the weight of {term.describe()} in the objective", w)
    # a regularizer of weight 0 is left out of the step: it would cost ~100 traced ops
    # (and their gradients at every step) for nothing; giving it a weight later builds
    # the step of that other structure once
    full = objective
    for name, term in (
        ("tv", obj.total_variation()),
        ("lp", obj.lp_norm(p.p)),
        ("blur", obj.blur_penalty()),
    ):
        if weights[name] != 0:
            full = full - weights[name] * term
    n = objective.batch_size()
    if batch is None:
        batch = n
    elif n > 1 and batch != n:
        raise CnnvizError(f"the objective has {n} targets but batch={batch}: leave batch out")
    if batch < 1:
        raise CnnvizError(f"batch must be >= 1, got {batch}")
    steps, lr = checked["steps"], checked["lr"]
    param_obj = p.param if param is None else get_param(param)
    t = p.transforms_for(min(hwc[:2])) if transforms is None else transforms
    for setting in (param_obj, t):
        for field in fields(setting):
            value = getattr(setting, field.name)
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, (float, np.floating)):
                    finite_number(f"{type(setting).__name__}.{field.name}", v)
    check_precision(precision)  # once; decide() below takes it as checked
    # before any variable is made: refuse a run that will not fit, warn about a long one
    budget.check_optimize(loaded.model, full, hwc, int(batch), steps)
    choice = decide(loaded, precision, "optimize", batch=int(batch), size=hwc[0])
    runner = model_in(loaded, choice.precision)
    # the ball holds a class picture near its class's seed; a unit's seed (a random
    # class's) says nothing about the unit, so its picture is not held to it
    has_class = any(isinstance(t, obj._ClassTerm) for _, t in objective.terms)
    radius = p.radius if has_class else 0.0
    update = ("l2", p.lr_final, radius) if p.optimizer == "l2" else ("adam",)
    start = None
    if p.start == "seed" and hasattr(param_obj, "from_image"):
        seeds = recipes.seeds_of(loaded)
        if seeds is not None and seeds.channels == hwc[2]:
            start = (seeds, p.seed_noise, p.seed_draws)
        else:
            reason += "; the model has no seed statistics, so it starts from noise"
    compiled = compiled_step(runner, full, param_obj, t, int(batch), hwc, names, update)
    run = Run(
        compiled,
        lambda: compiled_step(runner, full, param_obj, t, int(batch), hwc, names, update),
        full,
        user_terms,
        int(batch),
        steps=steps,
        lr=lr,
        seed=seed,
        every=every,
        precision=choice,
        recipe=p.name,
        recipe_reason=reason,
        start=start,
    )
    run.settings = checked
    run.output = loaded.output
    run.preview = bool(preview) and (
        budget.forward_flops(loaded.model, hwc[:2]) * int(batch) <= PREVIEW_MAX_FLOPS
    )
    return run


def visualize(model, objective, **kwargs) -> Result:
    """Run an optimization to the end and return its :class:`Result`.

    Takes the same arguments as :func:`optimize`.  Example::

        res = cw.visualize(cw.load_model("shapes"), "circle")
        res.image          # (64, 64, 3) uint8
        res.history[:, 0]  # the class logit, step by step

    If the gradients turn NaN the run ends early, a warning says why, ``result.error``
    holds the message and ``result.images`` the last good images.
    """
    kwargs.setdefault("preview", False)  # no one looks at its frames
    run = optimize(model, objective, **kwargs)
    for _ in run:
        pass
    result = run.result
    if result.error:
        warnings.warn(result.error, RuntimeWarning, stacklevel=2)
    if result.stuck and not result.stopped:
        warnings.warn(result.stuck_message(), RuntimeWarning, stacklevel=2)
    return result


def _warm(model, objective, kwargs) -> float:
    start = time.perf_counter()
    if _EXITING.is_set():  # the interpreter is exiting: nothing to warm up for
        return 0.0
    # the run itself says that it will be long; a handler, not a warnings filter, which
    # would be process-wide and could hide a run's warning in another thread
    with budget.long_runs_to(lambda _message: None):
        run = optimize(model, objective, **kwargs)
    c = run._c
    if _EXITING.is_set():
        return time.perf_counter() - start
    with POOL_LOCK:  # taken and marked at once: a run asking now waits for this step
        if not c.busy.acquire(blocking=False):  # a run is using (so compiling) this step
            return time.perf_counter() - start
        c.warming = True
    try:
        if c.tracing_count() == 0:
            rng = np.random.default_rng(run.seed)
            c.reset(run._init(c, rng), run.lr, run.steps)
            # the first call traces the step and optimizes its graph: the slow part
            c.step(run._values, tf.constant(run._weights), tf.constant([run.seed, 0], tf.int32))
            c.render().numpy()  # the eager kernels of a frame
    finally:
        c.warming = False
        c.busy.release()
    return time.perf_counter() - start


def warm_up(
    model, objective=0, *, background: bool = False, **kwargs
) -> float | threading.Thread | None:
    """Do now what the first run of an optimization would wait for, so that it starts
    at full speed: check the settings and the budget (and measure the machine's speed
    for it), choose the precision (building a reduced-precision twin if needed), build
    the layer extractor, and trace and optimize the compiled step by taking one step.

    A panel calls it when it opens, in the background, with the objective and settings
    its Run button will use::

        optvis.warm_up(session.loaded, objective, background=True, **settings)

    The step is shared by every run of the same configuration (the class or channel
    index, the seed, the learning rate and the steps may differ: they are not part of
    it), so the first run then takes no tracing time.  A run started while the warm-up
    is still compiling waits for it instead of compiling a second step.

    Args:
        model: what :func:`optimize` takes.
        objective: what :func:`optimize` takes (default: class 0; only its kind, its
            layer and its number of targets matter, not the index).
        background: return at once; the work runs in a daemon thread (returned).
        **kwargs: the :func:`optimize` settings of the run to come (``preset``,
            ``batch``, ``size``, ``param``, ``transforms``, ``tv``, ``lp``, ``blur``,
            ``precision``...).

    Returns:
        The seconds it took; with ``background``, the started ``threading.Thread``.
        A setting that :func:`optimize` would refuse raises here (the run would too);
        in the background it is left for the run to report, and ``None`` is returned
        by the thread.
    """
    if not background:
        return _warm(model, objective, kwargs)

    def work():
        try:
            _warm(model, objective, kwargs)
        except Exception:  # the run reports it where the user sees it
            pass

    thread = threading.Thread(target=work, name="cnnviz-warm-up", daemon=True)
    _WARMING.add(thread)
    thread.start()
    return thread


# warm-ups still running when the interpreter exits: TensorFlow aborts the process
# ("terminate called ...") if a daemon thread is inside a traced call at shutdown
_WARMING: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_EXITING = threading.Event()  # set at exit: warm-ups not compiling yet give up
EXIT_WAIT = 10.0
"""Seconds the interpreter's exit waits, in all, for warm-ups still compiling.  (Waiting
two minutes for each, as it once did, kept a JupyterLab whose tour had opened several
panels from stopping for over a minute.)"""


@atexit.register
def _finish_warm_ups() -> None:
    """At exit: warm-ups that have not started compiling stop; those compiling get
    :data:`EXIT_WAIT` seconds in all (not each) to finish their traced call."""
    _EXITING.set()
    deadline = time.monotonic() + EXIT_WAIT
    for thread in list(_WARMING):
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
