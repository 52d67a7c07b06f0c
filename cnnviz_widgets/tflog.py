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

``import keras`` (or ``tensorflow``) *before* ``import cnnviz_widgets`` imports TensorFlow
unfiltered: its import lines are written then, before this package is imported, and no
setting silences them (``TF_CPP_MIN_LOG_LEVEL`` and ``%env`` do not: they are written before
TensorFlow's logging reads it; TensorFlow 2.21 writes its block twice, once per library
that starts its log).  The runtime's start, which prints the failed ``cuInit``, usually
comes later and is still filtered here.  So import cnnviz_widgets first: ``import keras``
after it prints nothing (docs/teaching.md).
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


def _driver_absent() -> bool:
    """No CUDA driver library can be loaded here (``libcuda.so.1``): a failed ``cuInit`` is
    then the expected answer of a machine without a GPU."""
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return True
    return False


def filter_start_up(text: str, no_driver: bool | None = None) -> str:
    """``text`` without TensorFlow's start-up lines.  The failed ``cuInit`` error is only
    dropped when TensorFlow also said that there is no CUDA driver, in ``text`` or (when
    that line was printed before, TensorFlow imported earlier) as ``no_driver`` says (no
    GPU: expected); on a machine with a driver it stays, as the real error it is."""
    lines = text.splitlines(keepends=True)
    no_driver = bool(no_driver) or any(_NO_DRIVER.search(line) for line in lines)
    kept = [
        line
        for line in lines
        if not _NOISE.search(line) and not (no_driver and _CUINIT.search(line))
    ]
    return "".join(kept)


def import_tensorflow():
    """Import TensorFlow (see the module's docstring) and return it."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        import tensorflow as tf

        return tf
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # TensorFlow imported already (``import keras`` first): its import lines are printed
    # and cannot be taken back, but its runtime may not have started yet, and starting it
    # prints the failed cuInit line; that one is still filtered below (starting a runtime
    # that runs already prints nothing and costs nothing).
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
            text = capture.read().decode("utf-8", "replace")
            earlier = _CUINIT.search(text) and not _NO_DRIVER.search(text)
            rest = filter_start_up(text, no_driver=bool(earlier) and _driver_absent())
            if rest:
                os.write(2, rest.encode())
    return tf
