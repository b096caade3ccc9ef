#!/usr/bin/env python3
"""Makes tests/data/models_vision_golden.safetensors for tests/test_models_vision.c: torchvision's
own ResNet-18/50 and MobileNetV2 classes at tiny widths (names and structure are torchvision's;
only the channel counts shrink so the file stays small), with random weights and batch-norm
statistics.

Per case (r18, r50, mv2):
  <case>.sd.<key>          the state_dict (params and buffers, f32; num_batches_tracked i32)
  <case>.x                 an input batch [2, 3, H, W]
  <case>.y                 the eval-mode outputs (computed in f64 from the f32 weights)
  <case>.labels            class labels of the training step (i32)
  <case>.loss              cross entropy of one train-mode forward pass (batch statistics)
  <case>.grad.<param>      its gradients
  <case>.after.<buffer>    the batch-norm buffers after that step
Metadata: <case>.config (the lamina configuration), <case>.params / <case>.buffers (the key
lists in state_dict order) and, for the full-size models resnet18/34/50 and mobilenet_v2
(torchvision's constructors, no weights stored), <name>.params and <name>.shapes
("a,b,c d,e ..." one shape per key) so the suite checks lamina's names and shapes against them.

ViT cases (vit, vit_avg; after the torchvision ones so their random draws stay as they were)
come from timm's own VisionTransformer class at tiny sizes (vit: class-token pool, qkv bias,
LayerScale; vit_avg: average pool with fc_norm, no qkv bias, no LayerScale), stored as above
(no buffers, so no <case>.after.*) with LayerNorm, bias, LayerScale, cls_token and pos_embed
values drawn away from their init; vit_base_patch16_224 gets the name and shape lists. The
vit case's state_dict is also written on its own, by safetensors.torch.save_file as a timm
user would, to tests/data/vit_tiny_timm.safetensors.

    PYTHONPATH=/usr/lib/python3/dist-packages /usr/bin/python3 tools/gen_models_vision_golden.py

(timm from PyPI, 1.0.31 tested, against torch 1.13; the PYTHONPATH puts the system torch 1.13
and its torchvision first should a newer torch sit in /usr/local.)
"""
import torch
import torch.nn as nn
import torchvision
from torchvision.models.mobilenetv2 import MobileNetV2
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.ops.misc import Conv2dNormActivation

import os

from golden_st import DATA, Golden

torch.manual_seed(16)


class TinyResNet(ResNet):
    """torchvision's ResNet with stage widths width * (1, 2, 4, 8) instead of 64 * (1, 2, 4, 8):
    ResNet.__init__ with the constants replaced; the modules and their names are torchvision's."""

    def __init__(self, block, layers, num_classes, width):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def tiny_mobilenet_v2(num_classes, width_mult, round_nearest, last_channel):
    """torchvision's MobileNetV2(width_mult, round_nearest) with its last 1x1 conv (features.18, 1280 channels
    fixed in torchvision) and classifier.1 rebuilt for last_channel channels; dropout 0 so the
    training step is deterministic (lamina: dropout = LAM_ZERO)."""
    m = MobileNetV2(num_classes=num_classes, width_mult=width_mult, round_nearest=round_nearest,
                    dropout=0.0)
    cin = m.features[-1][0].in_channels
    m.features[-1] = Conv2dNormActivation(cin, last_channel, kernel_size=1, norm_layer=nn.BatchNorm2d,
                                          activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(last_channel, num_classes)
    m.last_channel = last_channel
    return m


def randomize_norms(model):
    """Batch-norm affine params and running statistics away from their init values."""
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.num_batches_tracked.fill_(3)


def add_case(g, name, model, config, hw, num_classes):
    randomize_norms(model)
    sd = model.state_dict()
    params = [k for k, _ in model.named_parameters()]
    buffers = [k for k, _ in model.named_buffers()]
    for k, v in sd.items():
        g.add(f"{name}.sd.{k}", v.float() if v.is_floating_point() else v)
    g.meta(f"{name}.config", config)
    g.meta(f"{name}.params", params)
    g.meta(f"{name}.buffers", buffers)
    x = torch.randn(2, 3, hw, hw)
    labels = torch.randint(0, num_classes, (2,))
    g.add(f"{name}.x", x)
    g.add(f"{name}.labels", labels, "i32")
    # The references in f64 from the stored f32 values.
    m = model.double()
    m.eval()
    with torch.no_grad():
        g.add(f"{name}.y", m(x.double()), "f32")
    m.train()
    loss = nn.functional.cross_entropy(m(x.double()), labels)
    loss.backward()
    g.add(f"{name}.loss", loss.reshape(1), "f32")
    for k, p in m.named_parameters():
        g.add(f"{name}.grad.{k}", p.grad, "f32")
    for k, b in m.named_buffers():
        g.add(f"{name}.after.{k}", b, "f32" if b.is_floating_point() else "i32")
    print(f"{name}: {sum(p.numel() for p in m.parameters())} parameters, loss {loss.item():.6f}")


def add_names(g, name, model):
    sd = model.state_dict()
    g.meta(f"{name}.params", [k for k, _ in model.named_parameters()])
    g.meta(f"{name}.buffers", [k for k, _ in model.named_buffers()])
    g.meta(f"{name}.shapes", [",".join(str(d) for d in sd[k].shape) or "-" for k, _ in model.named_parameters()])


g = Golden()
g.meta("cases", ["r18", "r50", "mv2"])
# config: depth (0 for MobileNetV2), width (ResNet) or width_mult (MobileNetV2), num_classes,
# last_channel and round_nearest (MobileNetV2)
add_case(g, "r18", TinyResNet(BasicBlock, [2, 2, 2, 2], 5, 4), [18, 4, 5, 0], 48, 5)
add_case(g, "r50", TinyResNet(Bottleneck, [3, 4, 6, 3], 5, 2), [50, 2, 5, 0], 48, 5)
add_case(g, "mv2", tiny_mobilenet_v2(5, 0.1, 4, 32), [0, 0.1, 5, 32, 4], 48, 5)
g.meta("full", ["resnet18", "resnet34", "resnet50", "mobilenet_v2"])
add_names(g, "resnet18", torchvision.models.resnet18())
add_names(g, "resnet34", torchvision.models.resnet34())
add_names(g, "resnet50", torchvision.models.resnet50())
add_names(g, "mobilenet_v2", torchvision.models.mobilenet_v2())

# ---- ViT (timm) -----------------------------------------------------------------------------
import safetensors.torch  # noqa: E402
import timm  # noqa: E402
from timm.models.vision_transformer import VisionTransformer  # noqa: E402


def randomize_vit(model):
    """LayerNorm affine params, biases, LayerScale gammas, cls_token and pos_embed away from
    their init values (ones, zeros, init_values, ~0, small), so each takes part in the test."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.endswith("norm.weight") \
                    or name.endswith(".gamma"):
                p.uniform_(0.5, 1.5)
            elif name.endswith(".bias"):
                p.uniform_(-0.2, 0.2)
            elif name in ("cls_token", "pos_embed"):
                p.normal_(0, 0.5)


def add_vit_case(g, name, config, **kw):
    model = VisionTransformer(img_size=16, patch_size=4, in_chans=3, num_classes=5, embed_dim=16, depth=2,
                              num_heads=2, **kw)
    randomize_vit(model)
    add_case(g, name, model, config, 16, 5)
    return model


# config: -1, mlp_ratio, num_classes, init_values, global_pool (0 token, 1 avg), qkv_bias
# (img_size 16, patch_size 4, embed_dim 16, depth 2, num_heads 2 fixed in the test)
vit = add_vit_case(g, "vit", [-1, 2.0, 5, 0.1, 0, 1], mlp_ratio=2.0, init_values=0.1)
add_vit_case(g, "vit_avg", [-1, 1.5, 5, 0, 1, 0], mlp_ratio=1.5, global_pool="avg", qkv_bias=False)
g.meta("vit_cases", ["vit", "vit_avg"])
add_names(g, "vit_base_patch16_224", timm.create_model("vit_base_patch16_224", pretrained=False))
vit_sd = {k: v.float().contiguous() for k, v in vit.state_dict().items()}
safetensors.torch.save_file(vit_sd, os.path.join(DATA, "vit_tiny_timm.safetensors"))
print(f"timm {timm.__version__}, torch {torch.__version__}")
g.save("models_vision_golden.safetensors")
