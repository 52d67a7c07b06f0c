"""The explainer's top-k predictions table and the line that says which class is
explained (with a button to explain the top prediction instead)."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from ..engine import Predictions
from .common import esc
from .overlay_view import percent


class PredictionsView:
    """The top-k table (``html``), the note under it when the image is unlike the model's
    training images (``unlike``: hidden otherwise, and for a model that does not say what
    it was trained on), the class note (``note``) and ``use_top``.

    Args:
        name_of: class index -> its display name.
    """

    def __init__(self, name_of: Callable[[int], str]) -> None:
        self.name_of = name_of
        self.html = widgets.HTML()
        self.note = widgets.HTML()
        self.note.add_class("cnnviz-ex-class-note")
        self.unlike = widgets.HTML(layout=widgets.Layout(display="none"))
        self.unlike.add_class("cnnviz-ex-unlike")
        self.use_top = widgets.Button(
            description="explain the top prediction",
            tooltip="explain the class the model predicts for this image",
            layout=widgets.Layout(width="auto", display="none"),
        )
        self.use_top.add_class("cnnviz-ex-use-top")

    def show(self, p: Predictions | None, picked: int | None) -> None:
        """The table for ``p`` (``None``: empty) with class ``picked`` in bold."""
        if p is None:
            self.html.value = self.note.value = self.unlike.value = ""
            self.use_top.layout.display = self.unlike.layout.display = "none"
            return
        note = getattr(p, "distribution_note", "")
        self.unlike.value = f"⚠ {esc(note)}" if note else ""
        self.unlike.layout.display = None if note else "none"
        rows = []
        for rank, (index, name, prob) in enumerate(p, 1):
            label = name if name is not None else f"class {index}"
            cls = ' class="cnnviz-top-picked"' if index == picked else ""
            width = max(0.0, min(100.0, prob * 100))
            rows.append(
                f"<tr{cls}><td>{rank}.</td>"
                f'<td class="cnnviz-top-name" title="{esc(label)} (index {index})">'
                f"{esc(label)}</td>"
                f'<td><div class="cnnviz-top-track"><div class="cnnviz-top-bar" '
                f'style="width: {width:.1f}%"></div></div></td>'
                f'<td class="cnnviz-top-p">{percent(prob)}</td></tr>'
            )
        self.html.value = f'<table class="cnnviz-top">{"".join(rows)}</table>'
        top, top_p = p.class_index, float(p.probabilities[0])
        top_name = esc(self.name_of(top))
        if picked is None or picked == top:
            self.note.value = (
                f"Explaining <b>{top_name}</b>, the top prediction ({percent(top_p)})."
            )
            self.use_top.layout.display = "none"
        else:
            self.note.value = (
                f'<span class="cnnviz-ex-other-class">Explaining <b>'
                f"{esc(self.name_of(picked))}</b> (the class picked in the session), not "
                f"the top prediction <b>{top_name}</b> ({percent(top_p)}).</span>"
            )
            self.use_top.layout.display = None
