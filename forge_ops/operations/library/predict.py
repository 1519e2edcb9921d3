"""Predict: the class a trained classifier gives each image."""

import torch

from forge_ops.runtime import Dataset, Model, Tensor


def predict(model: Model, data: Dataset, /, *, batch_size: int = 256) -> Tensor:
    """Return the predicted class index of every image in ``data["x"]`` (int64, shape N)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    x = data["x"] if isinstance(data, dict) else data
    if x.dtype == torch.uint8:
        x = x.float() / 255
    predicted = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            predicted.append(model(x[start:start + batch_size].to(device)).argmax(dim=1).cpu())
    return torch.cat(predicted) if predicted else torch.empty(0, dtype=torch.int64)
