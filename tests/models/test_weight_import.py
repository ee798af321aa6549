"""Weight import (avssl.models.weight_import, `avssl import-weights`): torchvision, XDC and GDT
layouts load into avssl's VideoResNet, and AVID-CMA's into avssl's avid_r2plus1d_18, with zero missing
and zero unexpected keys, and give the reference network's features.

The references are written here as minimal torch modules: torchvision's layout
(torchvision.models.video.resnet, which GDT's src/vmz.py copies; torchvision itself is not a
dependency), wrapped as GDT's model.py wraps it; and AVID-CMA's R2Plus1D (models/video.py,
models/network_blocks.py at commit 9250866718d0), wrapped as its models/av_wrapper.py wraps it. They
import nothing from avssl."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from torch import nn

from avssl.errors import UsageError
from avssl.models.factory import build_encoder
from avssl.models.weight_import import convert_state_dict


def conv2plus1d(cin, cout, mid, stride=1):
    return nn.Sequential(nn.Conv3d(cin, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
                         nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
                         nn.Conv3d(mid, cout, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False))


def conv3d(cin, cout, mid, stride=1):
    return nn.Conv3d(cin, cout, 3, stride, 1, bias=False)


def conv_no_temporal(cin, cout, mid, stride=1):
    return nn.Conv3d(cin, cout, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)


class Block(nn.Module):
    def __init__(self, cin, cout, builder, stride, downsample):
        super().__init__()
        mid = (cin * cout * 27) // (cin * 9 + 3 * cout)
        self.conv1 = nn.Sequential(builder(cin, cout, mid, stride), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(builder(cout, cout, mid), nn.BatchNorm3d(cout))
        self.relu, self.downsample = nn.ReLU(inplace=True), downsample

    def forward(self, x):
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + res)


class TorchvisionVideoResNet(nn.Module):
    """torchvision's VideoResNet-18 layout: stem, layer1..4 (two blocks each), avgpool, fc."""

    def __init__(self, arch):
        super().__init__()
        builders = {"r2plus1d_18": [conv2plus1d] * 4, "r3d_18": [conv3d] * 4,
                    "mc3_18": [conv3d] + [conv_no_temporal] * 3}[arch]
        if arch == "r2plus1d_18":
            self.stem = nn.Sequential(nn.Conv3d(3, 45, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
                                      nn.BatchNorm3d(45), nn.ReLU(inplace=True),
                                      nn.Conv3d(45, 64, (3, 1, 1), 1, (1, 0, 0), bias=False),
                                      nn.BatchNorm3d(64), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                                      nn.BatchNorm3d(64), nn.ReLU(inplace=True))
        cin = 64
        for i, (planes, builder) in enumerate(zip((64, 128, 256, 512), builders)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or cin != planes:
                ds = (1, stride, stride) if builder is conv_no_temporal else (stride,) * 3
                down = nn.Sequential(nn.Conv3d(cin, planes, 1, ds, bias=False), nn.BatchNorm3d(planes))
            setattr(self, f"layer{i + 1}", nn.Sequential(Block(cin, planes, builder, stride, down),
                                                         Block(planes, planes, builder, 1, None)))
            cin = planes
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(512, 400)

    def features(self, x):
        x = self.stem(x)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.avgpool(x).flatten(1)


def reference(arch, seed=0):
    """A reference network in eval mode with random weights and BatchNorm statistics."""
    torch.manual_seed(seed)
    net = TorchvisionVideoResNet(arch)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def load_strictly(imported):
    encoder = build_encoder(imported.architecture).eval()
    result = encoder.load_state_dict(imported.state_dict, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    return encoder


@pytest.mark.parametrize("arch", ["r2plus1d_18", "r3d_18", "mc3_18"])
def test_torchvision_layout_loads_and_gives_the_reference_features(arch):
    net = reference(arch)
    state = net.state_dict()
    imported = convert_state_dict({f"module.{k}": v for k, v in state.items()}, "torchvision")
    assert imported.architecture == {"name": arch, "width": 64, "layers": [2, 2, 2, 2], "in_channels": 3}
    assert imported.dropped == ["fc.weight", "fc.bias"] and len(imported.state_dict) == len(state) - 2
    encoder = load_strictly(imported)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), net.features(x), atol=1e-5, rtol=1e-4)


def test_xdc_is_torchvisions_r2plus1d_layout():
    net = reference("r2plus1d_18", seed=1)
    imported = convert_state_dict(net.state_dict(), "xdc")
    encoder = load_strictly(imported)
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), net.features(x), atol=1e-5, rtol=1e-4)


class GDTLike(nn.Module):
    """GDT's model.py: video_network.base = vmz r2plus1d_18 with fc = Identity, an audio network and heads."""

    def __init__(self):
        super().__init__()
        self.video_network = nn.Module()
        self.video_network.base = reference("r2plus1d_18", seed=2)
        self.video_network.base.fc = nn.Identity()
        self.audio_network = nn.Module()
        self.audio_network.base = nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64))
        self.mlp_v, self.mlp_a = nn.Linear(512, 256), nn.Linear(512, 256)


def test_gdt_checkpoint_gives_its_video_network():
    gdt = GDTLike().eval()
    checkpoint = {"model": {f"module.{k}": v for k, v in gdt.state_dict().items()}, "epoch": 100}
    imported = convert_state_dict(checkpoint, "gdt")
    video_keys = [k for k in gdt.state_dict() if k.startswith("video_network.base.")]
    assert len(imported.state_dict) == len(video_keys)
    assert len(imported.dropped) == len(gdt.state_dict()) - len(video_keys)
    assert all(k.startswith(("audio_network.", "mlp_v.", "mlp_a.")) for k in imported.dropped)
    encoder = load_strictly(imported)
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), gdt.video_network.base.features(x), atol=1e-5, rtol=1e-4)


class UpstreamR2P1DBlock(nn.Module):
    """AVID-CMA's BasicR2P1DBlock: spatial/temporal convs at full width, BN after the residual sum."""

    def __init__(self, cin, cout, stride=(1, 1, 1)):
        super().__init__()
        self.spt_conv1 = nn.Conv3d(cin, cout, (1, 3, 3), (1, stride[1], stride[2]), (0, 1, 1), bias=False)
        self.spt_bn1 = nn.BatchNorm3d(cout)
        self.tmp_conv1 = nn.Conv3d(cout, cout, (3, 1, 1), (stride[0], 1, 1), (1, 0, 0), bias=False)
        self.tmp_bn1 = nn.BatchNorm3d(cout)
        self.spt_conv2 = nn.Conv3d(cout, cout, (1, 3, 3), 1, (0, 1, 1), bias=False)
        self.spt_bn2 = nn.BatchNorm3d(cout)
        self.tmp_conv2 = nn.Conv3d(cout, cout, (3, 1, 1), 1, (1, 0, 0), bias=False)
        self.out_bn = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.res = cin != cout or any(s != 1 for s in stride)
        if self.res:
            self.res_conv = nn.Conv3d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        main = self.tmp_conv1(self.relu(self.spt_bn1(self.spt_conv1(x))))
        main = self.relu(self.tmp_bn1(main))
        main = self.tmp_conv2(self.relu(self.spt_bn2(self.spt_conv2(main))))
        return self.relu(self.out_bn(main + (self.res_conv(x) if self.res else x)))


class UpstreamR2Plus1D(nn.Module):
    """AVID-CMA's R2Plus1D(depth=18): 3x7x7 stem + max pool, conv2x..conv5x of two blocks, global max pool."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                                   nn.BatchNorm3d(64), nn.ReLU(inplace=True),
                                   nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        self.conv2x = nn.Sequential(UpstreamR2P1DBlock(64, 64), UpstreamR2P1DBlock(64, 64))
        self.conv3x = nn.Sequential(UpstreamR2P1DBlock(64, 128, (2, 2, 2)), UpstreamR2P1DBlock(128, 128))
        self.conv4x = nn.Sequential(UpstreamR2P1DBlock(128, 256, (2, 2, 2)), UpstreamR2P1DBlock(256, 256))
        self.conv5x = nn.Sequential(UpstreamR2P1DBlock(256, 512, (2, 2, 2)), UpstreamR2P1DBlock(512, 512))
        self.pool = nn.AdaptiveMaxPool3d((1, 1, 1))

    def forward(self, x, return_embs=False):
        conv5x = self.conv5x(self.conv4x(self.conv3x(self.conv2x(self.conv1(x)))))
        return {"conv5x": conv5x} if return_embs else self.pool(conv5x)


class UpstreamHead(nn.Module):
    def __init__(self, dims):
        super().__init__()
        layers, d_in = [], 512
        for i, d in enumerate(dims):
            layers += [nn.Linear(d_in, d)] + ([nn.ReLU(inplace=True)] if i < len(dims) - 1 else [])
            d_in = d
        self.projection = nn.Sequential(*layers)


class AVWrapperLike(nn.Module):
    """AVID-CMA's AV_Wrapper (proj_dim [512, 512, 128]) with a small stand-in audio model."""

    def __init__(self):
        super().__init__()
        self.video_model = UpstreamR2Plus1D()
        self.audio_model = nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64))
        self.video_proj, self.audio_proj = UpstreamHead([512, 512, 128]), UpstreamHead([512, 512, 128])


def randomise_batch_norms(net, seed):
    torch.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def avid_features(video_model, x):
    with torch.no_grad():
        return video_model(x).view(x.shape[0], -1)  # as AV_Wrapper.forward flattens it


def count(module):
    return sum(p.numel() for p in module.parameters())


# AVID-CMA's R2Plus1D(depth=18) trunk, from its definition (the reference below and by hand: stem 28,352;
# conv2x 197,632; conv3x 722,944; conv4x 2,887,680; conv5x 11,542,528); torchvision's R(2+1)D-18 trunk
# has 31,299,648 (avssl's r2plus1d_18 without its 400-class head)
AVID_R2PLUS1D_18_PARAMETERS = 15_379_136
AVID_ARCHITECTURE = {"name": "avid_r2plus1d_18", "width": 64, "layers": [2, 2, 2, 2], "in_channels": 3}


def test_avid_cma_pretraining_checkpoint_gives_its_video_model():
    av = randomise_batch_norms(AVWrapperLike(), seed=4)
    state = av.state_dict()
    # utils/main_utils.py CheckpointManager.save: {"epoch", "model": DDP(AV_Wrapper).state_dict(), ...}
    checkpoint = {"epoch": 20, "model": {f"module.{k}": v for k, v in state.items()}}
    imported = convert_state_dict(checkpoint, "avid-cma", "avid.pth.tar")
    video_keys = [k for k in state if k.startswith("video_model.")]
    assert imported.architecture == AVID_ARCHITECTURE and imported.layout == "avid-cma"
    assert sorted(imported.state_dict) == sorted(k[len("video_model."):] for k in video_keys)
    assert sorted(imported.dropped) == sorted(k for k in state if k not in video_keys)
    assert all(k.startswith(("audio_model.", "video_proj.", "audio_proj.")) for k in imported.dropped)
    encoder = load_strictly(imported)
    x = torch.randn(2, 3, 8, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), avid_features(av.video_model, x), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(encoder(x, return_map=True), av.video_model(x, return_embs=True)["conv5x"],
                                   atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("wrap", ["fine-tuned", "bare"])
def test_avid_cma_fine_tuned_and_bare_state_dicts(wrap):
    net = randomise_batch_norms(UpstreamR2Plus1D(), seed=5)
    if wrap == "fine-tuned":  # eval-action-recg.py: ClassificationWrapper(feature_extractor, classifier)
        state = {f"module.feature_extractor.{k}": v for k, v in net.state_dict().items()}
        payload = {"epoch": 3, "state_dict": {**state, "module.classifier.weight": torch.zeros(101, 512),
                                              "module.classifier.bias": torch.zeros(101)}}
        dropped = ["classifier.weight", "classifier.bias"]
    else:
        payload, dropped = net.state_dict(), []
    imported = convert_state_dict(payload, "avid-cma")
    assert imported.dropped == dropped and len(imported.state_dict) == len(net.state_dict())
    encoder = load_strictly(imported)
    x = torch.randn(1, 3, 4, 32, 32)
    torch.testing.assert_close(encoder(x), avid_features(net, x), atol=1e-5, rtol=1e-4)


def test_avid_r2plus1d_18_parameter_count_is_upstreams():
    reference_count = count(UpstreamR2Plus1D())
    assert reference_count == AVID_R2PLUS1D_18_PARAMETERS
    encoder = build_encoder({"name": "avid_r2plus1d_18"})
    assert count(encoder) == AVID_R2PLUS1D_18_PARAMETERS and encoder.out_dim == 512
    assert {k: v.shape for k, v in encoder.state_dict().items()} == \
        {k: v.shape for k, v in UpstreamR2Plus1D().state_dict().items()}


def conv_out(n, kernel, stride, pad):
    return (n + 2 * pad - kernel) // stride + 1


def avid_map_size(t, h, w):
    # stem: spatial /2 (k7 p3) then max pool /2 (k3 p1); conv3x..conv5x stride 2 in time and space (k3 p1)
    out = conv_out
    h, w = out(out(h, 7, 2, 3), 3, 2, 1), out(out(w, 7, 2, 3), 3, 2, 1)
    for _ in range(3):
        t, h, w = out(t, 3, 2, 1), out(h, 3, 2, 1), out(w, 3, 2, 1)
    return t, h, w


@pytest.mark.parametrize("name", ["avid_r2plus1d_18", "avid_r2plus1d_18-tiny"])
@pytest.mark.parametrize("thw", [(16, 112, 112), (3, 17, 40), (8, 24, 16)])
def test_avid_r2plus1d_map_and_pooled_shapes(name, thw):
    encoder = build_encoder({"name": name}).eval()
    x = torch.randn(2, 3, *thw)
    with torch.no_grad():
        feature_map, pooled = encoder(x, return_map=True), encoder(x)
    assert tuple(feature_map.shape) == (2, encoder.out_dim, *avid_map_size(*thw))
    assert tuple(pooled.shape) == (2, encoder.out_dim)
    torch.testing.assert_close(pooled, feature_map.amax(dim=(2, 3, 4)))  # global max pooling, as upstream
    assert avid_map_size(16, 112, 112) == (2, 4, 4)


@pytest.mark.parametrize("payload, layout, match", [
    ({"epoch": 3}, "torchvision", "holds no state dict"),
    ({"model": {"audio_network.base.0.weight": torch.zeros(1)}}, "gdt", "not a GDT checkpoint"),
    ({"conv2x.0.spt_conv1.weight": torch.zeros(1)}, "torchvision", "no 'stem.0.weight'"),
    ({"stem.0.weight": torch.zeros(1)}, "caffe2", "unknown weights layout"),
    ({"model": {"module.audio_model.0.weight": torch.zeros(1)}}, "avid-cma", "not an AVID-CMA checkpoint"),
    ({"stem.0.weight": torch.zeros(1)}, "avid-cma", "not an AVID-CMA checkpoint"),
    # upstream's depth 10 puts a bare block in each stage (conv2x.spt_conv1.*): not depth 18 or 34
    ({"conv1.0.weight": torch.zeros(64, 3, 3, 7, 7), "conv2x.spt_conv1.weight": torch.zeros(1)}, "avid-cma",
     "no consecutive conv2x.0"),
])
def test_files_of_another_layout_get_a_clear_error(payload, layout, match):
    with pytest.raises(UsageError, match=match):
        convert_state_dict(payload, layout, "w.pth")


def test_import_weights_verb_writes_an_encoder_file(tmp_path, capsys):
    import avssl
    from avssl.cli import import_weights

    net = reference("mc3_18", seed=3)
    torch.save(net.state_dict(), tmp_path / "mc3.pth")
    parser = argparse.ArgumentParser()
    import_weights.add_arguments(parser)
    args = parser.parse_args([str(tmp_path / "mc3.pth"), "--layout", "torchvision", "--out", str(tmp_path / "e.pt")])
    assert import_weights.run(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dropped"] == ["fc.weight", "fc.bias"] and summary["architecture"]["name"] == "mc3_18"
    encoder = avssl.load_encoder(tmp_path / "e.pt").eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), net.features(x), atol=1e-5, rtol=1e-4)
    wrong = parser.parse_args([str(tmp_path / "mc3.pth"), "--layout", "torchvision", "--arch", "r3d_18",
                               "--out", str(tmp_path / "f.pt")])
    with pytest.raises(UsageError, match="--arch r3d_18, but the weights are a mc3_18"):
        import_weights.run(wrong)


def test_import_weights_verb_takes_an_avid_cma_checkpoint(tmp_path, capsys):
    import avssl
    from avssl.cli import import_weights

    av = randomise_batch_norms(AVWrapperLike(), seed=6)
    checkpoint = {"epoch": 20, "model": {f"module.{k}": v for k, v in av.state_dict().items()},
                  "optimizer": {"state": {}, "param_groups": [{"lr": 2e-4, "params": [0, 1]}]}}
    torch.save(checkpoint, tmp_path / "avid.pth.tar")
    parser = argparse.ArgumentParser()
    import_weights.add_arguments(parser)
    args = parser.parse_args([str(tmp_path / "avid.pth.tar"), "--layout", "avid-cma", "--arch", "avid_r2plus1d_18",
                              "--out", str(tmp_path / "avid.pt")])
    assert import_weights.run(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["architecture"] == AVID_ARCHITECTURE
    assert summary["dropped_count"] == len([k for k in av.state_dict() if not k.startswith("video_model.")])
    encoder = avssl.load_encoder(tmp_path / "avid.pt").eval()
    assert encoder.config == AVID_ARCHITECTURE
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), avid_features(av.video_model, x), atol=1e-5, rtol=1e-4)
    wrong = parser.parse_args([str(tmp_path / "avid.pth.tar"), "--layout", "avid-cma", "--arch", "r2plus1d_18",
                               "--out", str(tmp_path / "f.pt")])
    with pytest.raises(UsageError, match="--arch r2plus1d_18, but the weights are a avid_r2plus1d_18"):
        import_weights.run(wrong)


def test_avid_r2plus1d_serves_as_a_runs_video_encoder():
    from pathlib import Path

    from avssl.evaluate.av_model import embed_video_map
    from avssl.methods.configs import load_config
    from avssl.methods.registry import method_class

    configs = Path(__file__).resolve().parents[2] / "src" / "avssl" / "configs"
    config = load_config(configs / "av-nce-tiny.yaml", ["model.video.name=avid_r2plus1d_18-tiny"])
    assert config.model.video["name"] == "avid_r2plus1d_18-tiny"
    method = method_class(config.method.name)(config).eval()
    assert method.video_encoder.config["name"] == "avid_r2plus1d_18"
    clips = torch.randint(0, 256, (2, 3, 8, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        embedded = method.embed_video(method.video_input(clips, train=False))
        per_position = embed_video_map(method, clips)
    assert embedded.shape == (2, config.model.embed_dim)
    assert per_position.shape == (2, *avid_map_size(8, 32, 32)[1:], config.model.embed_dim)  # time averaged
