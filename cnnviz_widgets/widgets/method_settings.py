"""The explainer's method choice and its settings, built from the engine's registry of
attribution methods: the choices, their tips and one control per parameter come from the
method records, so a method added to the registry shows here with nothing kept by hand."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from ..engine import Param, attribution_methods, method_info, method_names, occlusion_grid
from ..errors import CnnvizError
from .common import esc, labeled, row

__all__ = ["AUTO", "CMAPS", "ExplainSettings", "MethodSettings", "method_choices"]

CMAPS = ["jet", "turbo", "inferno", "viridis", "magma", "hot"]
AUTO = ""  # the layer option "automatic" (a Dropdown shows no value for None)
HIDDEN = {"batch_size"}  # engine details the panel leaves to the engine
# parameters that keep their historical trait names (and controls) in the panel
TRAIT_OF = {"layer": "cam_layer", "samples": "samples", "noise": "noise"}
TRAIT_OF.update(patch="patch", stride="stride")


def method_choices() -> list[tuple[str, str]]:
    """``(label, name)`` of every registered method, gradients, then CAMs, then
    perturbations."""
    return [(m.label, m.name) for m in attribution_methods()]


class ExplainSettings(traitlets.HasTraits):
    """What the explainer computes and how it draws it; the controls are linked to these
    traits (the engine checks the values when it computes).  ``params`` holds the
    settings of the other registered parameters by name (``steps``, ``masks``, ...)."""

    method = traitlets.Unicode("grad_cam")
    cam_layer = traitlets.Unicode(AUTO)
    samples = traitlets.Int(25)
    noise = traitlets.Float(0.15)
    patch = traitlets.Int(8)
    stride = traitlets.Int(4)
    params = traitlets.Dict()
    opacity = traitlets.Float(0.5)
    cmap = traitlets.Unicode("jet")
    weighted = traitlets.Bool(False)

    @traitlets.validate("method")
    def _known_method(self, proposal: Any) -> str:
        if proposal["value"] not in method_names():
            raise CnnvizError(
                f"unknown method {proposal['value']!r}: use one of {', '.join(method_names())}"
            )
        return proposal["value"]

    def values(self, method: str) -> dict:
        """The parameters of ``method`` as :func:`~cnnviz_widgets.explain` takes them."""
        out = {}
        for p in method_info(method).params:
            if p.name in HIDDEN:
                continue
            if p.name in TRAIT_OF:
                value = getattr(self, TRAIT_OF[p.name])
                out[p.name] = (value or None) if p.kind == "layer" else value
            elif p.name in self.params:
                out[p.name] = self.params[p.name]
        return out


def _control(p: Param, layer_options: list) -> widgets.Widget:
    """One control for a registered parameter, from its kind and range."""
    w, tip = "64px", p.help
    if p.kind == "layer":
        return labeled(widgets.Dropdown, "Layer", "340px", w, options=layer_options)
    if p.kind == "choice":
        return labeled(widgets.Dropdown, p.name, "200px", w, options=list(p.choices), tooltip=tip)
    if p.kind == "bool":
        return widgets.Checkbox(description=p.name, indent=False, tooltip=tip)
    low = p.low if p.low is not None else 0
    high = p.high if p.high is not None else 10**6
    if p.kind == "int" and (high - low > 2000 or p.default is None):
        kind = widgets.BoundedIntText
        return labeled(kind, p.name, "150px", w, min=low, max=high, tooltip=tip)
    slider = widgets.IntSlider if p.kind == "int" else widgets.FloatSlider
    step = p.step or (1 if p.kind == "int" else 0.05)
    if p.name == "samples":  # SmoothGrad's historical range in the panel
        low, high = 5, 100
    return labeled(
        slider, p.name, "340px", w, min=low, max=high, step=step, continuous_update=False,
        tooltip=tip,
    )  # fmt: skip


class MethodSettings:
    """The method dropdown, its tip and one control per registered parameter (shown for
    the methods that take it), linked to an :class:`ExplainSettings`.

    Attributes:
        method: the method dropdown (``value``: a registry name).
        tip: the chosen method's description and citation.
        controls: parameter name -> its control; ``cam_layer``, ``smooth_samples``,
            ``smooth_noise``, ``patch`` and ``stride`` are some of them.
        patch_count: how many patches occlusion will hide.
        box: the part to place in the panel.
    """

    def __init__(self, config: ExplainSettings, layer_options: list) -> None:
        self.config = config
        self.method = widgets.Dropdown(
            options=method_choices(), layout=widgets.Layout(width="260px")
        )
        self.method.add_class("cnnviz-ex-methods")
        self.tip = widgets.HTML()
        self.tip.add_class("cnnviz-muted")
        self.tip.add_class("cnnviz-ex-method-tip")
        self.controls: dict[str, widgets.Widget] = {}
        self._takers: dict[str, set[str]] = {}
        for m in attribution_methods():
            for p in m.params:
                if p.name in HIDDEN:
                    continue
                self._takers.setdefault(p.name, set()).add(m.name)
                if p.name not in self.controls:
                    self.controls[p.name] = self._linked(p, _control(p, layer_options))
        self.cam_layer = self.controls["layer"]
        self.cam_layer.add_class("cnnviz-ex-cam-layer")
        self.smooth_samples, self.smooth_noise = self.controls["samples"], self.controls["noise"]
        self.patch, self.stride = self.controls["patch"], self.controls["stride"]
        self.patch_count = widgets.HTML()
        self.patch_count.add_class("cnnviz-muted")
        widgets.link((config, "method"), (self.method, "value"))
        order = ["layer", "samples", "noise", "patch", "stride"]
        rest = [n for n in self.controls if n not in order]
        self.rows = {n: self.controls[n] for n in order + rest}
        self.rows["patch"] = row(self.patch, self.stride, self.patch_count)
        self.rows["samples"] = widgets.VBox([self.smooth_samples, self.smooth_noise])
        del self.rows["stride"], self.rows["noise"]
        self.cam_box, self.smooth_box = self.rows["layer"], self.rows["samples"]
        self.occlusion_box = self.rows["patch"]
        self.box = widgets.VBox([self.method, self.tip, *self.rows.values()])
        config.observe(lambda _: self.update(), names=["method"])
        config.observe(lambda _: self.update_patch_count(), names=["patch", "stride"])
        self.image_shape: tuple[int, ...] | None = None
        self.update()

    def _linked(self, p: Param, control: widgets.Widget) -> widgets.Widget:
        trait = TRAIT_OF.get(p.name)
        if trait is not None:
            widgets.link((self.config, trait), (control, "value"))
            return control
        default = p.default if p.default is not None else getattr(control, "value", None)
        control.value = default
        self.config.params = {**self.config.params, p.name: default}

        def changed(change: dict) -> None:
            self.config.params = {**self.config.params, p.name: change["new"]}

        control.observe(changed, names="value")
        return control

    def update(self) -> None:
        """Show the controls of the chosen method, and its tip."""
        name = self.config.method
        record = method_info(name)
        for pname, box in self.rows.items():
            box.layout.display = None if name in self._takers.get(pname, ()) else "none"
        self.tip.value = f"{esc(record.description)} <i>({esc(record.citation)})</i>"
        self.update_patch_count()

    def reset_occlusion(self, shape: tuple[int, ...]) -> None:
        """The engine's occlusion defaults for a new image of ``shape``."""
        patch, stride, _ = occlusion_grid(shape[0], shape[1])
        self.image_shape = shape
        self.patch.max = self.stride.max = max(shape[0], shape[1])
        self.config.patch, self.config.stride = patch, stride

    def patches(self) -> int:
        """How many patch positions occlusion has with the current settings."""
        h, w = self.image_shape[:2]
        return occlusion_grid(h, w, self.config.patch, self.config.stride)[2]

    def update_patch_count(self) -> None:
        try:
            n = self.patches() if self.image_shape is not None else None
        except CnnvizError:
            n = None
        self.patch_count.value = "" if n is None else f"→ {n} patches, one forward pass each"

    def steps(self, method: str) -> tuple[int, str, str]:
        """``(total, unit, units)`` of a long method's progress, for the run bar."""
        values = self.config.values(method)
        if method == "occlusion":
            return self.patches(), "patch", "patches"
        if "samples" in values:
            return int(values["samples"]), "sample", "samples"
        if "masks" in values:
            return int(values["masks"]), "mask", "masks"
        if "steps" in values:
            return int(values["steps"]) + 1, "step", "steps"
        return 1, "step", "steps"

    def what(self, method: str) -> str:
        """The method's label, with its amount of work when it has one."""
        label = method_info(method).label
        if method == "occlusion":
            return f"{label} ({self.patches()} patches)"
        if method == "smoothgrad":
            return f"{label} ({int(self.config.samples)} noisy copies)"
        return label
