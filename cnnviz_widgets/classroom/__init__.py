"""Self-checks for the exercise notebooks (``notebooks/exercises/``).

Each ``check_…`` function takes a student's answer and the model(s) the exercise is about,
computes the right answer from the model itself (nothing is stored), and returns a
:class:`CheckResult`: a green ✓, or an orange hint that points at what to look at without
giving the answer away.  A check never raises: an answer of the wrong type or shape, ``None``
or a string gets a hint saying what kind of answer is expected::

    from cnnviz_widgets import classroom

    model = cw.load_model("shapes")
    classroom.check_vertical_edge_filter(4, model)      # ✓ or a hint
    classroom.check_receptive_field((range(0, 8), range(0, 8)), model, "conv3", 5, 6)

Pure Keras, TensorFlow and numpy: importable and usable without Jupyter.  In a notebook a
result shows itself as a coloured box (``_repr_html_``); ``print(result)`` gives one line.
"""

from .common import CheckResult
from .ex01_filters import check_vertical_edge_filter, edge_image, edge_responses
from .ex02_convolution import check_convolution_value, check_pre_activation
from .ex03_receptive_field import check_receptive_field, receptive_field_mask
from .ex04_two_models import (
    check_object_saliency,
    check_smoother_filters,
    filter_roughness,
    object_saliency_share,
)

__all__ = [
    "CheckResult",
    "check_convolution_value",
    "check_object_saliency",
    "check_pre_activation",
    "check_receptive_field",
    "check_smoother_filters",
    "check_vertical_edge_filter",
    "edge_image",
    "edge_responses",
    "filter_roughness",
    "object_saliency_share",
    "receptive_field_mask",
]
