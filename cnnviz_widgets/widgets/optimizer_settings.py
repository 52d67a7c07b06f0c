"""The class optimizer's settings: traits (the state) and the controls linked to them."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from .. import objectives as obj
from ..engine import PRESETS, Preset, check_settings, get_preset
from ..errors import CnnvizError
from .common import esc, labeled, row

AUTO = "auto"  # the preset that follows the model (the engine's choose_recipe)

__all__ = ["CLASS_OBJECTIVES", "RunSettings", "SettingsColumn"]


CLASS_OBJECTIVES = {
    "class_score": ("log-probability + 0.1 logit (default)", obj.class_score),
    "class_logit": ("logit (before the softmax)", obj.class_logit),
    "class_probability": ("probability (after the softmax)", obj.class_probability),
}
PRESET_LABELS = {
    AUTO: "auto: the model's own recipe",
    "robust": "robust: pixels from a class seed, L2 steps",
    "lucid": "lucid: Fourier image, transforms",
    "tf-keras-vis": "tf-keras-vis: pixels, TV + L1",
    "keras-vis": "keras-vis: pixels, TV + Lp (p=6)",
    "maco": "maco: Fourier phase only, crops + noise",
}


class RunSettings(traitlets.HasTraits):
    """The settings of the panel's next run; the panel's controls are linked to them.

    A new ``preset`` fills in steps, lr, tv, lp and blur from the engine's preset
    (``"auto"``: from ``auto_preset``, the recipe the engine chose for the model, for the
    reason ``auto_reason``).  The values are checked by the engine
    (:func:`~cnnviz_widgets.engine.optvis.settings.check_settings`) when a run starts, so its
    message is the one the panel shows.
    """

    preset = traitlets.Unicode(AUTO)
    auto_preset = traitlets.Instance(Preset, allow_none=True)
    auto_reason = traitlets.Unicode("")
    steps = traitlets.Int(0)
    lr = traitlets.Float(0.0)
    tv = traitlets.Float(0.0)
    lp = traitlets.Float(0.0)
    blur = traitlets.Float(0.0)
    seed = traitlets.Int(0)
    objective = traitlets.Unicode("class_score")
    live_preview = traitlets.Bool(True)
    transparency = traitlets.Bool(False)

    @traitlets.validate("preset")
    def _known_preset(self, proposal: Any) -> str:
        return AUTO if proposal["value"] == AUTO else get_preset(proposal["value"]).name

    def resolved(self) -> Preset:
        """The preset a run with these settings uses (``"auto"``: ``auto_preset``)."""
        if self.preset == AUTO:
            return self.auto_preset or PRESETS["lucid"]
        return get_preset(self.preset)

    def describe(self) -> str:
        """One line for people: the preset's description; for ``"auto"``, which recipe it
        chose and why."""
        p = self.resolved()
        if self.preset == AUTO:
            return f"auto chose {p.name}: {self.auto_reason or 'the fallback'}. {p.description}"
        return p.description

    @traitlets.validate("objective")
    def _known_objective(self, proposal: Any) -> str:
        if proposal["value"] not in CLASS_OBJECTIVES:
            raise CnnvizError(
                f"unknown class objective {proposal['value']!r}: use one of "
                f"{', '.join(CLASS_OBJECTIVES)}"
            )
        return proposal["value"]

    @traitlets.observe("preset")
    def _fill_from_preset(self, change: dict) -> None:
        self.apply_preset(change["new"])

    def apply_preset(self, name: str, **overrides: Any) -> None:
        """The preset's steps, lr and penalties, except where ``overrides`` gives a value."""
        p = self.resolved() if name == AUTO else get_preset(name)
        values = {"steps": p.steps, "lr": p.lr, "tv": p.tv, "lp": p.lp, "blur": p.blur}
        values.update({k: v for k, v in overrides.items() if v is not None})
        with self.hold_trait_notifications():
            for key, value in values.items():
                setattr(self, key, value)

    def arguments(self) -> dict:
        """The settings as ``optimize`` keyword arguments, as they are (``optimize``
        checks them, once)."""
        names = ("preset", "steps", "lr", "tv", "lp", "blur", "seed")
        return {name: getattr(self, name) for name in names}

    def checked(self) -> dict:
        """The settings as ``optimize`` keyword arguments, checked by the engine."""
        values = check_settings(
            self.resolved(),
            steps=self.steps,
            lr=self.lr,
            tv=self.tv,
            lp=self.lp,
            blur=self.blur,
            min_steps=1,
        )
        return {"preset": self.preset, **values, "seed": int(self.seed)}


class SettingsColumn:
    """The Settings column: a control for each trait of ``config``, linked both ways.

    Attributes:
        preset, steps, lr, seed, tv, lp, blur, class_objective, live_preview,
            transparency: the controls; ``preset_info`` the preset's description.
        box: the column.
    """

    def __init__(self, config: RunSettings) -> None:
        self.config = config
        narrow = "40px"
        self.preset = labeled(
            widgets.Dropdown,
            "Preset",
            "330px",
            "52px",
            options=[(PRESET_LABELS.get(name, name), name) for name in (AUTO, *PRESETS)],
        )
        self.preset.add_class("cnnviz-opt-preset")
        self.preset_info = widgets.HTML()
        self.preset_info.add_class("cnnviz-muted")
        self.steps = labeled(widgets.IntText, "steps", "150px", narrow)
        self.steps.add_class("cnnviz-opt-steps")
        self.lr = labeled(widgets.FloatText, "learning rate", "170px", "92px")
        self.seed = labeled(widgets.IntText, "seed", "150px", narrow)
        self.tv = labeled(
            widgets.FloatText,
            "total var.",
            "174px",
            "64px",
            tooltip="weight of the total-variation penalty (smoothness)",
        )
        self.lp = labeled(
            widgets.FloatText,
            "Lp",
            "150px",
            narrow,
            tooltip="weight of the Lp-norm penalty (keeps pixel values small)",
        )
        self.blur = labeled(
            widgets.FloatText, "blur", "150px", narrow, tooltip="weight of the blur penalty"
        )
        self.class_objective = labeled(
            widgets.Dropdown,
            "class score",
            "330px",
            "80px",
            options=[(label, key) for key, (label, _) in CLASS_OBJECTIVES.items()],
        )
        self.live_preview = widgets.Checkbox(
            description="live preview",
            indent=False,
            tooltip="redraw the images while the run goes (about 10 times a second)",
            layout=widgets.Layout(width="120px"),
        )
        self.transparency = widgets.Checkbox(
            description="transparency",
            indent=False,
            tooltip="show the result over a checkerboard, transparent where the model took "
            "little evidence (accumulated gradients, MaCo's alpha map)",
            layout=widgets.Layout(width="120px"),
        )
        self.transparency.add_class("cnnviz-opt-transparency")
        linked = ("preset", "steps", "lr", "seed", "tv", "lp", "blur", "live_preview")
        for name in (*linked, "transparency"):
            widgets.link((config, name), (getattr(self, name), "value"))
        widgets.link((config, "objective"), (self.class_objective, "value"))
        self.preset_info.value = esc(config.describe())

        self.box = widgets.VBox(
            [
                widgets.HTML('<div class="cnnviz-section">Settings</div>'),
                self.preset,
                self.preset_info,
                row(self.steps, self.lr),
                row(self.tv, self.lp, self.blur),
                row(self.seed, self.live_preview, self.transparency),
                self.class_objective,
            ],
            layout=widgets.Layout(flex="1 1 360px", min_width="330px"),
        )
        self.box.add_class("cnnviz-opt-column")
        self.box.add_class("cnnviz-opt-settings")
        config.observe(self._on_preset, names="preset")

    def _on_preset(self, change: dict) -> None:
        self.preset_info.value = esc(self.config.describe())
