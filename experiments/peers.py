"""Peer implementations that samdyn is checked and benchmarked against (optional: need torch).

``torch_beale_sam`` is a PyTorch eager loop written the way Kim et al.'s official code
(Harry24k/sam-saddle, ``optim/sam.py`` + ``optim/runner.py``) runs its Beale experiment: the
parameters are one float64 tensor, each SAM step does a backward pass, ascends by
``g · ρ / (‖g‖ + 1e-16)`` in place, does a second backward pass, subtracts the ascent again and takes
a ``torch.optim.SGD`` step. ρ = 0 is the official GD.
"""

from __future__ import annotations

import numpy as np


def torch_beale_loss(w):
    """Beale's function on a torch tensor of shape (2,)."""
    x, y = w[0], w[1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def torch_beale_sam(rho: float, steps: int, *, x0=(1.0, 2.0), lr=1e-3 / 80, momentum=0.0, eps=1e-16) -> np.ndarray:
    """Trajectory ``w_1 … w_steps`` (shape (steps, 2)) of the official-style torch loop."""
    import torch

    params = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([params], lr=lr, momentum=momentum)
    out = np.empty((steps, 2))
    for t in range(steps):
        torch_beale_loss(params).backward()
        with torch.no_grad():
            grad_norm = torch.norm(torch.stack([torch.norm(params.grad, p=2)]), p=2) + eps
            ascent = params.grad.clone().mul_(rho / grad_norm)
            params.add_(ascent)
        opt.zero_grad()
        torch_beale_loss(params).backward()
        with torch.no_grad():
            params.sub_(ascent)
        opt.step()
        opt.zero_grad()
        out[t] = params.detach().numpy()
    return out


REFERENCE = "tests/data/beale_torch_reference.npz"


def write_beale_reference(path: str = REFERENCE, steps: int = 87_683, rhos=(0.0, 0.1, 0.5, 1.0), every: int = 100) -> None:
    """Record the official-style torch trajectories that ``tests/test_reference.py`` compares with.

    Keeps ``w_t`` every ``every`` steps, the first 1000 steps in full and the end point (≈ 5 min on 2 cores).
    """
    runs = np.stack([torch_beale_sam(rho, steps) for rho in rhos])
    np.savez_compressed(
        path, rhos=np.asarray(rhos), steps=steps, every=every, trajectories=runs[:, every - 1 :: every],
        final=runs[:, -1], first1000=runs[:, :1000],
    )


if __name__ == "__main__":
    write_beale_reference()
    print(f"wrote {REFERENCE}")
