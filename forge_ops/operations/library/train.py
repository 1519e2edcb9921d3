"""Train: fit the referenced network to a dataset with minibatch gradient descent.

Plots the training loss live (graph "Training Error", line "error") through the feedback API,
one point per iteration, and prints progress. Runs on the GPU when the job has one. ``seed``
decides the initial weights and the batch order, so a CPU run reproduces bit for bit.
"""

import math
from typing import Literal

import torch

from forge_ops.runtime import Architecture, Criterion, Dataset, Graph, Model


def _reset_parameters(net: torch.nn.Module) -> None:
    for module in net.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


def train(
    data: Dataset,
    /,
    *,
    max_iterations: int = 0,
    epochs: int = 1,
    learning_rate: float = 0.001,
    batch_size: int = 64,
    optimizer: Literal["adam", "sgd"] = "adam",
    momentum: float = 0.9,
    seed: int = 0,
    net: Architecture,
    criterion: Criterion = "CrossEntropyLoss",
) -> Model:
    """Train ``net`` on ``data`` for ``max_iterations`` batches (if > 0) else ``epochs``.

    ``criterion`` is CrossEntropyLoss by default, which also suits nets that end in
    log_softmax (like the paper's, whose ClassNLLCriterion is NLLLoss here).
    """
    if batch_size < 1 or epochs < 1 or max_iterations < 0 or learning_rate <= 0:
        raise ValueError("batch_size and epochs must be ≥ 1, max_iterations ≥ 0 and "
                         "learning_rate > 0")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    _reset_parameters(net)
    net.to(device).train()
    criterion = criterion.to(device)
    x, y = data["x"], data["y"]
    if x.dtype == torch.uint8:
        x = x.float() / 255
    elif x.dtype == torch.float64:
        x = x.float()
    x, y = x.to(device), y.to(device)
    count = len(y)
    if count == 0:
        raise ValueError("the training data is empty; connect a dataset with samples")
    if optimizer == "adam":
        step: torch.optim.Optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    else:
        step = torch.optim.SGD(net.parameters(), lr=learning_rate, momentum=momentum)
    per_epoch = math.ceil(count / batch_size)
    total = max_iterations if max_iterations > 0 else epochs * per_epoch
    print(f"training on {device} for {total} iterations ({count} samples, batch {batch_size})")

    graph = Graph("Training Error")
    line = graph.line("error")
    shuffle = torch.Generator().manual_seed(seed)
    pending: list[torch.Tensor] = []  # losses kept on the device; read back in groups
    iteration = 0
    report_every = max(1, min(50, total // 20))

    def flush() -> None:
        first = iteration - len(pending) + 1
        values = torch.stack(pending).tolist()
        for offset, value in enumerate(values):
            line.add(first + offset, value)
        pending.clear()
        print(f"iteration {iteration}/{total}: loss {values[-1]:.4f}")

    while iteration < total:
        order = torch.randperm(count, generator=shuffle).to(device)
        for start in range(0, count, batch_size):
            batch = order[start:start + batch_size]
            step.zero_grad(set_to_none=True)
            loss = criterion(net(x[batch]), y[batch])
            loss.backward()
            step.step()
            iteration += 1
            pending.append(loss.detach())
            if iteration % report_every == 0 or iteration == total:
                flush()
            if iteration >= total:
                break
    return net.eval().cpu()
