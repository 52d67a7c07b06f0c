"""The visualization engine: Keras, TensorFlow, numpy and matplotlib colormaps only.

Never imports ipywidgets, IPython or pyplot; tested without Jupyter.  Its capability
packages:

- :mod:`.model`: loading, the one door to Keras internals, introspection, taps, precision,
  budgets, images in;
- :mod:`.optvis`: activation maximization (objectives, parameterizations, transforms, runs);
- :mod:`.attribution`: how the network sees one image (saliency, Grad-CAM, occlusion);
- :mod:`.dataset`: data sources, dataset examples, the unit atlas, its store and backends;
- :mod:`.layers`: filters, feature maps, the convolution explainer, kernel selectivity;
- :mod:`.jobs`: the one protocol of long work (:class:`~.jobs.Job`);
- :mod:`.results_io` and :mod:`.figures`: results saved, loaded and drawn for papers.

Their public names are re-exported here and from :mod:`cnnviz_widgets`.
"""

from .attribution import *  # noqa: F403
from .attribution import __all__ as _attribution
from .attribution.batched import Attributions, explain_batch  # noqa: F401
from .attribution.batched import __all__ as _batched
from .dataset import *  # noqa: F403
from .dataset import __all__ as _dataset
from .jobs import *  # noqa: F403
from .jobs import __all__ as _jobs
from .layers import *  # noqa: F403
from .layers import __all__ as _layers
from .model import *  # noqa: F403
from .model import __all__ as _model
from .optvis import *  # noqa: F403
from .optvis import __all__ as _optvis
from .results_io import __all__ as _results_io
from .results_io import load_result, result_info  # noqa: F401

__all__ = sorted(
    {*_model, *_optvis, *_attribution, *_dataset, *_layers, *_jobs, *_results_io, *_batched}
    - {"Keepable"}
)
