"""The classifier and its data: a small ResNet-style network that tells four shapes apart.

Images are 16 x 16 pixels, one grey channel, values from 0 (black) to 1 (white): the outline of a
circle, a square or a triangle, or a plus-shaped cross, at a random place and size. The data is drawn
here from a fixed seed, so nothing is downloaded and every build trains exactly the same model.
"""

import torch
from torch import nn

IMAGE_SIZE = 16
CLASSES = ["circle", "square", "triangle", "cross"]
LINE = 0.5  # half the stroke width, in pixels


def _segment_distance(x, y, a, b):
    """Distance of every pixel (x, y) to the segment from point a to point b."""
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    t = (((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)).clamp(0, 1)
    return torch.hypot(x - (ax + t * dx), y - (ay + t * dy))


def render(shape: str, cx: float, cy: float, size: float) -> torch.Tensor:
    """A clean 16 x 16 image (0 or 1) of `shape` centred at (cx, cy), `size` pixels from its centre to its edge."""
    y, x = torch.meshgrid(
        torch.arange(IMAGE_SIZE, dtype=torch.float32), torch.arange(IMAGE_SIZE, dtype=torch.float32), indexing="ij"
    )
    if shape == "circle":
        on = (torch.hypot(x - cx, y - cy) - size).abs() < LINE + 0.1
    elif shape == "square":
        on = (torch.maximum((x - cx).abs(), (y - cy).abs()) - size).abs() < LINE
    elif shape == "cross":
        horizontal = ((y - cy).abs() < LINE) & ((x - cx).abs() <= size)
        vertical = ((x - cx).abs() < LINE) & ((y - cy).abs() <= size)
        on = horizontal | vertical
    elif shape == "triangle":
        apex, left, right = (cx, cy - size), (cx - size, cy + size), (cx + size, cy + size)
        edges = [_segment_distance(x, y, p, q) for p, q in ((apex, left), (left, right), (right, apex))]
        on = torch.stack(edges).amin(dim=0) < LINE + 0.1
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return on.float()


def make_dataset(n_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N x 1 x 16 x 16) and labels (N) of random shapes, with a little noise and dimming."""
    gen = torch.Generator().manual_seed(seed)
    images, labels = [], []
    for label, shape in enumerate(CLASSES):
        for _ in range(n_per_class):
            size = int(torch.randint(3, 7, (1,), generator=gen))
            cx, cy = (int(v) for v in torch.randint(size, IMAGE_SIZE - size, (2,), generator=gen))
            image = render(shape, cx, cy, size)
            brightness = 0.6 + 0.4 * torch.rand(1, generator=gen)
            noise = 0.15 * torch.rand(1, generator=gen) * torch.randn(image.shape, generator=gen)
            images.append((image * brightness + noise).clamp(0, 1))
            labels.append(label)
    return torch.stack(images).unsqueeze(1), torch.tensor(labels)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions whose result is added to the block's input (the "shortcut"), as in ResNet."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels_out),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            # A 1x1 convolution makes the input the same shape as the body's output, so the two can be added.
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride=stride, bias=False), nn.BatchNorm2d(channels_out)
            )

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ShapeNet(nn.Module):
    """Stem, three residual blocks (16 -> 8 -> 4 pixels wide), global average pooling, one linear layer."""

    def __init__(self, n_classes: int = len(CLASSES)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(
            ResidualBlock(16, 16), ResidualBlock(16, 32, stride=2), ResidualBlock(32, 64, stride=2)
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))
