"""Train: fit the referenced network to a dataset with minibatch gradient descent.

Plots the training loss live (graph "Training Error", line "error") through the feedback API,
one point per iteration, and prints progress. Runs on the GPU when the job has one. ``seed``
decides the initial weights and the batch order, so a CPU run reproduces bit for bit.

Checkpoints the model, the optimizer and the batch order every ``checkpoint_every`` iterations
(0: every 5 minutes of training); an attempt after a lost worker, or a restart of the job,
resumes from the last one, and ends with the same model an uninterrupted run gives.
"""

import math
import time
from typing import Literal

import torch

from forge_ops.runtime import Architecture, Criterion, Dataset, Graph, Model, checkpoint, resume

#: With checkpoint_every = 0: how often to checkpoint, in seconds of training.
CHECKPOINT_SECONDS = 300.0


def _on_cpu(value: object) -> object:
    """An optimizer's state with its tensors on the CPU (a checkpoint loads anywhere)."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_on_cpu(item) for item in value]
    return value


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
    checkpoint_every: int = 0,
    net: Architecture,
    criterion: Criterion = "CrossEntropyLoss",
) -> Model:
    """Train ``net`` on ``data`` for ``max_iterations`` batches (if > 0) else ``epochs``.

    ``criterion`` is CrossEntropyLoss by default, which also suits nets that end in
    log_softmax (like the paper's, whose ClassNLLCriterion is NLLLoss here).
    """
    if batch_size < 1 or epochs < 1 or max_iterations < 0 or learning_rate <= 0 \
            or checkpoint_every < 0:
        raise ValueError("batch_size and epochs must be ≥ 1, max_iterations and "
                         "checkpoint_every ≥ 0 and learning_rate > 0")
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
    order: torch.Tensor | None = None  # this epoch's batch order, and where in it
    position = 0
    saved = resume()
    if saved is not None:
        net.load_state_dict(saved["net"])
        step.load_state_dict(saved["optimizer"])
        shuffle.set_state(saved["shuffle"])
        iteration, position = saved["iteration"], saved["position"]
        order = None if saved["order"] is None else saved["order"].to(device)
        print(f"resuming at iteration {iteration}/{total}")
    last_saved = time.monotonic()

    def flush() -> None:
        if not pending:
            return
        first = iteration - len(pending) + 1
        values = torch.stack(pending).tolist()
        for offset, value in enumerate(values):
            line.add(first + offset, value)
        pending.clear()
        print(f"iteration {iteration}/{total}: loss {values[-1]:.4f}")

    def save() -> None:
        flush()
        checkpoint({"net": {k: v.cpu() for k, v in net.state_dict().items()},
                    "optimizer": _on_cpu(step.state_dict()), "shuffle": shuffle.get_state(),
                    "iteration": iteration, "position": position,
                    "order": None if order is None else order.cpu()}, step=iteration)

    while iteration < total:
        if order is None:
            order = torch.randperm(count, generator=shuffle).to(device)
            position = 0
        while position < count:
            batch = order[position:position + batch_size]
            position += batch_size
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
            if (iteration % checkpoint_every == 0 if checkpoint_every
                    else time.monotonic() - last_saved >= CHECKPOINT_SECONDS):
                save()
                last_saved = time.monotonic()
        order = None
    return net.eval().cpu()
