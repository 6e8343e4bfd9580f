"""A small dilated ResNet under torchvision's DeepLabV3 head, for the CPU profiles' 64 px toy images.

torchvision's DeepLabV3 backbones have output stride 8 (ResNet) or 16 (MobileNetV3): at 64 px their
logits are 8 x 8 or 4 x 4, too coarse for car parts a few pixels wide (benchmark.oracle measures the
ceiling this puts on every variant). This body keeps one stride-2 stem and trades every later stride
for dilation, as Dilated Residual Networks do (Yu et al., CVPR 2017): output stride 2, 32 x 32 logits
at 64 px. The head is DeepLabV3's: torchvision's ASPP, a 3 x 3 convolution, batch norm, ReLU and the
1 x 1 classifier (DeepLabHead's layers, narrower), inside torchvision's DeepLabV3 wrapper, which
upsamples the logits bilinearly to the input size. Widths and rates were chosen by measurement within
the demo's time budget (docs/segmentation-setup.md).
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabV3

from inverse_graphics.camera import assert_shape

WIDTHS = (16, 24, 48, 64)     # channels of the four stages
DILATIONS = (1, 2, 4, 8)      # of the four stages, all at the stem's stride 2
ASPP_CHANNELS = 32
ATROUS_RATES = (3, 6, 9)      # torchvision's (12, 24, 36) for its 65 x 65 grid, scaled to a 32 x 32 one


def _conv_bn(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, dilation, dilation, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    """Two dilated 3 x 3 convolutions with batch norm and a residual (a 1 x 1 projection when widths or the stride
    change)."""

    def __init__(self, cin: int, cout: int, dilation: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout, stride, dilation), nn.ReLU(inplace=True),
                                  *_conv_bn(cout, cout, 1, dilation))
        self.shortcut = nn.Identity() if cin == cout and stride == 1 else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class DilatedResNet(nn.Module):
    """x: float (B, 3, H, W) -> {"out": float (B, C, H/s, W/s)}, C = widths[-1] (the dict DeepLabV3 expects), s the
    output stride: 2 (the stem's), times any stage strides (alternatives measured in bench/segmentation_setup.py)."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS, dilations: tuple[int, ...] = DILATIONS,
                 strides: tuple[int, ...] | None = None):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, widths[0], stride=2), nn.ReLU(inplace=True))
        ins = (widths[0], *widths[:-1])
        strides = strides or (1,) * len(widths)
        self.stages = nn.Sequential(*(BasicBlock(i, o, d, s) for i, o, d, s in zip(ins, widths, dilations, strides)))
        self.out_channels = widths[-1]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        assert_shape(x, (None, 3, None, None), "x")
        return {"out": self.stages(self.stem(x))}


def deeplabv3_dilated_resnet(*, weights=None, weights_backbone=None, num_classes: int = 21, aux_loss: bool = False,
                             widths: tuple[int, ...] = WIDTHS, dilations: tuple[int, ...] = DILATIONS,
                             strides: tuple[int, ...] | None = None, aspp_channels: int = ASPP_CHANNELS,
                             atrous_rates: tuple[int, ...] = ATROUS_RATES) -> DeepLabV3:
    """DeepLabV3 on DilatedResNet, with torchvision's builder signature (no downloadable weights exist); the
    other arguments are for measuring alternatives (bench/segmentation_setup.py)."""
    if weights is not None or weights_backbone is not None or aux_loss:
        raise ValueError("the dilated ResNet has no published weights and no auxiliary head")
    body = DilatedResNet(widths, dilations, strides)
    head = nn.Sequential(ASPP(body.out_channels, list(atrous_rates), aspp_channels),
                         nn.Conv2d(aspp_channels, aspp_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(aspp_channels), nn.ReLU(), nn.Conv2d(aspp_channels, num_classes, 1))
    return DeepLabV3(body, head, None)
