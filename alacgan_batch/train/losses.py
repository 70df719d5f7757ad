"""The losses of §3.2: content (eq. 4), adversarial (eq. 3), WGAN critic (eq. 6) + penalties (eq. 7, 8).

Without VGG16 weights the perceptual content loss (eq. 4) cannot be computed; recipes then use the
substitute `rgb_lab_l1`: L1 on RGB plus L1 on CIELAB (scaled by 1/100 so both terms are O(1)). CIELAB
is where the shipped model is judged (deltaE), so its L1 pulls flat colours to the right hue directly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

ADV_WEIGHT = 1e-4  # §3.2: lambda_1
GP_WEIGHT = 10.0  # §3.2: lambda_2
DRIFT_WEIGHT = 1e-3  # §3.2: epsilon_drift (Karras et al.)
LAB_SCALE = 1 / 100  # L* spans 0..100: brings the Lab term to the RGB term's range

# sRGB (D65) -> XYZ, and the D65 white point: the one colour conversion used by the loss.
_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]])
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_DELTA = 6 / 29


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """Differentiable sRGB in [-1, 1] (Bx3xHxW) -> CIELAB (L in 0..100), D65."""
    rgb = ((image.float() + 1) / 2).clamp(0, 1)
    linear = torch.where(rgb > 0.04045, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,bjhw->bihw", _RGB_TO_XYZ.to(image.device), linear)
    t = xyz / _WHITE.to(image.device).view(1, 3, 1, 1)
    # The cube root has an infinite slope at 0: the standard linear segment below delta^3 avoids it.
    f = torch.where(t > _DELTA**3, t.clamp(min=_DELTA**3) ** (1 / 3), t / (3 * _DELTA**2) + 4 / 29)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], dim=1)


def content_loss(fake: torch.Tensor, real: torch.Tensor, kind: str = "rgb_lab_l1",
                 vgg: nn.Module | None = None) -> torch.Tensor:
    """Eq. 4 with `kind="vgg"` (MSE of F2 = VGG16 relu2_2 features, mean = 1/chw), else the stated substitute."""
    if kind == "vgg":
        if vgg is None:
            raise ValueError("the perceptual content loss needs VGG16 features")
        return F.mse_loss(vgg(fake.float()), vgg(real.float()))
    if kind == "rgb_lab_l1":
        return F.l1_loss(fake.float(), real.float()) + LAB_SCALE * F.l1_loss(rgb_to_lab(fake), rgb_to_lab(real))
    if kind == "l1":
        return F.l1_loss(fake.float(), real.float())
    raise ValueError(f"unknown content loss {kind!r}")


def adversarial_loss(critic_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 3: L_adv = -E[D(G(X, H, F1(X)), F1(X))] (weighted by lambda_1 in eq. 2 by the caller)."""
    return -critic_fake.float().mean()


def critic_loss(critic_fake: torch.Tensor, critic_real: torch.Tensor) -> torch.Tensor:
    """Eq. 6: L_w = E[D(fake)] - E[D(real)]."""
    return critic_fake.float().mean() - critic_real.float().mean()


def drift_penalty(critic_real: torch.Tensor, weight: float = DRIFT_WEIGHT) -> torch.Tensor:
    """Second term of eq. 7: eps_drift * E[D(real)^2] keeps critic values near zero."""
    return weight * critic_real.float().pow(2).mean()


def interpolate(real: torch.Tensor, fake: torch.Tensor, epsilon: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. 8: Y_hat = eps * G(...) + (1 - eps) * Y, eps ~ U[0, 1] per sample."""
    if epsilon is None:
        epsilon = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    return (epsilon * fake.detach() + (1 - epsilon) * real.detach()).requires_grad_(True)


def gradient_penalty_from(critic_interp: torch.Tensor, interpolates: torch.Tensor, weight: float = GP_WEIGHT,
                          grad_scale: float | None = None) -> torch.Tensor:
    """First term of eq. 7: lambda_2 * E[(||grad_Y_hat D(Y_hat, F1(X))||_2 - 1)^2], norm per sample.

    `grad_scale` is the AMP GradScaler scale: the critic output is scaled before differentiating (so
    fp16 gradients do not underflow) and the gradient unscaled after, as PyTorch's AMP notes describe.
    """
    outputs = critic_interp.sum() if grad_scale is None else critic_interp.float().sum() * grad_scale
    (grad,) = torch.autograd.grad(outputs, interpolates, create_graph=True)
    if grad_scale is not None:
        grad = grad / grad_scale
    norm = grad.float().flatten(1).norm(2, dim=1)
    return weight * (norm - 1).pow(2).mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, features: torch.Tensor,
                     weight: float = GP_WEIGHT, epsilon: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 7-8 in one call: interpolate, evaluate the critic (conditioned on F1(X)), penalise."""
    mixed = interpolate(real, fake, epsilon)
    return gradient_penalty_from(critic(mixed, features), mixed, weight)
