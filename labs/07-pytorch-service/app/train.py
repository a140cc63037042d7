"""Train the shape classifier on generated data and save its weights (a few seconds on one CPU core).

The data comes from model.make_dataset with a fixed seed, so nothing is downloaded: training works
during `docker build` and on a machine with no network, and every build trains the same model.
Training runs on the CPU even in the GPU image: `docker build` has no GPU.

Usage: python train.py            (writes model.pt next to this file)
       MODEL_PATH=/tmp/m.pt python train.py
"""

import os
import time

import torch
from torch import nn

from model import CLASSES, IMAGE_SIZE, ShapeNet, make_dataset

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.environ.get("MODEL_PATH", os.path.join(HERE, "model.pt"))
SEED = 7
EPOCHS = 6
BATCH = 64


def main():
    started = time.monotonic()
    torch.manual_seed(SEED)
    # One thread: the same result on every machine (the order of additions does not depend on the core count),
    # and this small network trains no faster on more.
    torch.set_num_threads(1)
    x_train, y_train = make_dataset(400, seed=SEED)
    x_test, y_test = make_dataset(100, seed=SEED + 1)

    model = ShapeNet()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            optimiser.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimiser.step()

    model.eval()
    with torch.inference_mode():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    # Weights and plain facts only (no pickled classes): the service loads it with torch.load(weights_only=True).
    torch.save(
        {
            "state_dict": model.state_dict(),
            "classes": CLASSES,
            "image_size": IMAGE_SIZE,
            "test_accuracy": round(accuracy, 4),
            "torch_version": str(torch.__version__),
        },
        MODEL_PATH,
    )
    print(f"saved {MODEL_PATH} (test accuracy {accuracy:.3f}, {time.monotonic() - started:.1f}s)")


if __name__ == "__main__":
    main()
