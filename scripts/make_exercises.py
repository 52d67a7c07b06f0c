"""Write the exercise notebooks and their solutions from one source (this file).

    python scripts/make_exercises.py     # notebooks/exercises/*.ipynb and teacher/solutions/

The exercises go to ``notebooks/exercises/`` (what students get, what ``make demo``'s file
browser shows); the solutions go to ``teacher/solutions/``, outside ``notebooks/``, so that a
copy of ``notebooks/`` handed to students does not carry them.

Each exercise is a list of cells; an ``Answer`` cell holds the student's version (an empty
answer) and the solution's version (the worked answer).  Every other cell is the same in
both notebooks, so the two never drift apart.  The notebooks are written without outputs;
``tests/test_notebooks.py`` runs them all.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "notebooks" / "exercises"  # the students' copies
SOLUTIONS = REPO / "teacher" / "solutions"  # the teacher's: never under notebooks/


@dataclass
class Answer:
    """A cell that differs: what the student starts from, and the worked solution."""

    exercise: str
    solution: str


def md(text: str) -> tuple[str, str]:
    return ("markdown", text.strip("\n"))


def code(text: str) -> tuple[str, str]:
    return ("code", text.strip("\n"))


SETUP = """
import matplotlib.pyplot as plt
import numpy as np

import cnnviz_widgets as cw
from cnnviz_widgets import classroom
"""

# --------------------------------------------------------------------------- exercise 1
READING_FILTERS = [
    md("""
# Exercise 1 — Reading filters: which `conv1` filter answers vertical edges?

**You will learn** that a first-layer filter is a small picture of the pattern it answers,
how to read one, and how to test what you read with a feature map.
**Time:** about 15 minutes. Everything runs offline on the embedded shapes model.

Run each cell in order (Shift-Enter). Cells that say `None  # your answer` are yours: replace
`None`, run the cell, then run the check below it. A green ✓ means right; an orange box
gives a hint.
"""),
    code(
        SETUP
        + """
model = cw.load_model("shapes")
session = cw.Session(model, layer="conv1")
"""
    ),
    md("""
## 1. Look at the filters

Each tile is one kernel of `conv1`: 7 × 7 taps for each of the 3 colour channels, shown as a
colour picture (each filter scaled to its own range). The filter's output at a position is
large where the image under the kernel *looks like the kernel*.

A **vertical edge** is where the image changes from dark to light (or light to dark) going
from left to right. Click a few tiles: a filter for vertical edges has a left part and a
right part that differ, and changes little from top to bottom.
"""),
    code("""
cw.FilterGallery(session)
"""),
    md("""
**Task 1a (a prediction, not checked).** Write down the filter you think answers vertical
edges most, *and not horizontal ones*. The kernels' numbers can help: sum each kernel's
right columns minus its left columns (over all colour channels), and its bottom rows minus
its top rows.
"""),
    Answer(
        exercise="""
guess = None  # your prediction: a filter index
""",
        solution="""
kernel = cw.kernel_array(model.model.get_layer("conv1"))  # (7, 7, 3, 16)
left_right = np.abs(kernel[:, 4:].sum(axis=(0, 1, 2)) - kernel[:, :3].sum(axis=(0, 1, 2)))
top_bottom = np.abs(kernel[4:].sum(axis=(0, 1, 2)) - kernel[:3].sum(axis=(0, 1, 2)))
print("left-right contrast:", np.round(left_right, 2))
print("top-bottom contrast:", np.round(top_bottom, 2))
guess = int(np.argmax(left_right - top_bottom))
guess
""",
    ),
    md("""
## 2. Test your prediction

`classroom.edge_image("vertical")` is a gray picture whose left half is dark and right half
light; `classroom.edge_image("horizontal")` is split top and bottom; `polarity=-1` swaps
dark and light. `cw.feature_maps(model, image, "conv1").maps` is the layer's output, shape
`(64, 64, 16)`: one map per filter.
"""),
    code("""
edges = {
    (o, p): classroom.edge_image(o, polarity=p) for o in ("vertical", "horizontal") for p in (1, -1)
}
fig, axes = plt.subplots(2, 4, figsize=(12, 6))
for col, ((o, p), image) in enumerate(edges.items()):
    axes[0, col].imshow(image)
    axes[0, col].set_title(f"{o}, polarity {p}", fontsize=9)
    axes[1, col].imshow(cw.feature_maps(model, image, "conv1").montage.image)
    axes[1, col].set_title("conv1's 16 maps", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
plt.show()
"""),
    md("""
**Task 1b.** For every filter, find its strongest response *on the edge*: the largest
value of its map within 4 pixels of the edge's line (the edge is between pixels 31 and 32),
in the middle half of the image (rows or columns 16 … 47; near the image's border the zero
padding makes edges of its own). Take the stronger of the two polarities. Then compute
*vertical response − horizontal response*: which filter has the largest?
"""),
    Answer(
        exercise="""
answer = None  # the index of the filter that prefers vertical edges most
""",
        solution="""
def response(orientation):
    strongest = 0.0
    for polarity in (1, -1):
        image = classroom.edge_image(orientation, polarity=polarity)
        maps = cw.feature_maps(model, image, "conv1").maps
        near_edge = maps[16:48, 28:36] if orientation == "vertical" else maps[28:36, 16:48]
        strongest = np.maximum(strongest, near_edge.max(axis=(0, 1)))
    return strongest


preference = response("vertical") - response("horizontal")
print(np.round(preference, 2))
answer = int(np.argmax(preference))
answer
""",
    ),
    code("""
classroom.check_vertical_edge_filter(answer, model)
"""),
    md("""
Was your prediction right? If not, look at the two filters side by side in the gallery:
the colours matter too (a kernel can compare red with green rather than dark with light).

## 3. See it on a picture

Where does your filter light up on a generated square? (Run this after you have an answer.)
"""),
    code("""
square = cw.sample_image("square", seed=2)
maps = cw.feature_maps(model, square, "conv1")
if answer is not None:
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
    axes[0].imshow(square)
    axes[1].imshow(maps.overlay(int(answer)))
    axes[1].set_title(f"conv1 filter {answer}")
    for ax in axes:
        ax.axis("off")
    plt.show()
"""),
    md("""
**To think about.** Does your filter answer both polarities of the edge, or only one? Why
might the network need a separate filter for each? Some filters answer nothing at all on
these images: what do their kernels look like?
"""),
]

# --------------------------------------------------------------------------- exercise 2
ONE_CONVOLUTION = [
    md("""
# Exercise 2 — One convolution value, by hand

**You will learn** exactly what a `Conv2D` layer computes at one position: the window of the
input under the kernel, multiplied tap by tap with the kernel over *all* input channels,
summed, plus the bias, then the activation function; and what `padding="same"` does at the
border. **Time:** about 20 minutes.

Fill in the cells marked `None  # your answer`, run them, then run the check below each.
"""),
    code(
        SETUP
        + """
model = cw.load_model("shapes")
image = cw.sample_image("cross", seed=3)  # (64, 64, 3), values in [0, 1]: the model's input
layer = model.model.get_layer("conv1")
kernel, bias = layer.get_weights()
config = layer.get_config()
print("kernel", kernel.shape, "bias", bias.shape)
print({k: config[k] for k in ("kernel_size", "strides", "padding", "dilation_rate", "activation")})
"""
    ),
    md("""
`kernel[i, j, c, f]` is the tap at row `i`, column `j`, input channel `c` of filter `f`;
`bias[f]` is filter `f`'s bias. This model takes the image as it is (values in [0, 1]), so
the layer's input is `image` itself. The gallery shows the numbers of a filter when you
click it (pick the view *channel* to read one input channel at a time).
"""),
    code("""
session = cw.Session(model, layer="conv1", channel=10)
cw.FilterGallery(session)
"""),
    md("""
**Task 2a.** The output of `conv1` at row `Y = 36`, column `X = 28`, filter `C = 10`, *before*
the activation. The layer uses `padding="same"` and stride 1: the 7 × 7 window is centred
on `(Y, X)`.
"""),
    code("""
Y, X, C = 36, 28, 10
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(image)
ax.add_patch(plt.Rectangle((X - 3.5, Y - 3.5), 7, 7, fill=False, color="yellow", lw=2))
ax.set_title(f"the window of unit ({Y}, {X})")
ax.axis("off")
plt.show()
"""),
    Answer(
        exercise="""
pre_activation = None  # your answer: sum of the products, plus the bias
""",
        solution="""
half = kernel.shape[0] // 2  # 3: the window reaches 3 pixels each side of its centre
window = image[Y - half : Y + half + 1, X - half : X + half + 1, :]  # (7, 7, 3)
pre_activation = float((window * kernel[:, :, :, C]).sum() + bias[C])
pre_activation
""",
    ),
    code("""
classroom.check_pre_activation(pre_activation, model, image, channel=C, y=Y, x=X)
"""),
    md("""
**Task 2b.** The layer's *output*, after its activation (`relu`: `max(0, z)`), at row 24,
column 40, for filters 7, 8 and 9: one number per filter. Some of the three sums are
positive, some negative.
"""),
    Answer(
        exercise="""
outputs = None  # your answer: [output of filter 7, filter 8, filter 9] at (24, 40)
""",
        solution="""
window = image[24 - half : 24 + half + 1, 40 - half : 40 + half + 1, :]
sums = [float((window * kernel[:, :, :, f]).sum() + bias[f]) for f in (7, 8, 9)]
outputs = [max(z, 0.0) for z in sums]
print("sum + bias:", np.round(sums, 3), "-> relu ->", np.round(outputs, 3))
outputs
""",
    ),
    code("""
classroom.check_output_vector(outputs, model, image, channels=(7, 8, 9), y=24, x=40)
"""),
    md("""
**Task 2c.** At the corner: filter 2 at row 0, column 0, *before* the activation. The window
centred on (0, 0) hangs over the image's border. `padding="same"` means the layer pretends
the image is surrounded by zeros (`np.pad` can do that).
"""),
    Answer(
        exercise="""
corner = None  # your answer: the sum + bias of filter 2 at (0, 0)
""",
        solution="""
padded = np.pad(image, ((half, half), (half, half), (0, 0)))  # zeros around the image
window = padded[0 : 2 * half + 1, 0 : 2 * half + 1, :]  # centred on (0, 0) of the image
corner = float((window * kernel[:, :, :, 2]).sum() + bias[2])
corner
""",
    ),
    code("""
classroom.check_pre_activation(corner, model, image, channel=2, y=0, x=0)
"""),
    md("""
## Compare with the model

The model's own output at those positions: each task's value appears here once its check
passes (run the checks above first).
"""),
    code("""
maps = cw.feature_maps(model, image, "conv1").maps
tasks = {
    "2a": classroom.check_pre_activation(pre_activation, model, image, channel=C, y=Y, x=X),
    "2b": classroom.check_output_vector(outputs, model, image, channels=(7, 8, 9), y=24, x=40),
    "2c": classroom.check_pre_activation(corner, model, image, channel=2, y=0, x=0),
}
for task, result in tasks.items():
    print(f"task {task}:", result.message if result else "not shown until its check passes")
if tasks["2a"]:
    plt.figure(figsize=(3.5, 3.5))
    plt.imshow(maps[:, :, C], cmap="viridis")
    plt.title(f"conv1 filter {C}: the whole map, after relu")
    plt.axis("off")
    plt.show()
"""),
    md("""
**To think about.** Why is the sum over *all three* colour channels, not one? What would
change with `padding="valid"` (the output would be 58 × 58: why)?
"""),
]

# --------------------------------------------------------------------------- exercise 3
RECEPTIVE_FIELDS = [
    md("""
# Exercise 3 — Receptive fields: which input pixels can change one unit of `conv3`?

**You will learn** how each convolution and each pooling layer widens the window of the
input that a unit depends on, how to compute that window layer by layer, and why the
gradient on one image is not the whole answer. **Time:** about 20 minutes.
"""),
    code(
        SETUP
        + """
model = cw.load_model("shapes")
print(cw.layer_table(model))
"""
    ),
    md("""
The layer browser shows each layer's `get_config()`: `kernel_size` (or `pool_size`),
`strides` and `padding`.
"""),
    code("""
session = cw.Session(model, layer="conv3")
cw.LayerBrowser(session)
"""),
    md("""
## Walking down, one layer at a time

Start from the unit: rows `y … y` of `conv3`'s output. A layer with kernel size `k`,
stride `s` and padding `p` (for `padding="same"` and an odd `k`: `p = (k - 1) // 2`; for
`"valid"`: `p = 0`) computes output row `r` from input rows `r*s - p … r*s - p + k - 1`.
So output rows `a … b` come from input rows `a*s - p … b*s - p + k - 1`. Do this for
`conv3`, `pool2`, `conv2`, `pool1`, `conv1`, in that order, and you have the rows of the
image. Columns work the same way. Rows outside the image (below 0 or above 63) do not
exist: stop at the border.

**Task 3a.** Which pixels of the 64 × 64 input can change unit **(5, 6)** of `conv3` (any
channel)? Answer with `(rows, cols)`, as ranges: `(range(first_row, last_row + 1),
range(first_col, last_col + 1))`.
"""),
    Answer(
        exercise="""
answer = None  # your answer: (range(...), range(...))
""",
        solution="""
below_conv3 = ["conv3", "pool2", "conv2", "pool1", "conv1"]  # walking down


def input_window(first, last, size=64):
    for name in below_conv3:
        config = model.model.get_layer(name).get_config()
        k = (config.get("kernel_size") or config.get("pool_size"))[0]
        s = config["strides"][0]
        p = (k - 1) // 2 if config["padding"] == "same" else 0
        first, last = first * s - p, last * s - p + k - 1
    return range(max(first, 0), min(last, size - 1) + 1)


answer = (input_window(5, 5), input_window(6, 6))
answer
""",
    ),
    code("""
classroom.check_receptive_field(answer, model, "conv3", 5, 6)
"""),
    md("""
**Task 3b.** The same for unit **(0, 0)** of `conv3`, in the corner.
"""),
    Answer(
        exercise="""
corner = None  # your answer: (range(...), range(...))
""",
        solution="""
corner = (input_window(0, 0), input_window(0, 0))
corner
""",
    ),
    code("""
classroom.check_receptive_field(corner, model, "conv3", 0, 0)
"""),
    md("""
## See it, and a trap

The gradient of the unit with respect to the input says which pixels change it *on this
image*. Draw your window over it. Pixels with a zero gradient inside your window are not a
mistake in your window: on this image a ReLU that is off, or a max-pool that picked a
neighbour, blocks them; on another image they get through.
"""),
    code("""
import keras
import tensorflow as tf

image = cw.sample_image("ring", seed=1)
upto_conv3 = keras.Model(model.model.inputs, model.model.get_layer("conv3").output)
x = tf.constant(image[None])
with tf.GradientTape() as tape:
    tape.watch(x)
    unit = tf.reduce_sum(upto_conv3(x)[0, 5, 6, :])
grad = np.abs(tape.gradient(unit, x).numpy()[0]).max(axis=-1)

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(image)
if answer is None:  # the picture would give the answer away: answer task 3a first
    print("answer task 3a first: the gradient's picture appears here then")
else:
    axes[1].imshow(grad > 0, cmap="gray")
    axes[1].set_title("pixels with a non-zero gradient")
    rows, cols = answer
    box = plt.Rectangle(
        (cols[0] - 0.5, rows[0] - 0.5), len(cols), len(rows), fill=False, color="orange", lw=2
    )
    axes[1].add_patch(box)
    inside = grad[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    print(f"{(inside == 0).sum()} of the {inside.size} pixels in the window have a zero gradient")
for ax in axes:
    ax.axis("off")
plt.show()
"""),
    md("""
**To think about.** How wide is the receptive field of a `conv4` unit? Of the class
output, after the global average pooling?
"""),
]

# --------------------------------------------------------------------------- exercise 4
TWO_MODELS = [
    md("""
# Exercise 4 — What did two models learn? The robust and the standard shapes model

The package ships two models with the **same architecture**, trained on the **same
generated shapes**. `shapes-standard` was trained on the images as they are;
`shapes-robust` was trained on *adversarial* versions of them (each image nudged a little in
the direction that fools the model most) and with a penalty on rough first-layer kernels.
Both classify clean images almost perfectly. Did they learn the same thing?

**You will learn** to compare models by their filters, by their gradients and by the
pictures they draw. **Time:** about 25 minutes.
"""),
    code("""
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

import cnnviz_widgets as cw
from cnnviz_widgets import classroom

robust = cw.load_model("shapes-robust")
standard = cw.load_model("shapes-standard")
models = {"robust": robust, "standard": standard}
"""),
    md("""
## 1. Filters

The two `conv1` layers side by side: click tiles to read their numbers.
"""),
    code("""
widgets.HBox([cw.FilterGallery(cw.Session(m, layer="conv1")) for m in models.values()])
"""),
    code("""
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax, (name, m) in zip(axes, models.items()):
    ax.imshow(cw.filter_montage(m, "conv1", scale=8).image)
    ax.set_title(f"{name}: conv1")
    ax.axis("off")
plt.show()
"""),
    md("""
**Task 4a.** Whose `conv1` filters are **smoother**? Measure it: for each filter, add up the
squared differences between neighbouring taps (down the rows and along the columns, all
colour channels) and divide by the filter's summed squared taps; average over the filters
(leave out filters that are all zeros). Smaller is smoother. Answer `"robust"` or
`"standard"`.
"""),
    Answer(
        exercise="""
answer = None  # your answer: "robust" or "standard"
""",
        solution="""
def roughness(m):
    k = cw.kernel_array(m.model.get_layer("conv1")).astype(float)  # (7, 7, 3, 16)
    jumps = ((k[1:] - k[:-1]) ** 2).sum(axis=(0, 1, 2)) + ((k[:, 1:] - k[:, :-1]) ** 2).sum(
        axis=(0, 1, 2)
    )
    energy = (k**2).sum(axis=(0, 1, 2))
    live = energy > 1e-6 * energy.max()
    return float((jumps[live] / energy[live]).mean())


rough = {name: roughness(m) for name, m in models.items()}
print(rough)
answer = min(rough, key=rough.get)
answer
""",
    ),
    code("""
classroom.check_smoother_filters(answer, models)
"""),
    md("""
## 2. Gradients

`cw.saliency(model, image, class)` is the gradient of the class score with respect to each
pixel: which pixels, changed a little, change the answer most. The generator gives each
image's object mask, so you can measure how much of the gradient lies on the object.
"""),
    code("""
batch = cw.generate_shapes(3, seed=5)
fig, axes = plt.subplots(3, 3, figsize=(8, 7.5))
for col, (image, label) in enumerate(zip(batch.images, batch.labels)):
    axes[0, col].imshow(image)
    axes[0, col].set_title(cw.SHAPES_CLASS_NAMES[label], fontsize=9)
    for row, (name, m) in enumerate(models.items(), start=1):
        axes[row, col].imshow(cw.saliency(m, image, int(label)).heatmap, cmap="magma")
        axes[row, col].set_title(f"{name}: gradient", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
plt.show()
"""),
    md("""
**Task 4b.** On `cw.generate_shapes(18, seed=5)`, for each image take the absolute gradient
of its true class (`np.abs(cw.saliency(m, image, label).raw)`, the largest over the colour
channels) and compute the share of it that lies on the object (`batch.masks`). Average over
the images. Whose gradient lies more on the object?
"""),
    Answer(
        exercise="""
answer = None  # your answer: "robust" or "standard"
""",
        solution="""
batch = cw.generate_shapes(18, seed=5)


def share_on_object(m):
    shares = []
    for image, mask, label in zip(batch.images, batch.masks, batch.labels):
        grad = np.abs(cw.saliency(m, image, int(label)).raw).max(axis=-1)
        shares.append(grad[mask].sum() / grad.sum())
    return float(np.mean(shares))


share = {name: share_on_object(m) for name, m in models.items()}
print(share, "object area:", round(float(batch.masks.mean()), 3))
answer = max(share, key=share.get)
answer
""",
    ),
    code("""
classroom.check_object_saliency(answer, models)
"""),
    md("""
## 3. Pictures

`cw.visualize` draws, for each class, the image the model is most sure about (the class
optimizer's engine). Which model's pictures would a person recognise?
"""),
    code("""
classes = ["circle", "triangle", "cross"]
fig, axes = plt.subplots(2, len(classes), figsize=(8, 5.4))
for row, (name, m) in enumerate(models.items()):
    result = cw.visualize(m, classes, steps=64, seed=0)
    for col, cls in enumerate(classes):
        axes[row, col].imshow(result.images[col])
        axes[row, col].set_title(f"{name}: {cls}", fontsize=9)
        axes[row, col].axis("off")
plt.show()
"""),
    md("""
Try other classes and settings with the panel (pick classes, press **Run**):
"""),
    code("""
cw.ClassOptimizer(cw.Session(robust), steps=64)
"""),
    md("""
**To think about.** The two models agree on almost every clean image. Why can their
gradients, and the pictures made by following those gradients, still differ so much? What
does training on adversarial examples forbid the model to rely on?
"""),
]


def _from_file(name: str) -> list:
    """The cells of an exercise kept in ``scripts/exercises/<name>.py``."""
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).parent / "exercises" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cells(md, code, Answer)


EXERCISES = {
    "01_reading_filters": READING_FILTERS,
    "02_one_convolution": ONE_CONVOLUTION,
    "03_receptive_fields": RECEPTIVE_FIELDS,
    "04_two_models": TWO_MODELS,
    "05_which_map": _from_file("ex05_which_map"),
}


def build(cells: list, solution: bool, name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(cells):
        if isinstance(cell, Answer):
            text = (cell.solution if solution else cell.exercise).strip("\n")
            new = nbformat.v4.new_code_cell(text)
            new.metadata["tags"] = ["solution" if solution else "answer"]
        else:
            kind, text = cell
            if i == 0 and solution:
                text = text.replace("\n", " — solution\n", 1)
            new = (
                nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
            )(text)
        # stable ids: regenerating writes the same file
        new["id"] = hashlib.sha1(f"{name}/{solution}/{i}".encode()).hexdigest()[:8]
        nb.cells.append(new)
    return nb


def main() -> None:
    SOLUTIONS.mkdir(parents=True, exist_ok=True)
    for name, cells in EXERCISES.items():
        nbformat.write(build(cells, False, name), ROOT / f"{name}.ipynb")
        nbformat.write(build(cells, True, name), SOLUTIONS / f"{name}.ipynb")
        print("wrote", name)


if __name__ == "__main__":
    main()
