"""TensorFlow imported without its start-up log lines (unless you asked for its log).

TensorFlow's C++ runtime prints a few lines when it is imported and when it first looks for
devices: that no CUDA driver was found (on a machine without a GPU), which CPU instructions
it was built for, and a failed ``cuInit`` *error* line (the same missing driver).  With
TensorFlow 2.21 some are written before its logging is set up, so ``TF_CPP_MIN_LOG_LEVEL``
does not silence them, and a Jupyter kernel forwards the process's own stderr (file
descriptor 2) into the notebook cell, in red.

:func:`import_tensorflow` therefore, when the user has **not** set ``TF_CPP_MIN_LOG_LEVEL``:

* sets it to ``"2"`` (TensorFlow's C++ info and warning lines hidden, its errors shown);
* imports TensorFlow and starts its runtime with file descriptor 2 sent to a temporary file,
  then writes back every line that is not one of the start-up lines listed in
  :data:`START_UP_NOISE` (so an unexpected message, a real error among them, is still seen).

Set ``TF_CPP_MIN_LOG_LEVEL`` yourself (``0`` shows everything) before importing
cnnviz_widgets to keep TensorFlow's log as it is.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

__all__ = ["START_UP_NOISE", "filter_start_up", "import_tensorflow"]

START_UP_NOISE = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU",
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register factory",
    r"computation_placer\.cc:\d+\] computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
)
"""Patterns of the lines TensorFlow prints while it starts on a machine without a GPU."""

_NO_DRIVER = re.compile(r"Could not find cuda drivers|cuda_driver\.cc:\d+\] .*no CUDA-capable")
_CUINIT = re.compile(r"cuda_platform\.cc:\d+\] failed call to cuInit")
_NOISE = re.compile("|".join(START_UP_NOISE))


def filter_start_up(text: str) -> str:
    """``text`` without TensorFlow's start-up lines.  The failed ``cuInit`` error is only
    dropped when TensorFlow also said that there is no CUDA driver (no GPU: expected); on a
    machine with a driver it stays, as the real error it is."""
    lines = text.splitlines(keepends=True)
    no_driver = any(_NO_DRIVER.search(line) for line in lines)
    kept = [
        line
        for line in lines
        if not _NOISE.search(line) and not (no_driver and _CUINIT.search(line))
    ]
    return "".join(kept)


def import_tensorflow():
    """Import TensorFlow (see the module's docstring) and return it."""
    if "tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        import tensorflow as tf

        return tf
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to keep clean
        import tensorflow as tf

        return tf
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.zeros(())  # starts the runtime, which looks for devices (the cuInit line)
        finally:
            try:
                sys.stderr.flush()  # what Python wrote meanwhile goes through the filter too
            except (OSError, ValueError, AttributeError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            rest = filter_start_up(capture.read().decode("utf-8", "replace"))
            if rest:
                os.write(2, rest.encode())
    return tf
