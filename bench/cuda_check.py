"""GPU check of inference: a bundled model gives the same reconstruction on CUDA as on the CPU, a model loads
onto the GPU by name, and the per-stroke forward of ViT-B/16 and ViT-L/16 (one image, 75% masked) is timed.
Prints one line per check; exits non-zero when a check fails. Run by bench/cuda_check.sh on a machine with a GPU.

    python bench/cuda_check.py
"""
import statistics
import sys
import time

import torch

from mae_core.checkpoints import load_model
from mae_core.data import load_fashion_mnist_subset
from mae_core.masking import random_mask
from mae_core.model import build_model


def main() -> int:
    assert torch.cuda.is_available(), "no CUDA GPU"
    torch.set_grad_enabled(False)
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__)
    ok = True
    imgs = load_fashion_mnist_subset().images[:64]
    for name in ("fmnist_r75", "fmnist_r75_normpix"):
        cpu, _ = load_model(name)
        gpu, _ = load_model(name, device="cuda")
        mask = random_mask(len(imgs), cpu.config.grid_size, 0.75, seed=0)
        with torch.no_grad():
            _, rec_c, err_c = cpu.reconstruct_pixels(imgs, mask)
            _, rec_g, err_g = gpu.reconstruct_pixels(imgs.cuda(), mask.cuda())
        diff = (rec_c - rec_g.cpu()).abs().max().item()
        emb_diff = (cpu.encode(cpu.normalize(imgs), pool="both")
                    - gpu.encode(gpu.normalize(imgs.cuda()), pool="both").cpu()).abs().max().item()
        good = diff < 1e-3 and emb_diff < 1e-3
        ok &= good
        print(f"{name}: CPU vs CUDA reconstruction max |diff| {diff:.2e}, features {emb_diff:.2e} "
              f"-> {'ok' if good else 'MISMATCH'}")
    for preset in ("mae_vit_base_patch16", "mae_vit_large_patch16"):
        model = build_model(preset).cuda().eval()
        x = torch.rand(1, 3, 224, 224, device="cuda")
        mask = random_mask(1, model.config.grid_size, 0.75, seed=0).cuda()
        times = []
        for i in range(23):
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.no_grad():
                model.reconstruct_pixels(x, mask)
            torch.cuda.synchronize()
            if i >= 3:
                times.append(time.perf_counter() - t)
        print(f"{preset}: one-image reconstruction on the GPU, median of 20: {statistics.median(times) * 1000:.1f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
