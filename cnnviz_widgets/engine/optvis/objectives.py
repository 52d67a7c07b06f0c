"""Objectives for activation maximization.  One sign convention: objectives are maximized.

Objectives compose with ``+``, ``-`` and scalar ``*``::

    from cnnviz_widgets import objectives as obj
    goal = obj.class_logit("circle") + 0.5 * obj.channel("conv3", 7) - 0.05 * obj.total_variation()

Every term gives one score per image of the batch.  A target given as a list (``class_logit
([0, 1, 2])``) asks for one image per entry, so several targets are optimized in one run.
Indices and weights are *values* fed to the compiled step, not part of its structure:
changing a class, a channel or a weight never retraces it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model.loading import resolve_class

__all__ = [
    "Context",
    "Objective",
    "Term",
    "blur_penalty",
    "channel",
    "class_log_probability",
    "class_logit",
    "class_probability",
    "class_score",
    "custom",
    "diversity",
    "layer_activation",
    "lp_norm",
    "neuron",
    "total_variation",
]


@dataclass
class Context:
    """What a term sees inside the compiled step.

    Attributes:
        image: the parameterized image batch, RGB (or the model's channels) in [0, 1],
            before the robustness transforms.
        acts: tapped activations by ``(layer path, kind)``.
        logits: pre-softmax class scores ``(batch, classes)``, when a term asked for them.
    """

    image: tf.Tensor
    acts: dict
    logits: tf.Tensor | None = None


@dataclass
class ModelFacts:
    """What terms need to check their targets: shapes of taps, class names."""

    tap_shapes: dict
    n_classes: int | None
    class_names: list[str] | None
    paths: dict = field(default_factory=dict)  # layer ref -> resolved path
    image_shape: tuple | None = None  # (batch, h, w, c) of the optimized images


def _as_targets(value, what: str) -> list:
    if value is None:
        return [None]
    if isinstance(value, range):
        value = list(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        value = list(np.asarray(value, dtype=object).ravel()) if len(value) else []
        if not value:
            raise CnnvizError(f"{what}: got an empty list of targets; give at least one")
        return value
    return [value]


class Term:
    """One scoring function; subclasses implement :meth:`score`.

    Attributes:
        layer: the layer ref the term reads (``None`` for image-only or logit terms).
        needs_logits: the term reads ``ctx.logits``.
    """

    layer = None
    needs_logits = False
    name = "term"

    def targets(self) -> int:
        """How many images this term asks for (1 when it has a single target)."""
        return 1

    def structure(self) -> tuple:
        """Everything that shapes the compiled graph (not the index values)."""
        return (type(self).__name__, self.layer)

    def values(self, batch: int, facts: ModelFacts) -> dict[str, np.ndarray]:
        """Per-image values fed to the step (validated here, with clear messages)."""
        return {}

    def score(self, ctx: Context, values: dict, path: str | None) -> tf.Tensor:
        """Score per image, shape ``(batch,)``."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


def _broadcast(items: list, batch: int, what: str) -> list:
    if len(items) == 1:
        return items * batch
    if len(items) != batch:
        raise CnnvizError(
            f"{what}: {len(items)} targets for a batch of {batch} images; give one target, "
            f"or exactly {batch}"
        )
    return items


class _ClassTerm(Term):
    needs_logits = True

    def __init__(self, index, kind: str, output=None):
        self.index = _as_targets(index, kind)
        self.name = kind
        # the model output the class is of (name or index), for a model with several
        self.output = output

    def targets(self) -> int:
        return len(self.index)

    def values(self, batch, facts):
        n = facts.n_classes
        out = []
        for ref in _broadcast(self.index, batch, self.name):
            out.append(resolve_class(ref, n, facts.class_names, what=self.name))
        return {"index": np.asarray(out, np.int32)}

    def describe(self) -> str:
        where = "" if self.output is None else f", output={self.output!r}"
        return f"{self.name}({self.index[0] if len(self.index) == 1 else self.index}{where})"


def _pick(x: tf.Tensor, index: tf.Tensor, axis: int = 1) -> tf.Tensor:
    """``x[b, index[b]]`` along ``axis`` for every row ``b``: a mask and a sum.

    Not ``tf.gather(..., batch_dims=1)``: its gradient traces about 50 ops (a scatter of
    per-row indices) against 4 here, and tracing is most of the time to a first image.
    Other entries are masked out (not multiplied by 0), so a NaN elsewhere stays there.
    """
    mask = tf.one_hot(index, x.shape[axis] or tf.shape(x)[axis], on_value=True, off_value=False)
    for _ in range(len(x.shape) - 2):  # (B, N, C...): the mask spans the other axes
        mask = tf.expand_dims(mask, -1)
    return tf.reduce_sum(tf.where(mask, x, tf.zeros_like(x)), axis=axis)


class ClassLogit(_ClassTerm):
    def score(self, ctx, values, path):
        return _pick(ctx.logits, values["index"])


class ClassProbability(_ClassTerm):
    def score(self, ctx, values, path):
        probs = tf.nn.softmax(ctx.logits, axis=-1)
        return _pick(probs, values["index"])


class ClassLogProbability(_ClassTerm):
    def score(self, ctx, values, path):
        logp = tf.nn.log_softmax(ctx.logits, axis=-1)
        return _pick(logp, values["index"])


class _UnitTerm(Term):
    spatial_required = True
    # For a conv/dense layer with a built-in ReLU, score a leaky ReLU of the value before
    # it (slope 0.05 below zero): a unit that is off everywhere at the start (ReLU output
    # 0, gradient 0) still gets a gradient, and above zero the score is the activation.
    pre_activation = True

    def __init__(self, layer, index, name):
        if layer is None:
            raise CnnvizError(f"{name}: give a layer (name, path or index)")
        self.layer = layer
        self.index = _as_targets(index, name)
        self.name = name

    def targets(self) -> int:
        return len(self.index)

    def _check_shape(self, facts):
        path = facts.paths[self.layer]
        shape = facts.tap_shapes[(path, "output")]
        if self.spatial_required and len(shape) != 4:
            raise CnnvizError(
                f"{self.name}: layer {path!r} has output shape {tuple(shape)}, with no spatial "
                "axes, so it has no channels (feature maps) to maximize. Pick a conv or "
                "pooling layer, or use objectives.neuron(layer, unit) for one unit of this "
                "layer (or class_logit for the output layer)"
            )
        return path, shape

    def _channel_values(self, batch, facts):
        path, shape = self._check_shape(facts)
        n = int(shape[-1])
        out = []
        for ref in _broadcast(self.index, batch, self.name):
            if isinstance(ref, (bool, np.bool_)) or not isinstance(ref, (int, np.integer)):
                raise CnnvizError(f"{self.name}: a channel is an int index, got {ref!r}")
            if not 0 <= int(ref) < n:
                raise CnnvizError(
                    f"channel {int(ref)} is out of range: layer {path!r} has {n} channels, "
                    f"so use 0..{n - 1}"
                )
            out.append(int(ref))
        return np.asarray(out, np.int32), shape

    def describe(self) -> str:
        idx = self.index[0] if len(self.index) == 1 else self.index
        return f"{self.name}({self.layer!r}, {idx})"


def _unit_values(ctx, path):
    if (path, "pre") in ctx.acts:
        # leaky ReLU written out: tf.nn.leaky_relu's LeakyRelu/LeakyReluGrad pair is a
        # pattern grappler's remapper (oneDNN builds) tries to fuse with the add before it,
        # and fails, printing an error. Same values; same gradient, 0.05 at zero included
        # (Maximum's gradient goes to its first argument on a tie)
        x = ctx.acts[(path, "pre")]
        return tf.maximum(0.05 * x, x)
    return ctx.acts[(path, "output")]


class Channel(_UnitTerm):
    def __init__(self, layer, index):
        super().__init__(layer, index, "channel")

    def values(self, batch, facts):
        index, _ = self._channel_values(batch, facts)
        return {"index": index}

    def score(self, ctx, values, path):
        act = _unit_values(ctx, path)
        # + min(0, strongest position): nothing once the channel fires somewhere; while it
        # is off everywhere, the mean's gradient (0.05 / positions, spread evenly) settles
        # on a flat image that stays off, and this lifts one position, as neuron() does
        peak = tf.minimum(tf.reduce_max(act, axis=(1, 2)), 0.0)
        per_channel = tf.reduce_mean(act, axis=(1, 2)) + peak  # (B, C)
        return _pick(per_channel, values["index"])


class Neuron(_UnitTerm):
    spatial_required = False

    def __init__(self, layer, index, x=None, y=None):
        super().__init__(layer, index, "neuron")
        self.x, self.y = x, y

    def values(self, batch, facts):
        index, shape = self._channel_values(batch, facts)
        if len(shape) == 4:
            h, w = int(shape[1]), int(shape[2])
            x = w // 2 if self.x is None else self.x
            y = h // 2 if self.y is None else self.y
            if not (0 <= x < w and 0 <= y < h):
                raise CnnvizError(
                    f"neuron position (x={x}, y={y}) is outside the {w}x{h} feature map of "
                    f"{facts.paths[self.layer]!r}"
                )
            pos = np.full(batch, y * w + x, np.int32)
        else:
            pos = np.zeros(batch, np.int32)
        return {"index": index, "pos": pos}

    def score(self, ctx, values, path):
        act = _unit_values(ctx, path)
        if len(act.shape) == 4:
            b, c = tf.shape(act)[0], act.shape[-1]
            act = _pick(tf.reshape(act, (b, -1, c)), values["pos"])
        return _pick(act, values["index"])


class LayerActivation(Term):
    """Mean squared activation of a whole layer (DeepDream's objective)."""

    name = "layer_activation"

    def __init__(self, layer):
        self.layer = layer

    def score(self, ctx, values, path):
        act = ctx.acts[(path, "output")]
        return tf.reduce_mean(tf.square(tf.reshape(act, (tf.shape(act)[0], -1))), axis=1)

    def describe(self) -> str:
        return f"layer_activation({self.layer!r})"


class Diversity(Term):
    """Minus the mean cosine similarity of an image's Gram matrix to the other images'."""

    name = "diversity"

    def __init__(self, layer):
        self.layer = layer

    def values(self, batch, facts):
        if batch < 2:
            warnings.warn(
                f"diversity({self.layer!r}) with a batch of {batch}: there are no other images "
                "to differ from, so it does nothing; ask for batch >= 2 (optimize(..., "
                "batch=4))",
                UserWarning,
                stacklevel=2,
            )
        return {}

    def score(self, ctx, values, path):
        act = ctx.acts[(path, "output")]
        b, c = tf.shape(act)[0], act.shape[-1]
        flat = tf.reshape(act, (b, -1, c))
        gram = tf.reshape(tf.matmul(flat, flat, transpose_a=True), (b, -1))
        gram = tf.math.l2_normalize(gram, axis=1)
        sim = tf.matmul(gram, gram, transpose_b=True)  # (B, B)
        others = tf.reduce_sum(sim, axis=1) - tf.linalg.diag_part(sim)
        count = tf.maximum(tf.cast(b, sim.dtype) - 1.0, 1.0)
        return -others / count

    def describe(self) -> str:
        return f"diversity({self.layer!r})"


class TotalVariation(Term):
    name = "total_variation"

    def score(self, ctx, values, path):
        img = ctx.image
        dy = tf.reduce_mean(tf.abs(img[:, 1:] - img[:, :-1]), axis=(1, 2, 3))
        dx = tf.reduce_mean(tf.abs(img[:, :, 1:] - img[:, :, :-1]), axis=(1, 2, 3))
        return dx + dy

    def describe(self) -> str:
        return "total_variation()"


class LpNorm(Term):
    name = "lp_norm"

    def __init__(self, p: float = 2.0):
        if p <= 0:
            raise CnnvizError(f"lp_norm: p must be > 0, got {p}")
        self.p = float(p)

    def structure(self):
        return (*super().structure(), self.p)

    def score(self, ctx, values, path):
        centred = tf.abs(ctx.image - 0.5) + 1e-8
        return tf.reduce_mean(centred**self.p, axis=(1, 2, 3)) ** (1.0 / self.p)

    def describe(self) -> str:
        return f"lp_norm(p={self.p:g})"


class BlurPenalty(Term):
    """How much the image changes under a 3x3 blur: high-frequency energy."""

    name = "blur_penalty"

    def score(self, ctx, values, path):
        img = ctx.image
        c = img.shape[-1]
        k = tf.constant([1.0, 2.0, 1.0]) / 4.0
        k2 = tf.tensordot(k, k, axes=0)[:, :, None, None] * tf.ones((1, 1, c, 1))
        blurred = tf.nn.depthwise_conv2d(img, k2, strides=[1, 1, 1, 1], padding="SAME")
        return tf.reduce_mean(tf.square(img - blurred), axis=(1, 2, 3)) * 100.0

    def describe(self) -> str:
        return "blur_penalty()"


class Custom(Term):
    def __init__(self, fn: Callable, layer=None, name: str = "custom"):
        self.fn, self.layer, self.name = fn, layer, name

    def structure(self):
        return (*super().structure(), id(self.fn))

    def values(self, batch, facts):
        # trace fn (not run it) on a tensor of the shape it will get, to check what it gives
        if self.layer is None:
            shape = facts.image_shape
        else:
            shape = facts.tap_shapes.get((facts.paths.get(self.layer), "output"))
        if shape is not None:
            spec = tf.TensorSpec((batch, *shape[1:]), tf.float32)
            out = tf.function(self.fn).get_concrete_function(spec).structured_outputs
            out_shape = tuple(getattr(out, "shape", ()))
            if len(out_shape) != 1 or out_shape[0] not in (None, batch):
                raise CnnvizError(
                    f"the custom objective {self.name!r} returned shape {out_shape} for a batch "
                    f"of {batch}: it must return one value per image, shape (batch,) = "
                    f"({batch},); reduce over every axis but the first, e.g. "
                    "tf.reduce_mean(x, axis=[1, 2, 3])"
                )
        return {}

    def score(self, ctx, values, path):
        arg = ctx.image if self.layer is None else ctx.acts[(path, "output")]
        return self.fn(arg)

    def describe(self) -> str:
        return f"custom({self.name})"


class Objective:
    """A weighted sum of terms, to be maximized.  Build one with the functions here.

    ``a + b``, ``a - b``, ``2 * a``, ``-a`` and ``sum([...])`` all give objectives.
    """

    def __init__(self, terms: Sequence[tuple[float, Term]]):
        self.terms: tuple[tuple[float, Term], ...] = tuple((float(w), t) for w, t in terms)

    # composition --------------------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, (int, float)) and other == 0:
            return self
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(self.terms + other.terms)

    __radd__ = __add__

    def __neg__(self):
        return Objective([(-w, t) for w, t in self.terms])

    def __sub__(self, other):
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-other)

    def __mul__(self, k):
        if not isinstance(k, (int, float, np.floating, np.integer)):
            return NotImplemented
        return Objective([(w * float(k), t) for w, t in self.terms])

    __rmul__ = __mul__

    def __truediv__(self, k):
        return self * (1.0 / float(k))

    # introspection --------------------------------------------------------------------
    def batch_size(self) -> int:
        """Images this objective asks for: the longest target list (1 if none)."""
        return max([t.targets() for _, t in self.terms] or [1])

    def structure(self) -> tuple:
        """The compiled step's cache key: term types and layers, not indices or weights."""
        return tuple(t.structure() for _, t in self.terms)

    def output(self, given=None):
        """The model output the class terms read: ``given`` (``optimize(output=...)``)
        and the terms' own ``output=`` must agree; ``None`` when none says.

        Raises:
            CnnvizError: two different outputs (one run reads one output's scores).
        """
        said = {repr(given): given} if given is not None else {}
        for _, term in self.terms:
            if isinstance(term, _ClassTerm) and term.output is not None:
                said.setdefault(repr(term.output), term.output)
        if len(said) > 1:
            raise CnnvizError(
                f"the objective names several outputs ({', '.join(said)}): one run reads "
                "the class scores of one output; give the same output= to every class term"
            )
        return next(iter(said.values()), None)

    def __repr__(self) -> str:
        parts = []
        for i, (w, t) in enumerate(self.terms):
            sign = "-" if w < 0 else ("+" if i else "")
            mag = abs(w)
            parts.append(f"{sign} {'' if mag == 1 else f'{mag:g}*'}{t.describe()}".strip())
        return " ".join(parts) or "Objective()"


def class_logit(index, output=None) -> Objective:
    """The class score before the softmax (the usual choice: it cannot saturate).

    Args:
        index: a class index or name, or a list of them (one image per entry).
        output: for a model with several outputs, the one the class is of: its name (a
            dict output's key, or the output layer's name) or its index (see
            :func:`~cnnviz_widgets.select_output`).  The same for every class builder.
    """
    return Objective([(1.0, ClassLogit(index, "class_logit", output))])


def class_score(index, output=None) -> Objective:
    """``class_log_probability + 0.1 * class_logit``: what a bare class index or name means.

    The log-probability makes the class win: it rewards the class and pushes its rivals
    down, so a rival that shares the class's features (a square for a triangle, with few
    classes, as in the embedded model) cannot take the image.  It flattens out once the
    model is sure; the tenth of the logit keeps drawing the class after that, so the picture
    keeps gaining contrast.  On the robust embedded model, equal weights let the square take
    the triangle's picture and the log-probability alone drew faint, washed-out pictures;
    this mix reaches both classes with the vivid pictures of the logit (figures:
    ``docs/benchmarks.md``, "Class score").  ``output``: as for :func:`class_logit`.
    """
    return class_log_probability(index, output) + 0.1 * class_logit(index, output)


def class_log_probability(index, output=None) -> Objective:
    """The log of the class probability: the logit minus the log-sum-exp of all logits.

    It rewards the class and punishes its strongest rivals, and unlike the probability it
    does not flatten out near 1.  ``output``: as for :func:`class_logit`.
    """
    return Objective([(1.0, ClassLogProbability(index, "class_log_probability", output))])


def class_probability(index, output=None) -> Objective:
    """The class probability after the softmax (it also pushes other classes down).
    ``output``: as for :func:`class_logit`."""
    return Objective([(1.0, ClassProbability(index, "class_probability", output))])


def channel(layer, index) -> Objective:
    """The mean activation of one channel (filter) of a layer with spatial output.

    For a layer with a built-in ReLU the score is the mean of a leaky ReLU (slope 0.05) of
    the value before it, plus the strongest position's score while that is below zero: a channel
    off everywhere climbs at its most promising spot (as :func:`neuron` does) instead of
    settling on a flat image that stays off; once it fires somewhere, the score is the mean.

    Args:
        layer: index, name or path (``"vgg16/block5_conv1"``) of the layer.
        index: the channel, or a list of channels (one image per entry).
    """
    return Objective([(1.0, Channel(layer, index))])


def neuron(layer, index, x: int | None = None, y: int | None = None) -> Objective:
    """One spatial position (default: the centre) of one channel; or one unit of a Dense
    layer."""
    return Objective([(1.0, Neuron(layer, index, x, y))])


def layer_activation(layer) -> Objective:
    """The mean squared activation of a whole layer (DeepDream)."""
    return Objective([(1.0, LayerActivation(layer))])


def diversity(layer) -> Objective:
    """Rewards images of a batch for differing in style (Gram matrices) at ``layer``.

    Add it with a weight to an objective with a single target and ``batch > 1``.
    """
    return Objective([(1.0, Diversity(layer))])


def total_variation() -> Objective:
    """Mean absolute difference between neighbouring pixels; subtract it to smooth."""
    return Objective([(1.0, TotalVariation())])


def lp_norm(p: float = 2.0) -> Objective:
    """The Lp norm of the image around mid-gray; subtract it to keep colours moderate."""
    return Objective([(1.0, LpNorm(p))])


def blur_penalty() -> Objective:
    """High-frequency energy (image minus its 3x3 blur); subtract it to smooth."""
    return Objective([(1.0, BlurPenalty())])


def custom(fn: Callable, layer=None, name: str = "custom") -> Objective:
    """Your own term: ``fn`` maps the layer's output (or the image, if ``layer`` is None),
    a batch tensor, to one score per image: shape ``(batch,)`` (a scalar is refused)."""
    return Objective([(1.0, Custom(fn, layer, name))])
