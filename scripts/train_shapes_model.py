"""Reproduce the embedded model's shipped weights.

    python scripts/train_shapes_model.py            # writes cnnviz_widgets/data/

Seeded and deterministic (TensorFlow op determinism on, CPU): the same machine type gives
the same weights.  Each epoch draws fresh images from the procedural generator, so the
model never sees an image twice.  Takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cnnviz_widgets.engine.embedded import META_FILE, WEIGHTS_FILE, build_shapes_cnn
from cnnviz_widgets.engine.shapes import CLASS_NAMES, generate_shapes

TEST_SEED = 20261128  # the held-out set reported in the metadata (tests draw another)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--per-epoch", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("cnnviz_widgets/data"))
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_shapes_cnn()
    steps = args.epochs * (args.per_epoch // 64)
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-4, steps - 500, alpha=0.01, warmup_target=2e-3, warmup_steps=500
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    val = generate_shapes(2000, seed=args.seed + 10_000)
    start = time.time()
    for epoch in range(args.epochs):
        data = generate_shapes(args.per_epoch, seed=args.seed + 1 + epoch)
        model.fit(
            data.images,
            data.labels,
            batch_size=64,
            epochs=1,
            shuffle=False,
            validation_data=(val.images, val.labels),
            verbose=2,
        )
        print(f"epoch {epoch + 1}/{args.epochs} done at {time.time() - start:.0f} s", flush=True)

    test = generate_shapes(3000, seed=TEST_SEED)
    probs = model.predict(test.images, batch_size=256, verbose=0)
    accuracy = float(np.mean(probs.argmax(1) == test.labels))
    print(f"held-out accuracy: {accuracy:.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_weights(args.out / WEIGHTS_FILE)
    meta = {
        "class_names": list(CLASS_NAMES),
        "input_size": [64, 64, 3],
        "preprocessing": "unit",
        "output": "softmax",
        "training": {
            "seed": args.seed,
            "epochs": args.epochs,
            "images_per_epoch": args.per_epoch,
            "seconds": round(time.time() - start, 1),
            "held_out_seed": TEST_SEED,
            "held_out_accuracy": round(accuracy, 4),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    }
    (args.out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
