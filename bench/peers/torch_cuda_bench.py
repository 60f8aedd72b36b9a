"""PyTorch on CUDA for the webgpu benchmark (bench/webgpu.ts): fp32 matmul GFLOP/s (TF32 off, as the
webgpu kernels compute in fp32) and the same MLP / CNN / GPT training steps as torch_bench.py,
timed the same way as bench/webgpu.ts (warm-up, then the median of finished runs).

    python3 bench/peers/torch_cuda_bench.py --spec-file=<spec.json written by bench/webgpu.ts> [--out=DIR]

Only where a CUDA GPU is present (the project never needs it; it is a reference point).
"""

import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import train_step  # noqa: E402  (the CPU peer's models and step)


def time_ms(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def main():
    values = dict(a[2:].split('=', 1) for a in sys.argv[1:] if a.startswith('--') and '=' in a)
    spec = json.load(open(values['spec-file']))
    out_dir = values.get('out', '.')
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    # --device=cpu runs the same code without a GPU (a smoke test of the script itself).
    dev = torch.device(values.get('device', 'cuda'))
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    result = {'device': torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'cpu', 'torch': torch.__version__, 'matmul': [], 'steps': []}
    for n in [int(s) for s in values.get('sizes', '256,512,1024,2048,4096').split(',')]:
        a = torch.randn(n, n, device=dev)
        b = torch.randn(n, n, device=dev)
        products = max(1, -(-2_000_000_000 // (2 * n ** 3)))

        def run():
            for _ in range(products):
                torch.matmul(a, b)
            sync()
        med, _ = time_ms(run, 2, 7)
        gflops = 2 * n ** 3 * products / (med * 1e6)
        result['matmul'].append({'n': n, 'gflops': gflops, 'medianMs': med})
        print(f'torch {dev.type} matmul {n}: {gflops:.1f} GFLOP/s')
    # The CPU peer's models and step, built on the GPU: its tensors (and torch.arange in Gpt.forward)
    # land on the default device; the step reads its loss, as tessera's does.
    if dev.type != 'cpu':
        torch.set_default_device(dev)  # torch >= 2.0, as on the GPU machines
    for group in ('mlp', 'cnn', 'gpt'):
        step = train_step(spec, group)
        losses = []
        med, mn = time_ms(lambda: losses.append(step()), 3, 15)
        result['steps'].append({'workload': group, 'medianMs': med, 'minMs': mn, 'firstLoss': losses[0], 'lastLoss': losses[-1]})
        print(f'torch {dev.type} {group} step: {med:.2f} ms (min {mn:.2f})')
    with open(os.path.join(out_dir, 'torch-cuda.json'), 'w') as f:
        json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
