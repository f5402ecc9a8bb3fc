"""A network prepared for inference gives the module's own probabilities; the user's
module is left as it was."""

import numpy as np
import torch

from napari_bnadapt.speed.network import FoldedConvBlock, foldable, inference_module


def test_folded_batchnorm_gives_the_same_output(small_model_2d, small_model_3d):
    for model in (small_model_2d, small_model_3d):
        x = torch.randn((2, 1) + (24,) * model.dims, generator=torch.Generator().manual_seed(0))
        before = {k: v.clone() for k, v in model.module.state_dict().items()}
        with torch.inference_mode():
            reference = model.module.eval()(x)
            for channels_last in (False, True):
                net = inference_module(
                    model.module, torch.device("cpu"), model.dims, channels_last, fold=True
                )
                assert any(isinstance(m, FoldedConvBlock) for m in net.modules())
                np.testing.assert_allclose(net(x).numpy(), reference.numpy(), atol=2e-5)
        after = model.module.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert not any(isinstance(m, FoldedConvBlock) for m in model.module.modules())


def test_only_known_blocks_are_folded():
    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    assert not foldable(plain)
    assert inference_module(plain, torch.device("cpu"), 2, False, fold=True) is plain
