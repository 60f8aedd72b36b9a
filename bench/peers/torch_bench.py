"""Child process of bench/run.ts for PyTorch (CPU, Debian's python3-torch): the same matmul cases and
training steps as tessera's (bench/workloads/tessera-models.ts), with the same timing rules as
bench/harness.ts (warm-up, then runs until maxRuns or the time budget; one slow warm-up ends a case).

    /usr/bin/python3 bench/peers/torch_bench.py --spec=<json from bench/spec.ts> --group=mlp --threads=2

Prints one line per result: '@@bench ' + JSON (fields as BenchRecord in bench/spec.ts).
"""

import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PREFIX = '@@bench '


def parse_args(argv):
    values = {}
    for arg in argv:
        if arg.startswith('--') and '=' in arg:
            key, value = arg[2:].split('=', 1)
            values[key] = value
    if 'spec' not in values or 'group' not in values:
        raise SystemExit(f'torch_bench.py: needs --spec=<json> and --group=matmul|mlp|cnn|gpt (got {argv}); run it through bench/run.ts')
    return json.loads(values['spec']), values['group'], int(values.get('threads', '1'))


def emit(record):
    sys.stdout.write(PREFIX + json.dumps(record) + '\n')
    sys.stdout.flush()


MAX_WARMUP_RUNS = 50  # bench/spec.ts MAX_WARMUP_RUNS


GATE_PREFIX = '@@gate '  # bench/spec.ts GATE_PREFIX
MAX_TIMING_ATTEMPTS = 3  # bench/harness.ts MAX_TIMING_ATTEMPTS


def ask_gate(phase):
    """bench/harness.ts parentGate: asks bench/run.ts whether the cores are quiet (env TESSERA_BENCH_GATE=1)."""
    sys.stdout.write(GATE_PREFIX + json.dumps({'phase': phase}) + '\n')
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("torch_bench.py: stdin closed while waiting for the quiet gate's answer; run it through bench/run.ts")
    return json.loads(line)


def time_samples(fn, timing):
    samples, cpu_samples = [], []
    start = time.perf_counter()
    while len(samples) < timing['maxRuns']:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
        cpu_samples.append((time.process_time() - c0) * 1000)
        spent = (time.perf_counter() - start) * 1000
        if len(samples) >= timing['minRuns'] and spent >= timing['budgetMs']:
            break
        if spent >= 3 * timing['budgetMs']:
            break
    return {'medianMs': statistics.median(samples), 'minMs': min(samples), 'runs': len(samples),
            'cpuMedianMs': statistics.median(cpu_samples)}


def time_one_run(fn):
    t1, c1 = time.perf_counter(), time.process_time()
    fn()
    ms = (time.perf_counter() - t1) * 1000
    return {'medianMs': ms, 'minMs': ms, 'runs': 1, 'cpuMedianMs': (time.process_time() - c1) * 1000}


def time_runs(fn, timing):
    """bench/harness.ts timeRuns, in Python."""
    gated = os.environ.get('TESSERA_BENCH_GATE') == '1'
    warm_start = time.perf_counter()
    i = 0
    one_run_only = False
    # At least `warmup` runs, and more until `warmupMs` was spent (at most MAX_WARMUP_RUNS).
    while i < timing['warmup'] or (i < MAX_WARMUP_RUNS and (time.perf_counter() - warm_start) * 1000 < timing.get('warmupMs', 0)):
        i += 1
        t0 = time.perf_counter()
        fn()
        warm_ms = (time.perf_counter() - t0) * 1000
        if warm_ms > timing['caseLimitMs']:
            one_run_only = True
            break
        if warm_ms > timing['budgetMs']:  # one long warm-up is enough
            break
    attempt = 0
    while True:
        attempt += 1
        before = ask_gate('before') if gated else None
        timed = time_one_run(fn) if one_run_only else time_samples(fn, timing)
        if not gated:
            return timed
        after = ask_gate('after')
        if not after['retry'] or one_run_only or attempt >= MAX_TIMING_ATTEMPTS:
            return dict(timed, quiet={'attempts': attempt, 'before': before, 'after': after})


def reason_of(e):
    return f'{type(e).__name__}: {e}'.split('\n')[0][:300]


def run_matmul(spec, base):
    ms_per_flop = None
    for case in spec['matmul']:
        flops = 2 * case['m'] * case['n'] * case['k']
        record = dict(base, workload='matmul', case=case['name'], flops=flops)
        limit = spec['matmulTiming']['caseLimitMs']
        if ms_per_flop is not None and ms_per_flop * flops > limit:
            emit(dict(record, status='skipped', reason=f'predicted {ms_per_flop * flops / 1000:.0f} s per product from the previous case (limit {limit / 1000:.0f} s)'))
            continue
        try:
            a = torch.randn(case['m'], case['k'])
            b = torch.randn(case['k'], case['n'])
            t = time_runs(lambda: torch.matmul(a, b), spec['matmulTiming'])
            ms_per_flop = t['minMs'] / flops
            emit(dict(record, status='ok', gflops=flops / (t['medianMs'] * 1e6), **t))
        except Exception as e:  # a failing case is recorded, not fatal
            emit(dict(record, status='failed', reason=reason_of(e)))


def mlp_model(spec):
    sizes = spec['mlp']['sizes']
    layers = []
    for i in range(len(sizes) - 1):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
    x = torch.randn(spec['mlp']['batch'], sizes[0])
    y = torch.randint(0, sizes[-1], (spec['mlp']['batch'],))
    return nn.Sequential(*layers), x, y


def cnn_model(spec):
    c = spec['cnn']
    flat = c['c2'] * (c['hw'] // 4) ** 2
    model = nn.Sequential(
        nn.Conv2d(1, c['c1'], 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c['c1'], c['c2'], 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, c['hidden']), nn.ReLU(), nn.Linear(c['hidden'], c['classes']))
    x = torch.randn(c['batch'], 1, c['hw'], c['hw'])
    y = torch.randint(0, c['classes'], (c['batch'],))
    return model, x, y


class Block(nn.Module):
    """Pre-norm block as tessera's nn.TransformerBlock: causal attention, then a GELU MLP of 4·d."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        # torch 1.13 (Debian's) has no F.scaled_dot_product_attention: written out.
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads) + mask, dim=-1)
        x = x + self.out((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self, g):
        super().__init__()
        self.wte = nn.Embedding(g['vocab'], g['d'])
        self.wpe = nn.Embedding(g['context'], g['d'])
        self.blocks = nn.ModuleList(Block(g['d'], g['heads']) for _ in range(g['layers']))
        self.ln_f = nn.LayerNorm(g['d'])
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0, 0.02)
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.bias)
        for blk in self.blocks:
            nn.init.normal_(blk.proj.weight, 0, 0.02 / math.sqrt(2 * g['layers']))
        t = g['context']
        self.register_buffer('mask', torch.full((t, t), -1e9).triu(1))

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t))
        for blk in self.blocks:
            x = blk(x, self.mask[:t, :t])
        return self.ln_f(x) @ self.wte.weight.t()  # head tied to the token embedding


def gpt_model(spec):
    g = spec['gpt']
    x = torch.randint(0, g['vocab'], (g['batch'], g['context']))
    y = torch.randint(0, g['vocab'], (g['batch'], g['context']))
    return Gpt(g), x, y


def train_step(spec, group):
    torch.manual_seed(spec['seed'])
    model, x, y = {'mlp': mlp_model, 'cnn': cnn_model, 'gpt': gpt_model}[group](spec)
    opt = torch.optim.Adam(model.parameters(), lr=spec['lr'], betas=(0.9, 0.999), eps=1e-8)

    def step():
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss.item()

    return step


def blas_library():
    """The BLAS shared library this process loaded (Debian's torch uses whatever libblas.so.3 points to:
    the reference BLAS unless OpenBLAS or BLIS is installed), found after one product runs."""
    torch.matmul(torch.ones(64, 64), torch.ones(64, 64))
    try:
        with open('/proc/self/maps') as maps:
            paths = {line.split()[-1] for line in maps if 'blas' in line.lower() and '/' in line}
    except OSError:
        return 'unknown BLAS'
    names = sorted({os.path.realpath(p) for p in paths})
    if not names:
        return 'BLAS not found in /proc/self/maps'
    kind = 'OpenBLAS' if any('openblas' in n for n in names) else 'BLIS' if any('blis' in n for n in names) \
        else 'reference BLAS' if any('/blas/libblas.so' in n for n in names) else 'BLAS'
    return f'{kind}: {", ".join(names)}'


def main():
    spec, group, threads = parse_args(sys.argv[1:])
    torch.set_num_threads(threads)
    blas = blas_library()
    base = {'library': 'pytorch', 'backend': f'cpu, torch {torch.__version__}, {blas.split(":")[0]}', 'threads': torch.get_num_threads(), 'note': blas}
    if group == 'matmul':
        run_matmul(spec, base)
        return
    record = dict(base, workload=group, case=group)
    try:
        step = train_step(spec, group)
        losses = []
        t = time_runs(lambda: losses.append(step()), spec['trainTiming'])
        if not math.isfinite(losses[-1]):
            raise ValueError(f'the loss is {losses[-1]} after {len(losses)} steps')
        emit(dict(record, status='ok', firstLoss=losses[0], lastLoss=losses[-1], **t))
    except Exception as e:
        emit(dict(record, status='failed', reason=reason_of(e)))


if __name__ == '__main__':
    main()
