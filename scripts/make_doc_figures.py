"""Draw one figure per result kind with its own ``to_figure`` method, into docs/figures/.

Run from the repository root:  python scripts/make_doc_figures.py
Everything comes from the embedded shapes model and generated data (nothing downloaded).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cnnviz_widgets as cw
from cnnviz_widgets.engine.figures import figure_of

OUT = Path(__file__).resolve().parents[1] / "docs" / "figures"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    m = cw.load_model("shapes")
    image = cw.sample_image("cross", seed=4)
    data = cw.generate_shapes(2000, seed=0)
    made = {
        "grad_cam": cw.grad_cam(m, image),
        "smoothgrad": cw.saliency(m, image, smooth=24),
        "occlusion": cw.occlusion(m, image, patch=12, stride=4),
        "predictions": cw.predict_top(m, image, k=5),
        "feature_maps": cw.feature_maps(m, image, "conv2"),
        "optimization": cw.visualize(
            m, cw.objectives.channel("conv3", [3, 9, 17]), steps=96, seed=1
        ),
    }
    made["attributions"] = cw.explain_batch(m, (data.images[:12], data.labels[:12]))
    top = cw.top_examples(m, "conv4", (data.images, data.labels), k=6)
    made["top_examples"] = top
    shown = [int(u) for u in top.units[:3]] + [int(u) for u in top.dead_units()[:1]]
    options = {"top_examples": {"units": shown}}
    with tempfile.TemporaryDirectory() as store:
        atlas = cw.atlas(
            m, "conv4", data.images[:300], channels=range(12, 24), store=store, steps=64, seed=0
        )
        made["atlas"] = atlas
        made["atlas_unit"] = atlas.unit(12)
        for name, result in made.items():
            path = result.save_figure(OUT / f"{name}.png", dpi=110, **options.get(name, {}))
            print(path.relative_to(OUT.parents[1]), file=sys.stderr)
    montage = cw.filter_montage(m, "conv1")
    figure_of(montage).savefig(OUT / "montage.png", dpi=110)


if __name__ == "__main__":
    main()
