"""Test: a trained classifier's accuracy on a dataset, overall and per class."""

from collections.abc import Sequence

import torch

from forge_ops.runtime import Dataset, Metrics, Model


def test(
    model: Model,
    data: Dataset,
    /,
    *,
    batch_size: int = 256,
    class_names: Sequence[str] = ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                  "frog", "horse", "ship", "truck"),
) -> Metrics:
    """Return ``accuracy`` and ``accuracy/<class>`` for every class present in ``data``.

    Class names come from ``class_names`` (CIFAR-10's by default), else ``class <index>``.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    x, y = data["x"], data["y"]
    if x.dtype == torch.uint8:
        x = x.float() / 255
    predicted = []
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            batch = x[start:start + batch_size].to(device)
            predicted.append(model(batch).argmax(dim=1).cpu())
    correct = torch.cat(predicted) == y
    metrics = {"accuracy": correct.float().mean().item()}
    for label in sorted(set(y.tolist())):
        name = class_names[label] if label < len(class_names) else f"class {label}"
        metrics[f"accuracy/{name}"] = correct[y == label].float().mean().item()
    for key, value in metrics.items():
        print(f"{key:>24}: {value:.4f}")
    return metrics
