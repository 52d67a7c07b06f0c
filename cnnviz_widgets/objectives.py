"""Objectives for activation maximization (maximized; compose with ``+``, ``-``, ``*``).

This is :mod:`cnnviz_widgets.engine.optvis.objectives` under a short name::

    from cnnviz_widgets import objectives as obj
    goal = obj.channel("conv3", 7) - 0.1 * obj.total_variation()
"""

from .engine.optvis.objectives import *  # noqa: F403
from .engine.optvis.objectives import __all__  # noqa: F401
