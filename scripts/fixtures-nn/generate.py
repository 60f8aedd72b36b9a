#!/usr/bin/env python3
"""Reference fixtures for tessera's NN ops (src/ops/nn), computed with PyTorch.

Run from the repository root with the system Python that has torch installed:
    /usr/bin/python3 scripts/fixtures-nn/generate.py
It writes test/fixtures/torch-nn/<family>.json. Each case holds the op name, its options, the
inputs, the output, a random cotangent and the gradient of sum(output * cotangent) w.r.t. every
floating input (computed by torch.autograd). Values are stored as JSON floats (float64 values
round-trip exactly; float32 cases hold float32 values widened to float64).

torch 1.13 (the version Debian ships) has no rms_norm and no scaled_dot_product_attention, so those
references are the documented formulas written with torch ops in float64 (and differentiated by
torch.autograd); PyTorch >= 2.5's math attention gives zero weights to fully masked rows, which the
reference reproduces explicitly.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
OUT = os.path.join('test', 'fixtures', 'torch-nn')


def enc(t):
    t = t.detach()
    dtype = {torch.float64: 'float64', torch.float32: 'float32', torch.int64: 'int32', torch.int32: 'int32', torch.bool: 'bool'}[t.dtype]
    data = t.reshape(-1).tolist()
    if dtype == 'bool':
        data = [bool(v) for v in data]
    return {'shape': list(t.shape), 'dtype': dtype, 'data': data}


def case(name, op, fn, inputs, options=None, extra=None):
    """inputs: dict name -> tensor. fn(**tensors) -> output tensor. Grads for floating inputs."""
    leaves = {}
    fixed = (extra or {}).get('noGrad', [])
    for k, v in inputs.items():
        if v is not None and v.is_floating_point() and k not in fixed:
            leaves[k] = v.detach().clone().requires_grad_(True)
        else:
            leaves[k] = v
    out = fn(**leaves)
    cot = torch.randn(out.shape, dtype=out.dtype)
    diff = [k for k, v in leaves.items() if v is not None and v.is_floating_point() and k not in fixed]
    grads = torch.autograd.grad((out * cot).sum(), [leaves[k] for k in diff], allow_unused=True)
    c = {
        'name': name,
        'op': op,
        'options': options or {},
        'inputs': {k: enc(v) for k, v in inputs.items() if v is not None},
        'output': enc(out),
        'cotangent': enc(cot),
        'grads': {k: enc(g if g is not None else torch.zeros_like(leaves[k])) for k, g in zip(diff, grads)},
    }
    if extra:
        c.update({k: v for k, v in extra.items() if k != 'noGrad'})
    return c


def rn(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype)


def conv_cases():
    cs = []
    def conv(dims, name, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        f = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
        opts = {'stride': stride, 'padding': padding, 'dilation': dilation, 'groups': groups}
        cs.append(case(name, f'conv{dims}d', lambda x, w, bias=None: f(x, w, bias, stride, padding, dilation, groups),
                       {'x': x, 'w': w, 'bias': b}, opts))
    conv(1, 'conv1d stride 2 pad 1 dil 2 groups 2 bias', rn(2, 4, 9), rn(6, 2, 3), rn(6), 2, 1, 2, 2)
    conv(1, "conv1d padding 'same' dilation 2", rn(1, 3, 7), rn(2, 3, 4), None, 1, 'same', 2, 1)
    conv(2, 'conv2d stride [2,1] pad [1,0] dil [1,2] groups 2 bias', rn(2, 4, 6, 7), rn(6, 2, 3, 2), rn(6), [2, 1], [1, 0], [1, 2], 2)
    conv(2, 'conv2d defaults', rn(1, 3, 5, 5), rn(4, 3, 3, 3))
    conv(2, "conv2d padding 'same' with an odd total padding (extra on the right)", rn(1, 2, 4, 5), rn(3, 2, 2, 3), rn(3), 1, 'same', [1, 2], 1)
    conv(2, 'conv2d depthwise stride 2 pad 1', rn(2, 4, 5, 6), rn(4, 1, 3, 3), rn(4), 2, 1, 1, 4)
    conv(3, 'conv3d stride [1,2,1] pad [1,0,1] dil [2,1,1] groups 2 bias', rn(1, 4, 4, 5, 4), rn(4, 2, 2, 3, 2), rn(4), [1, 2, 1], [1, 0, 1], [2, 1, 1], 2)
    conv(2, 'conv2d float32 stride 2 pad 1 bias', rn(2, 3, 6, 6, dtype=torch.float32), rn(5, 3, 3, 3, dtype=torch.float32), rn(5, dtype=torch.float32), 2, 1, 1, 1)

    def convt(dims, name, x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        f = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[dims]
        opts = {'stride': stride, 'padding': padding, 'outputPadding': output_padding, 'groups': groups, 'dilation': dilation}
        cs.append(case(name, f'convTranspose{dims}d', lambda x, w, bias=None: f(x, w, bias, stride, padding, output_padding, groups, dilation),
                       {'x': x, 'w': w, 'bias': b}, opts))
    convt(2, 'convTranspose2d stride [2,3] pad [1,0] outpad [1,2] groups 2 dil [1,2] bias', rn(2, 4, 3, 4), rn(4, 3, 3, 2), rn(6), [2, 3], [1, 0], [1, 2], 2, [1, 2])
    convt(2, 'convTranspose2d stride 1 pad 1', rn(1, 2, 4, 4), rn(2, 3, 3, 3))
    convt(2, 'convTranspose2d stride 2 outpad 1 float32', rn(1, 3, 3, 3, dtype=torch.float32), rn(3, 2, 2, 2, dtype=torch.float32), rn(2, dtype=torch.float32), 2, 0, 1)
    convt(1, 'convTranspose1d stride 3 pad 2 outpad 1 dil 2', rn(2, 2, 5), rn(2, 3, 3), rn(3), 3, 2, 1, 1, 2)
    convt(3, 'convTranspose3d stride 2 pad 1 groups 2', rn(1, 4, 2, 3, 2), rn(4, 1, 3, 2, 2), None, 2, 1, 0, 2, 1)
    return cs


def pool_cases():
    cs = []
    def maxp(dims, name, x, k, s=None, p=0, d=1, ceil=False):
        f = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[dims]
        cs.append(case(name, f'maxPool{dims}d', lambda x: f(x, k, s, p, d, ceil), {'x': x}, {'kernelSize': k, 'stride': s, 'padding': p, 'dilation': d, 'ceilMode': ceil}))
    maxp(1, 'maxPool1d k3 s2 p1 d2', rn(2, 3, 9), 3, 2, 1, 2)
    maxp(2, 'maxPool2d k[3,2] s2 p1 d[1,2]', rn(2, 3, 7, 6), [3, 2], 2, 1, [1, 2])
    maxp(2, 'maxPool2d overlapping windows with ties', torch.round(rn(1, 2, 6, 6)), 3, 1, 1)
    maxp(3, 'maxPool3d k2 s[2,1,2]', rn(1, 2, 5, 4, 6), 2, [2, 1, 2])
    maxp(2, 'maxPool2d ceilMode k3 s2 p1', rn(1, 2, 6, 7), 3, 2, 1, 1, True)
    maxp(1, 'maxPool1d ceilMode k2 s2 (last window would start in the padding)', rn(1, 2, 5), 2, 2, 1, 1, True)

    def avgp(dims, name, x, k, s=None, p=0, cip=True, ceil=False):
        f = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[dims]
        cs.append(case(name, f'avgPool{dims}d', lambda x: f(x, k, s, p, ceil, cip), {'x': x}, {'kernelSize': k, 'stride': s, 'padding': p, 'countIncludePad': cip, 'ceilMode': ceil}))
    avgp(1, 'avgPool1d k3 s2 p1', rn(2, 3, 8), 3, 2, 1)
    avgp(1, 'avgPool1d k3 s2 p1 countIncludePad false', rn(2, 3, 8), 3, 2, 1, False)
    avgp(2, 'avgPool2d k[3,2] s[1,2] p[1,1]', rn(2, 2, 5, 6), [3, 2], [1, 2], [1, 1])
    avgp(2, 'avgPool2d k3 s2 p1 countIncludePad false', rn(1, 2, 6, 7), 3, 2, 1, False)
    avgp(3, 'avgPool3d k2', rn(1, 2, 4, 5, 4), 2)
    avgp(2, 'avgPool2d ceilMode k3 s2 p1', rn(1, 2, 6, 7), 3, 2, 1, True, True)
    avgp(2, 'avgPool2d ceilMode k3 s2 p1 countIncludePad false', rn(1, 2, 6, 7), 3, 2, 1, False, True)
    avgp(1, 'avgPool1d ceilMode k3 s2 no padding', rn(2, 1, 8), 3, 2, 0, True, True)
    avgp(1, 'avgPool1d ceilMode k2 s2 p1 (window dropped)', rn(1, 1, 5), 2, 2, 1, True, True)

    for out_size, x in [([3, 4], rn(2, 3, 7, 5)), ([2, 2], rn(1, 2, 4, 6)), ([5, 1], rn(1, 1, 5, 3))]:
        cs.append(case(f'adaptiveAvgPool2d {out_size}', 'adaptiveAvgPool2d', lambda x, o=out_size: F.adaptive_avg_pool2d(x, o), {'x': x}, {'outputSize': out_size}))
    cs.append(case('adaptiveAvgPool1d 3', 'adaptiveAvgPool1d', lambda x: F.adaptive_avg_pool1d(x, 3), {'x': rn(2, 2, 7)}, {'outputSize': 3}))
    return cs


def norm_cases():
    cs = []
    x = rn(3, 4, 5)
    x[0, 0, 0] = 800.0  # large logits: the stable form must not overflow
    for dim in [1, -1]:
        cs.append(case(f'softmax dim {dim}', 'softmax', lambda x, d=dim: F.softmax(x, d), {'x': x}, {'axis': dim}))
        cs.append(case(f'logSoftmax dim {dim}', 'logSoftmax', lambda x, d=dim: F.log_softmax(x, d), {'x': x}, {'axis': dim}))
    cs.append(case('softmax float32', 'softmax', lambda x: F.softmax(x, -1), {'x': rn(4, 6, dtype=torch.float32)}, {'axis': -1}))
    cs.append(case('layerNorm [3,4] affine', 'layerNorm', lambda x, weight, bias: F.layer_norm(x, [3, 4], weight, bias, 1e-5),
                   {'x': rn(2, 3, 4), 'weight': rn(3, 4), 'bias': rn(3, 4)}, {'normalizedShape': [3, 4], 'eps': 1e-5}))
    cs.append(case('layerNorm [6] plain eps 1e-3', 'layerNorm', lambda x: F.layer_norm(x, [6], None, None, 1e-3), {'x': rn(5, 6)}, {'normalizedShape': [6], 'eps': 1e-3}))
    cs.append(case('layerNorm float32', 'layerNorm', lambda x, weight, bias: F.layer_norm(x, [8], weight, bias),
                   {'x': rn(3, 8, dtype=torch.float32), 'weight': rn(8, dtype=torch.float32), 'bias': rn(8, dtype=torch.float32)}, {'normalizedShape': [8], 'eps': 1e-5}))

    def rms(x, weight=None, eps=1e-6):
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return y * weight if weight is not None else y
    cs.append(case('rmsNorm [5] weight eps 1e-6 (formula)', 'rmsNorm', lambda x, weight: rms(x, weight), {'x': rn(2, 3, 5), 'weight': rn(5)}, {'normalizedShape': [5], 'eps': 1e-6}))

    # batchNorm: training (batch statistics, running stats updated) and eval (running stats used).
    for name, x in [('batchNorm training [4,3,5]', rn(4, 3, 5)), ('batchNorm training [2,3,2,3]', rn(2, 3, 2, 3))]:
        rm, rv = rn(3), torch.rand(3, dtype=torch.float64) + 0.5
        rm_after, rv_after = rm.clone(), rv.clone()
        F.batch_norm(x, rm_after, rv_after, None, None, True, 0.2, 1e-5)
        cs.append(case(name, 'batchNorm', lambda x, weight, bias, runningMean, runningVar: F.batch_norm(x, runningMean.clone(), runningVar.clone(), weight, bias, True, 0.2, 1e-5),
                       {'x': x, 'weight': rn(3), 'bias': rn(3), 'runningMean': rm, 'runningVar': rv},
                       {'training': True, 'momentum': 0.2, 'eps': 1e-5},
                       {'noGrad': ['runningMean', 'runningVar'], 'after': {'runningMean': enc(rm_after), 'runningVar': enc(rv_after)}}))
    rm, rv = rn(3), torch.rand(3, dtype=torch.float64) + 0.5
    cs.append(case('batchNorm eval [2,3,2,2]', 'batchNorm', lambda x, weight, bias, runningMean, runningVar: F.batch_norm(x, runningMean, runningVar, weight, bias, False, 0.1, 1e-3),
                   {'x': rn(2, 3, 2, 2), 'weight': rn(3), 'bias': rn(3), 'runningMean': rm, 'runningVar': rv},
                   {'training': False, 'eps': 1e-3}, {'noGrad': ['runningMean', 'runningVar'], 'after': {'runningMean': enc(rm), 'runningVar': enc(rv)}}))

    idx = torch.tensor([[0, 2, 5], [2, 6, 0]])
    cs.append(case('embedding paddingIdx 2', 'embedding', lambda indices, weight: F.embedding(indices, weight, padding_idx=2),
                   {'indices': idx, 'weight': rn(7, 4)}, {'paddingIdx': 2}))
    cs.append(case('embedding', 'embedding', lambda indices, weight: F.embedding(indices, weight), {'indices': torch.tensor([3, 1, 3]), 'weight': rn(4, 3)}, {}))
    return cs


def loss_cases():
    cs = []
    tgt = torch.tensor([1, -100, 3, 0, 3])
    w = torch.rand(4, dtype=torch.float64) + 0.5
    for red in ['mean', 'sum', 'none']:
        cs.append(case(f'crossEntropy weight + ignoreIndex + labelSmoothing 0.2, {red}', 'crossEntropy',
                       lambda logits, target, weight, r=red: F.cross_entropy(logits, target, weight, ignore_index=-100, reduction=r, label_smoothing=0.2),
                       {'logits': rn(5, 4), 'target': tgt, 'weight': w}, {'reduction': red, 'labelSmoothing': 0.2, 'ignoreIndex': -100}, {'noGrad': ['weight']}))
    cs.append(case('crossEntropy ignoreIndex 2 + labelSmoothing 0.1, no weight', 'crossEntropy',
                   lambda logits, target: F.cross_entropy(logits, target, ignore_index=2, label_smoothing=0.1),
                   {'logits': rn(6, 3), 'target': torch.tensor([0, 2, 1, 2, 1, 0])}, {'labelSmoothing': 0.1, 'ignoreIndex': 2}))
    cs.append(case('crossEntropy [N,C,d] targets [N,d]', 'crossEntropy', lambda logits, target: F.cross_entropy(logits, target),
                   {'logits': rn(2, 4, 3), 'target': torch.tensor([[0, 3, 1], [2, 2, 0]])}, {}))
    cs.append(case('crossEntropy [N,C,d] + weight + ignoreIndex + labelSmoothing', 'crossEntropy',
                   lambda logits, target, weight: F.cross_entropy(logits, target, weight, ignore_index=1, label_smoothing=0.25),
                   {'logits': rn(2, 3, 4), 'target': torch.tensor([[0, 1, 2, 2], [1, 1, 0, 2]]), 'weight': torch.rand(3, dtype=torch.float64) + 0.5},
                   {'ignoreIndex': 1, 'labelSmoothing': 0.25}, {'noGrad': ['weight']}))
    cs.append(case('crossEntropy class probabilities + labelSmoothing', 'crossEntropy',
                   lambda logits, target: F.cross_entropy(logits, target, label_smoothing=0.3),
                   {'logits': rn(3, 5), 'target': F.softmax(rn(3, 5), -1)}, {'labelSmoothing': 0.3}, {'noGrad': ['target']}))
    cs.append(case('crossEntropy float32', 'crossEntropy', lambda logits, target: F.cross_entropy(logits, target),
                   {'logits': rn(4, 5, dtype=torch.float32), 'target': torch.tensor([4, 0, 2, 2])}, {}))
    for red in ['mean', 'none']:
        cs.append(case(f'nllLoss weight ignoreIndex 0 {red}', 'nllLoss', lambda input, target, weight, r=red: F.nll_loss(input, target, weight, ignore_index=0, reduction=r),
                       {'input': F.log_softmax(rn(5, 3), -1), 'target': torch.tensor([1, 0, 2, 2, 1]), 'weight': torch.rand(3, dtype=torch.float64) + 0.5},
                       {'reduction': red, 'ignoreIndex': 0}, {'noGrad': ['weight']}))
    for red in ['mean', 'sum', 'none']:
        cs.append(case(f'mseLoss {red}', 'mseLoss', lambda input, target, r=red: F.mse_loss(input, target, reduction=r), {'input': rn(3, 4), 'target': rn(3, 4)}, {'reduction': red}))
    logits = rn(4, 3) * 3
    logits[0, 0], logits[1, 1], logits[2, 2], logits[3, 0] = 60.0, -60.0, 0.0, -0.0
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.3], [1.0, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    cs.append(case('bceWithLogits extreme logits', 'binaryCrossEntropyWithLogits', lambda logits, target: F.binary_cross_entropy_with_logits(logits, target),
                   {'logits': logits, 'target': target}, {}))
    cs.append(case('bceWithLogits weight posWeight sum', 'binaryCrossEntropyWithLogits',
                   lambda logits, target, weight, posWeight: F.binary_cross_entropy_with_logits(logits, target, weight, reduction='sum', pos_weight=posWeight),
                   {'logits': logits, 'target': target, 'weight': torch.rand(4, 3, dtype=torch.float64), 'posWeight': torch.rand(3, dtype=torch.float64) * 3},
                   {'reduction': 'sum'}, {'noGrad': ['weight', 'posWeight']}))
    return cs


def sdpa(q, k, v, mask=None, causal=False, scale=None):
    """The math of torch's scaled_dot_product_attention (>= 2.5: fully masked rows give zeros)."""
    L, S = q.shape[-2], k.shape[-2]
    s = q @ k.transpose(-2, -1) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    if causal:
        mask = torch.ones(L, S, dtype=torch.bool).tril()
    if mask is not None and mask.dtype == torch.bool:
        allowed = mask.expand(s.shape)
        empty = ~allowed.any(-1, keepdim=True)
        s = s.masked_fill(~allowed, float('-inf')).masked_fill(empty, 0.0)
        return torch.softmax(s, -1).masked_fill(empty, 0.0) @ v
    if mask is not None:
        s = s + mask
    return torch.softmax(s, -1) @ v


def attention_cases():
    cs = []
    q, k, v = rn(2, 2, 3, 4), rn(2, 2, 5, 4), rn(2, 2, 5, 3)
    cs.append(case('sdpa causal L=3 S=5', 'scaledDotProductAttention', lambda q, k, v: sdpa(q, k, v, causal=True), {'q': q, 'k': k, 'v': v}, {'isCausal': True}))
    pad = torch.tensor([[True, True, True, False, False], [True, True, True, True, True]]).reshape(2, 1, 1, 5)
    cs.append(case('sdpa boolean padding mask', 'scaledDotProductAttention', lambda q, k, v, attnMask: sdpa(q, k, v, attnMask),
                   {'q': q, 'k': k, 'v': v, 'attnMask': pad}, {}))
    rows = torch.tensor([[True, False, True, False, True], [False] * 5, [True] * 5])
    cs.append(case('sdpa mask with a fully masked row', 'scaledDotProductAttention', lambda q, k, v, attnMask: sdpa(q, k, v, attnMask),
                   {'q': q, 'k': k, 'v': v, 'attnMask': rows}, {}))
    add = rn(3, 5)
    cs.append(case('sdpa additive mask, scale 0.3', 'scaledDotProductAttention', lambda q, k, v, attnMask: sdpa(q, k, v, attnMask, scale=0.3),
                   {'q': q, 'k': k, 'v': v, 'attnMask': add}, {'scale': 0.3}, {'noGrad': ['attnMask']}))
    return cs


def main():
    os.makedirs(OUT, exist_ok=True)
    for fam, fn in [('conv', conv_cases), ('pool', pool_cases), ('norm', norm_cases), ('loss', loss_cases), ('attention', attention_cases)]:
        path = os.path.join(OUT, f'{fam}.json')
        with open(path, 'w') as f:
            json.dump({'generator': 'scripts/fixtures-nn/generate.py', 'torch': torch.__version__, 'cases': fn()}, f, separators=(',', ':'))
        print(path, os.path.getsize(path))


if __name__ == '__main__':
    main()
