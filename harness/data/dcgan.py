"""A small DCGAN (Radford et al., 2016) trained on real crops: the demo's fakes from a real generator.

32 x 32 RGB, small enough to train on a CPU in a minute or two; its samples are resized to the
demo's image size.
"""
import numpy as np
import torch
from torch import nn

NOISE = 64
SIDE = 32


def _generator() -> nn.Module:
    def up(cin: int, cout: int) -> list[nn.Module]:
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
    return nn.Sequential(
        nn.ConvTranspose2d(NOISE, 256, 4, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),  # 4 x 4
        *up(256, 128), *up(128, 64),  # 16 x 16
        nn.ConvTranspose2d(64, 3, 4, 2, 1), nn.Tanh(),  # 32 x 32
    )


def _discriminator() -> nn.Module:
    def down(cin: int, cout: int, norm: bool = True) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), *([nn.BatchNorm2d(cout)] if norm else []), nn.LeakyReLU(0.2, True)]
    return nn.Sequential(*down(3, 64, norm=False), *down(64, 128), *down(128, 256), nn.Conv2d(256, 1, 4, 1, 0), nn.Flatten())


def train_dcgan(crops: np.ndarray, steps: int, seed: int, batch: int = 64) -> nn.Module:
    """crops: N x 32 x 32 x 3 uint8 real images; returns the trained generator (eval mode)."""
    torch.manual_seed(seed)
    data = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    g, d = _generator(), _discriminator()
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    for _ in range(steps):
        real = data[torch.randint(len(data), (batch,))]
        fake = g(torch.randn(batch, NOISE, 1, 1))
        loss_d = bce(d(real), ones) + bce(d(fake.detach()), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = bce(d(fake), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    return g.eval()


@torch.no_grad()
def sample(generator: nn.Module, count: int, seed: int) -> np.ndarray:
    """count x 32 x 32 x 3 uint8 samples."""
    noise = torch.randn(count, NOISE, 1, 1, generator=torch.Generator().manual_seed(seed))
    images = generator(noise).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    return images.permute(0, 2, 3, 1).numpy()
