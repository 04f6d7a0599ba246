"""AV-HuBERT's video front end: a 3-D stem and a per-frame ResNet-18 trunk with PReLU.

Module names match the checkpoint's keys (``frontend3D.{0,1,2,3}``,
``trunk.layer{1..4}.{0,1}.{conv1,bn1,relu1,conv2,bn2,relu2,downsample.{0,1}}``), so a state
dict loads strictly. ``fuse_for_inference`` folds every BatchNorm into the convolution before
it and switches the 2-D trunk to channels-last memory up to layer3 (same function, fewer passes
over memory; at layer4's 3x3 maps oneDNN is faster on plain NCHW);
it changes the module's state-dict keys, so call it after loading. The fused path also runs the
3-D stem per batch of frames as a 2-D convolution over 5 stacked neighbouring frames (the same
sums: the stem's kernel spans 5 frames of one channel) followed by a per-frame 2-D max pool; when
the stem's activation never decreases (ReLU, PReLU with slopes >= 0, as in the released model) it
pools first and applies the activation to a quarter of the values (the same numbers: a
non-decreasing function commutes with the max).

Shapes: ``(B, 1, T, 88, 88)`` -> stem ``(B, 64, T, 22, 22)`` -> trunk per frame
``(B * T, 512, 3, 3)`` -> average pool -> ``(B, 512, T)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STEM_CHANNELS = 64
TRUNK_OUT = 512  # ResNet-18's last width (``backend_out``)
LAYERS = (2, 2, 2, 2)  # ResNet-18 blocks per stage


def _activation(kind: str, channels: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU(num_parameters=channels)
    if kind == "relu":
        return nn.ReLU()
    if kind == "swish":
        return nn.SiLU()
    raise ValueError(f"unknown resnet_relu_type {kind!r} (prelu, relu, swish)")


def _fold_bn(conv: nn.Conv2d | nn.Conv3d, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """Fold ``bn`` (eval statistics) into ``conv`` in place: ``conv'(x) = bn(conv(x))``."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)  # (C,)
    bias = bn.bias.detach() - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias.detach() * scale
    conv.weight = nn.Parameter(
        conv.weight.detach() * scale.view(-1, *([1] * (conv.weight.dim() - 1))), requires_grad=False
    )
    conv.bias = nn.Parameter(bias, requires_grad=False)


def _non_decreasing(act: nn.Module) -> bool:
    """Whether ``act`` never decreases (ReLU; PReLU with every slope >= 0): then ``max(act(x)) == act(max(x))``."""
    if isinstance(act, nn.ReLU):
        return True
    return isinstance(act, nn.PReLU) and bool((act.weight >= 0).all())


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm, a residual (1x1 conv + BN when the shape changes).

    Args:
        inplanes, planes: input / output channels.
        stride: of the first convolution and the downsampling path.
        relu_type: ``prelu`` (mAV-HuBERT), ``relu`` or ``swish``.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, relu_type: str = "prelu"):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = _activation(relu_type, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = _activation(relu_type, planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, planes, H / s, W / s)
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.fused:  # inference only: add in place (no new buffer)
            return self.relu2(out.add_(residual))
        return self.relu2(out + residual)

    def fuse(self) -> None:
        self.fused = True
        _fold_bn(self.conv1, self.bn1)
        _fold_bn(self.conv2, self.bn2)
        self.bn1, self.bn2 = nn.Identity(), nn.Identity()
        if self.downsample is not None:
            _fold_bn(self.downsample[0], self.downsample[1])
            self.downsample[1] = nn.Identity()


class ResNetTrunk(nn.Module):
    """The four ResNet-18 stages and a global average pool. ``(N, 64, H, W) -> (N, 512)``."""

    def __init__(self, relu_type: str = "prelu", layers: tuple[int, ...] = LAYERS):
        super().__init__()
        inplanes = STEM_CHANNELS
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            stage = []
            for b in range(blocks):
                stage.append(BasicBlock(inplanes, planes, stride if b == 0 else 1, relu_type))
                inplanes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.contiguous_from = None  # stage (1-4) from which the input is made NCHW-contiguous again

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, stage in enumerate((self.layer1, self.layer2, self.layer3, self.layer4), start=1):
            if i == self.contiguous_from:
                x = x.contiguous()
            x = stage(x)
        return self.avgpool(x).flatten(1)


class ResEncoder(nn.Module):
    """3-D stem (Conv3d 5x7x7 stride (1, 2, 2), BN, activation, max pool) + per-frame ResNet-18.

    Args:
        relu_type: the checkpoint's ``resnet_relu_type``.
    """

    backend_out = TRUNK_OUT

    def __init__(self, relu_type: str = "prelu"):
        super().__init__()
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, STEM_CHANNELS, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False),
            nn.BatchNorm3d(STEM_CHANNELS),
            _activation(relu_type, STEM_CHANNELS),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        self.trunk = ResNetTrunk(relu_type)
        self.channels_last = False
        self.fused = False
        self.pool_first = False  # fused path: max pool before the stem's activation (set by fuse_for_inference)

    def forward(self, x: torch.Tensor, frame_batch: int | None = None) -> torch.Tensor:
        """``(B, 1, T, H, W)`` -> ``(B, 512, T)``.

        Args:
            x: normalised 88x88 crops.
            frame_batch: run the per-frame trunk (fused: stem and trunk) over this many frames at a
                time (``None``: all); the result does not depend on it.
        """
        b, _, t = x.shape[:3]
        if self.fused:
            return self._forward_fused(x, frame_batch)
        x = self.frontend3D(x)  # (B, 64, T, H', W')
        c, h, w = x.shape[1], x.shape[3], x.shape[4]
        x = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B * T, 64, H', W')
        step = frame_batch or len(x)
        x = torch.cat([self.trunk(x[i : i + step]) for i in range(0, len(x), step)])  # (B * T, 512)
        return x.view(b, t, -1).transpose(1, 2)

    def _forward_fused(self, x: torch.Tensor, frame_batch: int | None) -> torch.Tensor:
        """Stem and trunk per batch of frames: ``(B, 1, T, H, W)`` -> ``(B, 512, T)`` (after ``fuse_for_inference``)."""
        conv, act, pool = self.frontend3D[0], self.frontend3D[2], self.frontend3D[3]
        kt, pt = conv.kernel_size[0], conv.padding[0]
        weight = conv.weight[:, 0]  # (64, kt, kh, kw): the kt frames act as input channels
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        b, _, t = x.shape[:3]
        out = []
        for clip in x[:, 0]:  # (T, H, W)
            padded = F.pad(clip, (0, 0, 0, 0, pt, kt - 1 - pt))  # zero frames before/after, as Conv3d pads
            step = frame_batch or t
            for s in range(0, t, step):
                e = min(t, s + step)
                frames = padded[s : e + kt - 1].unfold(0, kt, 1).permute(0, 3, 1, 2)  # (n, kt, H, W)
                y = F.conv2d(
                    frames.contiguous(memory_format=fmt), weight, conv.bias, conv.stride[1:], conv.padding[1:]
                )  # (n, 64, H', W')
                if self.pool_first:  # a non-decreasing activation commutes with the max: 4x fewer elements
                    y = act(F.max_pool2d(y, pool.kernel_size[1:], pool.stride[1:], pool.padding[1:]))
                else:
                    y = F.max_pool2d(act(y), pool.kernel_size[1:], pool.stride[1:], pool.padding[1:])
                out.append(self.trunk(y))  # (n, 512)
        return torch.cat(out).view(b, t, -1).transpose(1, 2)

    def fuse_for_inference(self, channels_last: bool = True) -> None:
        """Fold BatchNorms into convolutions (eval statistics) and use channels-last 2-D convs."""
        _fold_bn(self.frontend3D[0], self.frontend3D[1])
        self.frontend3D[1] = nn.Identity()
        self.fused = True
        self.pool_first = _non_decreasing(self.frontend3D[2])
        for m in self.trunk.modules():
            if isinstance(m, BasicBlock):
                m.fuse()
        self.channels_last = channels_last
        if channels_last:  # measured on CPU: channels-last wins at 22x22 - 6x6, plain NCHW at 3x3 (layer4)
            self.trunk.to(memory_format=torch.channels_last)
            self.trunk.layer4.to(memory_format=torch.contiguous_format)
            self.trunk.contiguous_from = 4


__all__ = ["BasicBlock", "ResEncoder", "ResNetTrunk"]
