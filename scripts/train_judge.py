"""Train the independent judge that tests/test_pictures.py uses to check class pictures.

    python scripts/train_judge.py                # writes tests/data/judge.weights.h5, .json
    python scripts/train_judge.py --epochs 1 --pool 900 --held-out 90 --out /tmp/j  # short

The judge answers one question about an activation-maximization picture: "which of the
nine shapes classes does this show?"  To be a fair witness it shares nothing with the
embedded model (``scripts/train_shapes_model.py``) but the procedural generator:

* architecture: a strided 3x3 stem, 3x3 convolutions with batch norm, max pooling and a
  flattened dense head with dropout (``tests/judge.py: build_judge``); the embedded model
  has a 7x7 first layer, no batch norm and global average pooling;
* seeds: keras seed 1729 and generator seeds from 7_100_000 up, none of which the
  embedded model's script uses (it uses 0..N, 10_000 and 20261128);
* data: every epoch augments a pool of generated images afresh (numpy, seeded) so the
  judge must read the SHAPE through the odd statistics of optimized pictures: 1/f
  coloured noise textures on the background, on the object or over everything, extra
  copies of the object (pictures often repeat a motif), channel permutations, colour
  gains, grey scale, inversion, contrast and brightness changes, blur, gaussian noise,
  flips and transposition (transposing swaps horizontal and vertical stripes, so their
  labels are swapped with it; no 90 degree rotation otherwise), 8-bit quantization;
* "nothing there" images (gradient backgrounds with the same textures and noise but no
  object) are trained towards the uniform distribution, so that a picture without a
  readable shape does not get a confident class.

The judge is only ever used to score pictures: never to train the embedded model or to
choose its weights.  Deterministic (seeded, TensorFlow op determinism, CPU): a second run
on the same machine type writes a byte-identical weights file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnviz_widgets.engine.model.shapes import CLASS_NAMES, generate_shapes  # noqa: E402
from tests.judge import build_judge  # noqa: E402

SEED = 1729  # keras / TensorFlow seed (weights init, dropout)
POOL_SEED = 7_100_000  # generator seeds of the training pool: POOL_SEED + chunk
AUG_SEED = 7_200_000  # numpy seed of the augmentations: AUG_SEED + epoch
VAL_SEED = 7_300_000  # per-epoch validation (clean)
HELD_OUT_SEED = 7_400_000  # the held-out accuracy in judge.json (tests use another seed)
HELD_OUT_AUG_SEED = 7_500_000
BATCH = 64
SIZE = 64
H_STRIPES, V_STRIPES = (
    CLASS_NAMES.index("horizontal_stripes"),
    CLASS_NAMES.index("vertical_stripes"),
)

AUGMENTATIONS = {
    "clean_share": 0.2,  # images left clean (bar flips/transposition and quantization)
    "extra_copy": {"p": 0.25, "note": "a second object of the same class, not overlapping"},
    "object_texture": {"p": 0.3, "amplitude": [0.05, 0.25], "decay": [1.0, 2.0]},
    "background_texture": {"p": 0.5, "amplitude": [0.05, 0.3], "decay": [0.5, 2.0]},
    "overall_texture": {"p": 0.15, "amplitude": [0.03, 0.12], "decay": [0.3, 1.0]},
    "channel_permutation": {"p": 0.5},
    "channel_gain": [0.7, 1.3],
    "grey": {"p": 0.15},
    "invert": {"p": 0.15},
    "contrast": [0.6, 1.5],
    "brightness": [-0.2, 0.2],
    "blur": {"p": 0.3, "sigma": [0.5, 1.3]},
    "gaussian_noise": {"p": 0.6, "sigma": [0.0, 0.1]},
    "flips": "horizontal and vertical, p 0.5 each",
    "transpose": "p 0.5, swapping the labels of horizontal and vertical stripes",
    "quantize": "to 8 bits, like the pictures",
    "nothing_there": {"share": 0.1, "target": "uniform over the 9 classes"},
}


# ------------------------------------------------------------------------ augmentation
def fourier_noise(rng: np.random.Generator, n: int, decay: np.ndarray) -> np.ndarray:
    """``(n, SIZE, SIZE, 3)`` coloured noise with a 1/f**decay spectrum, unit std per image."""
    fy = np.fft.fftfreq(SIZE)[:, None]
    fx = np.fft.rfftfreq(SIZE)[None, :]
    f = np.maximum(np.sqrt(fx**2 + fy**2), 1.0 / SIZE)
    scale = f[None] ** -np.asarray(decay, np.float64)[:, None, None]
    scale[:, 0, 0] = 0.0
    shape = (n, 3, SIZE, SIZE // 2 + 1)
    spec = (rng.normal(size=shape) + 1j * rng.normal(size=shape)) * scale[:, None]
    img = np.fft.irfft2(spec, s=(SIZE, SIZE)).transpose(0, 2, 3, 1)
    img /= img.std(axis=(1, 2, 3), keepdims=True) + 1e-8
    return img.astype(np.float32)


def blur(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Separable gaussian blur (5 taps, reflected edges), one sigma per image."""
    k = np.arange(-2, 3, dtype=np.float32)
    w = np.exp(-(k[None] ** 2) / (2.0 * np.asarray(sigma, np.float32)[:, None] ** 2))
    w /= w.sum(1, keepdims=True)
    for axis in (1, 2):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (2, 2)
        p = np.pad(x, pad, mode="reflect")
        out = np.zeros_like(x)
        for i in range(5):
            sl = [slice(None)] * x.ndim
            sl[axis] = slice(i, i + SIZE)
            out += w[:, i].reshape(-1, *([1] * (x.ndim - 1))) * p[tuple(sl)]
        x = out
    return x


def _pick(rng, n, p):
    return rng.random(n) < p


def _u(rng, lo_hi, n):
    return rng.uniform(lo_hi[0], lo_hi[1], n).astype(np.float32)


def photometric(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Colour, blur and noise changes that keep every class (in place-safe, returns new)."""
    a = AUGMENTATIONS
    n = len(x)
    perm = _pick(rng, n, a["channel_permutation"]["p"])
    for i in np.flatnonzero(perm):
        x[i] = x[i][..., rng.permutation(3)]
    x = x * rng.uniform(*a["channel_gain"], (n, 1, 1, 3)).astype(np.float32)
    grey = _pick(rng, n, a["grey"]["p"])
    x[grey] = x[grey].mean(-1, keepdims=True)
    inv = _pick(rng, n, a["invert"]["p"])
    x[inv] = 1.0 - x[inv]
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    c = _u(rng, a["contrast"], n)[:, None, None, None]
    b = _u(rng, a["brightness"], n)[:, None, None, None]
    x = np.clip((x - mean) * c + mean + b, 0.0, 1.0)
    bl = _pick(rng, n, a["blur"]["p"])
    if bl.any():
        x[bl] = blur(x[bl], _u(rng, a["blur"]["sigma"], int(bl.sum())))
    noisy = _pick(rng, n, a["gaussian_noise"]["p"])
    sig = _u(rng, a["gaussian_noise"]["sigma"], n) * noisy
    x = x + rng.normal(size=x.shape).astype(np.float32) * sig[:, None, None, None]
    return np.clip(x, 0.0, 1.0)


def geometric(rng: np.random.Generator, x: np.ndarray, y: np.ndarray):
    """Flips (every class is invariant) and transposition (swaps the stripes classes)."""
    n = len(x)
    h = _pick(rng, n, 0.5)
    x[h] = x[h][:, :, ::-1]
    v = _pick(rng, n, 0.5)
    x[v] = x[v][:, ::-1]
    t = _pick(rng, n, 0.5)
    x[t] = x[t].transpose(0, 2, 1, 3)
    y = y.copy()
    hs, vs = t & (y == H_STRIPES), t & (y == V_STRIPES)
    y[hs], y[vs] = V_STRIPES, H_STRIPES
    return x, y


def quantize(x: np.ndarray) -> np.ndarray:
    return (np.rint(np.clip(x, 0, 1) * 255.0) / 255.0).astype(np.float32)


def augment(rng, images, masks, labels, by_class):
    """One augmented copy of the pool images ``images[i]`` (returns images, labels)."""
    a = AUGMENTATIONS
    n = len(images)
    x = images.copy()
    m = masks.astype(np.float32)
    y = labels.copy()
    clean = _pick(rng, n, a["clean_share"])
    # extra copy of the object, from another pool image of the same class
    extra = _pick(rng, n, a["extra_copy"]["p"]) & ~clean
    for i in np.flatnonzero(extra):
        j = rng.choice(by_class[y[i]])
        mi, mj = masks[i], masks[j]
        if (mi & mj).sum() > 0.05 * min(mi.sum(), mj.sum()):
            continue
        soft = blur(mj[None, ..., None].astype(np.float32), np.array([0.6]))[0]
        x[i] = x[i] * (1 - soft) + images[j] * soft
        m[i] = np.maximum(m[i], soft[..., 0])
    soft_m = blur(m[..., None], np.full(n, 0.6, np.float32))
    for key, region in (
        ("object_texture", soft_m),
        ("background_texture", 1.0 - soft_m),
        ("overall_texture", None),
    ):
        sel = _pick(rng, n, a[key]["p"]) & ~clean
        k = int(sel.sum())
        if not k:
            continue
        tex = fourier_noise(rng, k, _u(rng, a[key]["decay"], k))
        tex *= _u(rng, a[key]["amplitude"], k)[:, None, None, None]
        x[sel] += tex if region is None else tex * region[sel]
    x = np.clip(x, 0.0, 1.0)
    x[~clean] = photometric(rng, x[~clean])
    x, y = geometric(rng, x, y)
    return quantize(x), y


def nothing_there(rng: np.random.Generator, n: int) -> np.ndarray:
    """Images with no object: gradient backgrounds, textures, noise, the same photometry."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE - 0.5
    ang = rng.uniform(0, 2 * np.pi, n)
    t = np.cos(ang)[:, None, None] * xx + np.sin(ang)[:, None, None] * yy
    t = (t - t.min((1, 2), keepdims=True)) / (np.ptp(t, (1, 2), keepdims=True) + 1e-6)
    c0 = rng.uniform(0.1, 0.9, (n, 1, 1, 3))
    c1 = np.clip(c0 + rng.normal(0, 0.25, (n, 1, 1, 3)), 0.05, 0.95)
    x = (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.float32)
    amp = rng.uniform(0.0, 0.4, n).astype(np.float32)
    x += fourier_noise(rng, n, rng.uniform(0.3, 2.0, n)) * amp[:, None, None, None]
    x = photometric(rng, np.clip(x, 0.0, 1.0))
    return quantize(x)


# ----------------------------------------------------------------------------- training
def generate_pool(n: int, seed: int, chunk: int = 2000):
    parts = [
        generate_shapes(min(chunk, n - s), seed=seed + k) for k, s in enumerate(range(0, n, chunk))
    ]
    return (
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.masks for p in parts]),
        np.concatenate([p.labels for p in parts]),
    )


def accuracy(model, x, y) -> float:
    return float(np.mean(model.predict(x, batch_size=256, verbose=0).argmax(1) == y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--pool", type=int, default=9000, help="generated images")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--held-out", type=int, default=3000, help="images for judge.json")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data")
    args = parser.parse_args()

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    start = time.time()
    images, masks, labels = generate_pool(args.pool, POOL_SEED)
    by_class = [np.flatnonzero(labels == c) for c in range(len(CLASS_NAMES))]
    val = generate_shapes(min(900, args.pool), seed=VAL_SEED)
    print(f"pool of {len(images)} images generated in {time.time() - start:.0f} s", flush=True)

    n_nothing = round(args.pool * AUGMENTATIONS["nothing_there"]["share"])
    per_epoch = (args.pool + n_nothing) // BATCH * BATCH
    model = build_judge()
    schedule = keras.optimizers.schedules.CosineDecay(
        args.lr, decay_steps=args.epochs * per_epoch // BATCH, alpha=0.02
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
        loss=keras.losses.CategoricalCrossentropy(),
    )
    eye = np.eye(len(CLASS_NAMES), dtype=np.float32)
    uniform = np.full((n_nothing, len(CLASS_NAMES)), 1.0 / len(CLASS_NAMES), np.float32)
    for epoch in range(args.epochs):
        rng = np.random.default_rng(AUG_SEED + epoch)
        t0 = time.time()
        x, y = augment(rng, images, masks, labels, by_class)
        x = np.concatenate([x, nothing_there(rng, n_nothing)])
        t = np.concatenate([eye[y], uniform])
        order = rng.permutation(len(x))[:per_epoch]
        t1 = time.time()
        hist = model.fit(x[order], t[order], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        print(
            f"epoch {epoch + 1}/{args.epochs}: loss {hist.history['loss'][-1]:.4f}, clean "
            f"val accuracy {accuracy(model, val.images, val.labels):.4f} "
            f"(augment {t1 - t0:.0f} s, fit {time.time() - t1:.0f} s)",
            flush=True,
        )
    seconds = time.time() - start

    held = generate_shapes(args.held_out, seed=HELD_OUT_SEED)
    clean_acc = accuracy(model, held.images, held.labels)
    rng = np.random.default_rng(HELD_OUT_AUG_SEED)
    by_held = [np.flatnonzero(held.labels == c) for c in range(len(CLASS_NAMES))]
    xa, ya = augment(rng, held.images, held.masks, held.labels, by_held)
    aug_acc = accuracy(model, xa, ya)
    noise_p = model.predict(nothing_there(rng, 500), verbose=0).max(1)
    print(f"held-out accuracy: clean {clean_acc:.4f}, augmented {aug_acc:.4f}")
    print(f"'nothing there' images: mean top probability {noise_p.mean():.3f}")

    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / "judge.weights.h5"
    model.save_weights(str(weights))
    meta = {
        "purpose": "independent judge of the class pictures (tests/test_pictures.py); never "
        "used to train the embedded model or to choose its weights",
        "class_names": list(CLASS_NAMES),
        "architecture": "tests/judge.py build_judge: 3x3 stride-2 stem 24, conv 32, maxpool, "
        "conv 48 x2, maxpool, conv 96, maxpool, flatten, dropout 0.3, dense softmax; every "
        "conv 3x3 with batch norm and ReLU",
        "parameters": int(model.count_params()),
        "input": "RGB in [0, 1], 64x64",
        "training": {
            "script": "scripts/train_judge.py",
            "keras_seed": SEED,
            "pool_seed": POOL_SEED,
            "augmentation_seed": AUG_SEED,
            "pool_images": int(args.pool),
            "epochs": int(args.epochs),
            "images_per_epoch": int(per_epoch),
            "batch": BATCH,
            "optimizer": f"AdamW, cosine decay from {args.lr}, weight decay 1e-4",
            "loss": "cross-entropy; 'nothing there' images towards the uniform distribution",
            "augmentations": AUGMENTATIONS,
            "seconds": round(seconds, 1),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "held_out": {
            "seed": HELD_OUT_SEED,
            "images": len(held),
            "clean_accuracy": round(clean_acc, 4),
            "augmented_accuracy": round(aug_acc, 4),
            "augmentation_seed": HELD_OUT_AUG_SEED,
            "nothing_there_mean_top_probability": round(float(noise_p.mean()), 4),
        },
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
    }
    (args.out / "judge.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) in {seconds:.0f} s")


if __name__ == "__main__":
    main()
