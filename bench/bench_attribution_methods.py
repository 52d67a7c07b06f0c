"""Speed of the registry's methods and of the faithfulness metrics (not tests).

    .venv/bin/python bench/bench_attribution_methods.py [--quick] [--no-vgg]

Prints, interleaved (bench/interleave.py: order reversed each round, >= 3 rounds,
medians of per-round ratios, the load average beside each figure):

1. Score-CAM and RISE per call / a bare compiled batched forward pass over the same masked
   images (target <= 1.1); Integrated Gradients / a bare batched forward+backward over its
   steps (<= 1.1); deletion, insertion and mu-Fidelity / the bare forward passes they need
   (<= 1.1).  On the embedded model and on VGG16(weights=None) at 224x224.
2. Deletion against Quantus' PixelFlipping on the same images, maps and number of model
   passes (aim: >= 5x faster), and Score-CAM against tf-keras-vis' Scorecam when installed.
   (Xplique is not measured: installing it downgrades TensorFlow below this project's 2.21.)
"""

from __future__ import annotations

import argparse
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from interleave import block, compare, load

import cnnviz_widgets as cw
from cnnviz_widgets.engine.attribution.cams import layer_gradients, upsample
from cnnviz_widgets.engine.attribution.metrics import saliency_map
from cnnviz_widgets.engine.attribution.perturbation import _rise_fns, rise_masks
from cnnviz_widgets.engine.attribution.shared import batch_for as _batch_for
from cnnviz_widgets.engine.attribution.shared import even_batch as _even_batch

warnings.filterwarnings("ignore")


def bare(model):
    @tf.function(autograph=False)
    def forward(x):
        return model(x, training=False)

    @tf.function(autograph=False)
    def forward_backward(x, c):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.reduce_sum(model(x, training=False)[:, c])
        return tape.gradient(score, x)

    return forward, forward_backward


def batched(fn, xs, per_call, *extra):
    def run():
        for s in range(0, len(xs), per_call):
            fn(xs[s : s + per_call], *extra)

    return run


def section(loaded, img, rounds, sizes):
    model = loaded.model
    forward, forward_backward = bare(model)
    c = int(np.argmax(model(img[None], training=False)[0]))
    h, w = img.shape[:2]
    per = _batch_for(img)
    print(f"\n== {model.name}, {h}x{w}, load {load():.1f} ==")

    # Score-CAM: one masked image per channel of the layer
    layer = sizes.get("layer") or cw.default_cam_layer(loaded)
    a = layer_gradients(loaded, img, layer)[0]
    up = upsample(a, (h, w))
    lo, hi = up.min(axis=(0, 1)), up.max(axis=(0, 1))
    masks = np.moveaxis(np.divide(up - lo, np.maximum(hi - lo, 1e-12)), -1, 0)
    sc_x = tf.constant(img[None] * masks[..., None], tf.float32)
    k = len(masks)
    t = compare(
        {
            "score_cam": block(
                lambda: cw.explain(loaded, img, "score_cam", c, layer=layer, precision="float32")
            ),
            "bare forward": block(batched(forward, sc_x, _even_batch(k, per))),
        },
        rounds,
    )
    print(f" Score-CAM at {layer} ({k} channels)")
    for n in t.names:
        print(t.line(n, against="bare forward"))

    # RISE
    n_masks = sizes["rise"]
    grids, shifts = rise_masks(n_masks, (h, w), 7, 0.5, 0)
    rise_m = _rise_fns(loaded, 7).masks(grids, shifts).numpy()
    rise_x = tf.constant(img[None] * rise_m[..., None], tf.float32)
    t = compare(
        {
            "rise": block(
                lambda: cw.explain(loaded, img, "rise", c, masks=n_masks, precision="float32")
            ),
            "bare forward": block(batched(forward, rise_x, _even_batch(n_masks, per))),
        },
        rounds,
    )
    print(f" RISE ({n_masks} masks)")
    for n in t.names:
        print(t.line(n, against="bare forward"))

    # Integrated Gradients
    steps = sizes["ig"]
    alphas = np.linspace(0, 1, steps + 1, dtype=np.float32)
    ig_x = tf.constant(alphas[:, None, None, None] * img[None], tf.float32)
    ig_per = _even_batch(steps + 1, _batch_for(img, 32))
    t = compare(
        {
            "integrated_gradients": block(
                lambda: cw.explain(loaded, img, "integrated_gradients", c, steps=steps)
            ),
            "bare forward+backward": block(batched(forward_backward, ig_x, ig_per, tf.constant(c))),
        },
        rounds,
    )
    print(f" Integrated Gradients ({steps} steps)")
    for n in t.names:
        print(t.line(n, against="bare forward+backward"))

    # metrics on a Grad-CAM map
    r = cw.grad_cam(loaded, img, c)
    cs = sizes["curve"]
    order = np.argsort(-saliency_map(r).ravel(), kind="stable")
    counts = np.round(np.linspace(0, 1, cs + 1) * h * w).astype(int)
    curve_x = []
    for n in counts:
        keep = np.zeros(h * w, np.float32)
        keep[order[:n]] = 1
        curve_x.append(img * (1 - keep.reshape(h, w, 1)))
    curve_x = tf.constant(np.stack(curve_x), tf.float32)
    mu_n = sizes["mu"]
    mu_x = tf.constant(np.repeat(img[None], mu_n + 1, axis=0), tf.float32)
    t = compare(
        {
            "deletion": block(lambda: cw.deletion(loaded, None, r, steps=cs, baseline="zero")),
            "insertion": block(lambda: cw.insertion(loaded, None, r, steps=cs, baseline="zero")),
            "bare forward (curve)": block(batched(forward, curve_x, _even_batch(cs + 1, per))),
            "mu_fidelity": block(lambda: cw.mu_fidelity(loaded, None, r, samples=mu_n)),
            "bare forward (mu)": block(batched(forward, mu_x, _even_batch(mu_n, per))),
        },
        rounds,
    )
    print(f" metrics: curves of {cs} steps, mu-Fidelity of {mu_n} subsets")
    for n, against in [
        ("deletion", "bare forward (curve)"),
        ("insertion", "bare forward (curve)"),
        ("bare forward (curve)", None),
        ("mu_fidelity", "bare forward (mu)"),
        ("bare forward (mu)", None),
    ]:
        print(t.line(n, against=against))
    return r


def against_quantus(loaded, img, r, rounds, steps):
    try:
        import quantus
    except ImportError:
        print(" (quantus not installed: pip install quantus==0.6.0)")
        return
    h, w, ch = img.shape
    # Quantus flips channel entries, `features_in_step` (a divisor of H * W) at a time:
    # `steps` passes in all (a multiple of the channels)
    fis = h * w // (steps // ch)
    heat = saliency_map(r).astype(np.float32)
    metric = quantus.PixelFlipping(
        features_in_step=fis, perturb_baseline=0.0, normalise=False, disable_warnings=True
    )

    def q():
        metric(
            model=loaded.model, x_batch=img[None], y_batch=np.array([r.class_index]),
            a_batch=heat[None, None], channel_first=False, softmax=True,
        )  # fmt: skip

    ours = steps - 1  # our curve has steps + 1 points, the first one the image itself
    t = compare(
        {
            "ours: deletion": block(
                lambda: cw.deletion(loaded, None, r, steps=ours, baseline="zero")
            ),
            "quantus PixelFlipping": block(q),
        },
        rounds,
    )
    print(f" deletion vs Quantus PixelFlipping ({steps} model passes each)")
    for n in t.names:
        print(t.line(n, against="ours: deletion"))


def against_tf_keras_vis(loaded, img, rounds):
    try:
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError:
        print(" (tf-keras-vis not installed)")
        return
    layer = cw.default_cam_layer(loaded)
    c = int(np.argmax(loaded.model(img[None], training=False)[0]))
    sc = Scorecam(loaded.model)
    keras.utils.disable_interactive_logging()

    def theirs():
        sc(CategoricalScore([c]), img[None], penultimate_layer=layer, max_N=-1)

    t = compare(
        {
            "ours: score_cam": block(
                lambda: cw.explain(loaded, img, "score_cam", c, precision="float32")
            ),
            "tf-keras-vis Scorecam": block(theirs),
        },
        rounds,
    )
    print(" Score-CAM vs tf-keras-vis")
    for n in t.names:
        print(t.line(n, against="ours: score_cam"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-vgg", action="store_true")
    parser.add_argument("--vgg-quantus", action="store_true", help="only VGG16 vs Quantus")
    args = parser.parse_args()
    rounds = 3
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, load {load():.1f}")
    if args.vgg_quantus:
        keras.utils.set_random_seed(0)
        vgg = cw.load_model("vgg16", weights=None)
        big = np.random.default_rng(0).random((224, 224, 3)).astype(np.float32)
        against_quantus(vgg, big, cw.grad_cam(vgg, big), rounds, 48)
        return
    shapes = cw.load_model("shapes")
    img = cw.generate_shapes(1, seed=7).images[0]
    small = dict(rise=1000, ig=64, curve=32, mu=128)
    r = section(shapes, img, rounds, small)
    against_quantus(shapes, img, r, rounds, 96)
    against_tf_keras_vis(shapes, img, rounds)
    if args.no_vgg:
        return
    keras.utils.set_random_seed(0)
    vgg = cw.load_model("vgg16", weights=None)
    big = np.random.default_rng(0).random((224, 224, 3)).astype(np.float32)
    sizes = dict(rise=200, ig=32, curve=32, mu=64, layer="block3_conv3")  # 256 channels
    if args.quick:
        sizes = dict(rise=40, ig=16, curve=16, mu=32, layer="block1_conv2")  # 64 channels
    r = section(vgg, big, rounds, sizes)
    against_quantus(vgg, big, r, rounds, 48)


if __name__ == "__main__":
    main()
