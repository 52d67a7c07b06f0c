"""Exercise 5, "Which map can you trust?": the cells, for ``scripts/make_exercises.py``.

Kept in its own file; ``cells(md, code, Answer)`` takes the generator's cell helpers.
"""


def cells(md, code, Answer) -> list:
    """The exercise's cells (``Answer`` cells: the student's and the solution's version)."""
    return [
        md("""
# Exercise 5 — Which map can you trust? The sanity check for attribution maps

An attribution map says where in the image the evidence for a class is. There are many
methods, and their maps all look plausible. Adebayo et al. (2018) asked a simple question:
**does the map change when the model's knowledge is destroyed?** Re-initialize the layers
of a copy of the model one after the other, from the top (the classifier) down, and redraw
each map after each step. A map that stays the same cannot be explaining what the model
learned.

**You will learn** to run the cascading randomization test and to read it. **Time:** about
20 minutes.
"""),
        code("""
import matplotlib.pyplot as plt
import numpy as np

import cnnviz_widgets as cw
from cnnviz_widgets import classroom

model = cw.load_model("shapes")
methods = list(classroom.TRUST_METHODS)  # five methods of the registry
settings = {"integrated_gradients": {"steps": 16}, "vargrad": {"samples": 8}}  # quick
batch = cw.generate_shapes(3, seed=21)
print(methods)
"""),
        md("""
## 1. Five maps of one image

Each method through the one door, `cw.explain(model, image, method, target)`, with the
deletion AUC under each map (the class probability as the map's most important pixels are
removed first: lower means the map found pixels the model needs).
"""),
        code("""
image, label = batch.images[0], int(batch.labels[0])
fig, axes = plt.subplots(1, len(methods) + 1, figsize=(13, 2.8))
axes[0].imshow(image)
axes[0].set_title(cw.SHAPES_CLASS_NAMES[label], fontsize=9)
for ax, m in zip(axes[1:], methods):
    r = cw.explain(model, image, m, label, **settings.get(m, {}))
    ax.imshow(r.overlay("jet", 0.55))
    auc = cw.deletion(model, None, r).auc
    ax.set_title(f"{cw.method_info(m).label}\\ndeletion {auc:.2f}", fontsize=9)
for ax in axes:
    ax.axis("off")
plt.show()
"""),
        md("""
## 2. The sanity check

`cw.randomization_test` works on a **copy** of the model (your model is never changed). Its
`steps` are the layers re-initialized, top down and cumulatively; `correlations[method]`
is the Spearman rank correlation of the map at each step with the original map (1: the
same ranking of pixels; 0: unrelated).
"""),
        code("""
res = cw.randomization_test(model, image, methods, label, params=settings, seed=1)
print(res.steps)
print(res.table())
fig, axes = plt.subplots(len(methods), len(res.steps), figsize=(10, 9))
for row, m in enumerate(methods):
    for col, heat in enumerate(res.maps[m]):
        axes[row, col].imshow(heat, cmap="jet", vmin=0, vmax=1)
        axes[row, col].set_title(f"{m if col == 0 else res.steps[col]}", fontsize=8)
        axes[row, col].axis("off")
plt.show()
for m in methods:
    plt.plot(res.correlations[m], marker="o", label=m)
plt.xticks(range(len(res.steps)), res.steps)
plt.ylabel("rank correlation with the original map")
plt.legend()
plt.show()
"""),
        md("""
**Task 5a.** One image can mislead. Run the test on the three images of `batch` (each with
its true class, `params=settings`, `seed=1`) and average, for each method, the correlation
after the **first** step, when only the top layer (`predictions`, the classifier) is random.
Which method's map stays the most like itself, although the layer that decides the class
is now random? Answer with its name.
"""),
        Answer(
            exercise="""
answer = None  # your answer: one of the names in `methods`
""",
            solution="""
tests = [
    cw.randomization_test(model, img, methods, int(lab), params=settings, seed=1)
    for img, lab in zip(batch.images, batch.labels)
]
top = {m: float(np.mean([t.correlations[m][1] for t in tests])) for m in methods}
every = {m: float(np.mean([t.correlations[m][-1] for t in tests])) for m in methods}
print("after the top layer:", {m: round(v, 2) for m, v in top.items()})
print("after every layer:  ", {m: round(v, 2) for m, v in every.items()})
answer = max(top, key=top.get)
answer
""",
        ),
        code("""
classroom.check_top_layer_blind(answer, model)
"""),
        md("""
**Task 5b.** Now the last step, every layer random. Which methods **pass** the sanity
check, that is, whose maps fall apart (mean correlation below 0.5 on the three images)?
Answer with a list of names.
"""),
        Answer(
            exercise="""
answer = None  # your answer: a list of names, e.g. ["saliency"]
""",
            solution="""
answer = [m for m in methods if every[m] < 0.5]
answer
""",
        ),
        code("""
classroom.check_trustworthy(answer, model)
"""),
        md("""
## 3. In the panel

The Explain panel has the same check: pick methods under **Compare methods**, press
**Compare** (each map with its deletion and insertion AUC) and **Sanity check** (the maps
at every step of the randomization, and the correlation curve).
"""),
        code("""
explainer = cw.ImageExplainer(model, image=image)
explainer.compare.methods.value = tuple(methods)
explainer
"""),
        md("""
**To think about.** A map can pass the sanity check and still be hard to read, or fail it
and look convincing. Why does a method that passes the check on the top layer only (but
fails it with every layer random) still tell you something about the *image*, and not
about the *model*? Which of the five would you show a colleague, and with which caveat?
"""),
    ]
