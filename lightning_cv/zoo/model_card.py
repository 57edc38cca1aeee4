"""A model card: what a checkpoint is, how well it does and how to use it, as Markdown.

``lightning-cv zoo export`` writes one beside every export (``lenet5.mnist.md``); the W&B
publisher puts the same text on the artifact. The facts come from :func:`model_facts`, the one
place that reads a :class:`~lightning_cv.zoo.Pretrained`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from lightning_cv.hub.manifest import ZooEntry

if TYPE_CHECKING:
    from lightning_cv.zoo.pretrained import Pretrained

__all__ = ["ModelFacts", "model_facts", "render_model_card"]


@dataclass(frozen=True)
class ModelFacts:
    """A loaded model as export and card see it: the network (eval mode, CPU: normalized
    (B, C, H, W) -> logits), its name (the zoo entry's, or the checkpoint file's stem), the
    checkpoint's sha256, classes, input and normalisation, eval transform, test-time
    augmentation (or None) and zoo entry (None for a checkpoint file)."""

    model: nn.Module = field(repr=False, compare=False)
    name: str
    sha256: str
    class_names: tuple[str, ...]
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    eval_transform: str
    tta: dict[str, Any] | None
    entry: ZooEntry | None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return (self.in_channels, *self.image_size)

    def metadata(self, *, preprocess: bool) -> dict[str, Any]:
        """The JSON record an export carries (``preprocess``: whether it takes uint8 pixels)."""
        return {"name": self.name, "sha256": self.sha256, "class_names": [*self.class_names],
                "in_channels": self.in_channels, "image_size": [*self.image_size],
                "mean": [*self.mean], "std": [*self.std], "preprocess": preprocess}  # fmt: skip


def model_facts(pretrained: Pretrained) -> ModelFacts:
    """The facts of a loaded model (the only reader of :class:`Pretrained`'s fields here)."""
    record = pretrained.preprocessing
    return ModelFacts(
        model=pretrained.model, name=pretrained.name, sha256=pretrained.sha256,
        class_names=record.class_names, in_channels=record.in_channels,
        image_size=tuple(record.image_size), mean=record.mean, std=record.std,
        eval_transform="eval" if record.eval_pipeline is None else "custom",
        tta=None if record.tta is None else record.tta.model_dump(), entry=pretrained.entry,
    )  # fmt: skip


def render_model_card(pretrained: Pretrained) -> str:
    """The Markdown card of a loaded model: name, metrics, recipe, preprocessing, classes,
    sha256, where it was trained and how to load, export and serve it.

    Example:
        >>> from lightning_cv import zoo
        >>> render_model_card(zoo.load("lenet5.mnist")).splitlines()[0]
        '# lenet5.mnist'
    """
    return _card(model_facts(pretrained))


def _card(facts: ModelFacts) -> str:
    sections = [f"# {facts.name}\n\n{_summary(facts)}", _metrics(facts.entry),
                _training(facts), _preprocessing(facts), _classes(facts.class_names),
                _usage(facts)]  # fmt: skip
    return "\n\n".join(section for section in sections if section) + "\n"


def _summary(facts: ModelFacts) -> str:
    entry = facts.entry
    where = "a lightning-cv checkpoint"
    if entry is not None:
        where = f"the lightning-cv zoo's {entry.dataset} classifier"
    lines = [f"Image classifier: {where}, {len(facts.class_names)} classes.", "",
             f"- Checkpoint sha256: `{facts.sha256}`"]  # fmt: skip
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


def _training(facts: ModelFacts) -> str:
    entry = facts.entry
    if entry is None:
        return ""
    time = "not recorded" if entry.training_time_s is None else f"{entry.training_time_s:.0f} s"
    lines = [f"- Trained on: {entry.trained_on or 'not recorded'}",
             f"- Training time: {time}; the date is not recorded in the zoo manifest"]  # fmt: skip
    if entry.note:
        lines.append(f"- Note: {entry.note}")
    return "## Training\n\n" + "\n".join(lines)


def _preprocessing(facts: ModelFacts) -> str:
    (height, width), channels = facts.image_size, facts.in_channels
    colour = "grey" if channels == 1 else "RGB"
    tta = "none" if facts.tta is None else ", ".join(f"{k}={v}" for k, v in facts.tta.items())
    return (
        "## Preprocessing\n\n"
        f"- Input: {channels} x {height} x {width} (C x H x W), {colour}\n"
        f"- Eval transform: `{facts.eval_transform}`; pixels / 255, then "
        f"(x - mean) / std with mean {list(facts.mean)} and std {list(facts.std)}\n"
        f"- Test-time augmentation: {tta}"
    )


def _classes(class_names: tuple[str, ...]) -> str:
    rows = "\n".join(f"| {index} | {name} |" for index, name in enumerate(class_names))
    return f"## Classes\n\n| index | class |\n| --- | --- |\n{rows}"


def _usage(facts: ModelFacts) -> str:
    shape = ", ".join(map(str, facts.input_shape))
    check = (
        ""
        if facts.entry is None
        else (
            ", then check it against this checkpoint on the test split (`lightning-cv zoo evaluate "
            f"{facts.name}.pt2 --data.root DATA`)"
        )
    )
    return f"""## How to use

```python
from lightning_cv import zoo

model = zoo.load("{facts.name}")  # a zoo name, or the .ckpt file
model.predict("image.png", top_k=3)  # [(class name, probability), ...]
```

Export it (`lightning-cv zoo export {facts.name} --format pt2`, or `onnx`; `--preprocess true`
bakes the preprocessing in){check}:

```python
import torch

model = torch.export.load("{facts.name}.pt2").module()
logits = model(images)  # (B, {shape}) float32, normalized as above -> (B, {len(facts.class_names)})
```

Serve it over HTTP: `lightning-cv serve {facts.name}` (see docs/serve.md).
"""
