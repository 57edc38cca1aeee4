"""A model card: what a checkpoint is, how well it does and how to use it, as Markdown.

``lightning-cv zoo export`` writes one beside every export (``lenet5.mnist.md``); the W&B
publisher puts the same text on the artifact, written from a loaded
:class:`~lightning_cv.zoo.Pretrained` (its checkpoint's preprocessing record and zoo entry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning_cv.hub.manifest import ZooEntry

if TYPE_CHECKING:
    from lightning_cv.zoo.pretrained import Pretrained

__all__ = ["render_model_card"]


def render_model_card(pretrained: Pretrained) -> str:
    """The Markdown card of a loaded model: name, metrics, recipe, preprocessing, classes,
    sha256, where it was trained and how to load, export and serve it.

    Example:
        >>> from lightning_cv import zoo
        >>> render_model_card(zoo.load("lenet5.mnist")).splitlines()[0]
        '# lenet5.mnist'
    """
    return _card(pretrained)


def _card(pretrained: Pretrained) -> str:
    sections = [f"# {pretrained.name}\n\n{_summary(pretrained)}", _metrics(pretrained.entry),
                _training(pretrained), _preprocessing(pretrained), _classes(pretrained.class_names),
                _usage(pretrained)]  # fmt: skip
    return "\n\n".join(section for section in sections if section) + "\n"


def _summary(pretrained: Pretrained) -> str:
    entry = pretrained.entry
    where = "a lightning-cv checkpoint"
    if entry is not None:
        where = f"the lightning-cv zoo's {entry.dataset} classifier"
    lines = [f"Image classifier: {where}, {len(pretrained.class_names)} classes.", "",
             f"- Checkpoint sha256: `{pretrained.sha256}`"]  # fmt: skip
    if entry is not None:
        lines += [f"- Data module: `{entry.datamodule}` (official test split for the metrics)",
                  f"- Weights: {entry.weights_dtype}, {entry.file_size:,} bytes",
                  f"- Recipe: `{entry.recipe}`"]  # fmt: skip
    return "\n".join(lines)


def _metrics(entry: ZooEntry | None) -> str:
    if entry is None:
        return "## Metrics\n\nNot measured: a checkpoint outside the zoo has no recorded metrics."
    labels = {"acc": "top-1", "acc_top5": "top-5", "f1": "macro F1", "acc_tta": "top-1 with TTA"}
    rows = [f"| {labels[key]} | {value:.2f}% |"
            for key, value in entry.metrics.model_dump(exclude_none=True).items()]  # fmt: skip
    if entry.reference_acc is not None:
        rows.append(f"| reference top-1 | {entry.reference_acc:.2f}% ({entry.reference}) |")
    return "## Metrics (test split)\n\n| metric | value |\n| --- | --- |\n" + "\n".join(rows)


def _training(pretrained: Pretrained) -> str:
    entry = pretrained.entry
    if entry is None:
        return ""
    time = "not recorded" if entry.training_time_s is None else f"{entry.training_time_s:.0f} s"
    lines = [f"- Trained on: {entry.trained_on or 'not recorded'}",
             f"- Training time: {time}; the date is not recorded in the zoo manifest"]  # fmt: skip
    if entry.note:
        lines.append(f"- Note: {entry.note}")
    return "## Training\n\n" + "\n".join(lines)


def _preprocessing(pretrained: Pretrained) -> str:
    record = pretrained.preprocessing
    (height, width), channels = record.image_size, record.in_channels
    colour = "grey" if channels == 1 else "RGB"
    views = record.tta
    tta = "none" if views is None else ", ".join(f"{k}={v}" for k, v in views.model_dump().items())
    return (
        "## Preprocessing\n\n"
        f"- Input: {channels} x {height} x {width} (C x H x W), {colour}\n"
        f"- Eval transform: `{record.eval_transform}`; pixels / 255, then "
        f"(x - mean) / std with mean {list(record.mean)} and std {list(record.std)}\n"
        f"- Test-time augmentation: {tta}"
    )


def _classes(class_names: tuple[str, ...]) -> str:
    rows = "\n".join(f"| {index} | {name} |" for index, name in enumerate(class_names))
    return f"## Classes\n\n| index | class |\n| --- | --- |\n{rows}"


def _usage(pretrained: Pretrained) -> str:
    shape = ", ".join(map(str, pretrained.preprocessing.input_shape))
    classes = len(pretrained.class_names)
    check = (
        ""
        if pretrained.entry is None
        else (
            ", then check it against this checkpoint on the test split (`lightning-cv zoo evaluate "
            f"{pretrained.name}.pt2 --data.root DATA`)"
        )
    )
    return f"""## How to use

```python
from lightning_cv import zoo

model = zoo.load("{pretrained.name}")  # a zoo name, or the .ckpt file
model.predict("image.png", top_k=3)  # [(class name, probability), ...]
```

Export it (`lightning-cv zoo export {pretrained.name} --format pt2`, or `onnx`; `--preprocess true`
bakes the preprocessing in){check}:

```python
import torch

model = torch.export.load("{pretrained.name}.pt2").module()
logits = model(images)  # (B, {shape}) float32, normalized as above -> (B, {classes})
```

Serve it over HTTP: `lightning-cv serve {pretrained.name}` (see docs/serve.md).
"""
