// A real model through tessera's ONNX loader: Silero VAD v5 (test/fixtures/onnx/silero_vad_v5.onnx,
// MIT), a voice-activity detector built from Conv, LSTM and nested If nodes (one branch per sample
// rate), run on every backend against onnxruntime-node on the same deterministic audio.
//
// The signal is a seeded synthetic "voice" (a 140 Hz harmonic series, amplitude-modulated at a
// syllable rate) over seeded noise, cut into chunks of 512 samples at 16 kHz and 256 at 8 kHz,
// the chunk sizes the model is made for. Each runtime carries its own recurrent state from chunk
// to chunk (stateN fed back as state), so errors that built up in the LSTM state would show.
//
// Tolerance: everything is float32 on both sides; the two differ only in summation order (the
// STFT convolution, 258 or 130 channels with a 256- or 128-tap kernel, the four 3-tap encoder
// convolutions of up to 129 input channels, the LSTM's 128-wide products), i.e. a few float32
// ulps per op. Over the six chunks the differences seen on cpu and
// wasm are at most 3e-6 on the state (whose entries reach about 6) and 1.2e-7 on the
// probabilities (onnxruntime gives about 0.1 for the noise chunk, 0.89 to 0.999 for the voice).
// We require 1e-4 (absolute, plus 1e-4 relative on the state): a margin of 30x or more for other
// summation orders (webgpu's kernels), yet far below the effect of a real mistake (a gate in the
// wrong order, a dropped bias, a wrong pad), which moves the probabilities by 1e-2 or more.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/close.js';
import { OnnxModel } from '../../src/onnx/model.js';

const PATH = 'test/fixtures/onnx/silero_vad_v5.onnx';
const CHUNKS = 6;
const TOLERANCE = { atol: 1e-4, rtol: 1e-4 };
const RATES = [{ sr: 16000, chunk: 512 }, { sr: 8000, chunk: 256 }] as const;

/** mulberry32: a small seeded generator, so the noise is the same on every machine. */
function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** The audio, chunk by chunk: the first chunk is noise alone, the rest a noisy modulated voice. */
function syntheticAudio(sr: number, chunk: number): Float32Array[] {
  const noise = seededUniform(sr);
  const chunks: Float32Array[] = [];
  for (let c = 0; c < CHUNKS; c++) {
    chunks.push(Float32Array.from({ length: chunk }, (_, i) => {
      const time = (c * chunk + i) / sr;
      let voice = 0;
      for (let k = 1; k <= 5; k++) voice += (0.2 / k) * Math.sin(2 * Math.PI * 140 * k * time + k);
      const envelope = c === 0 ? 0 : 0.5 * (1 + Math.sin(2 * Math.PI * 3 * time));
      return envelope * voice + 0.02 * (2 * noise() - 1);
    }));
  }
  return chunks;
}

interface Step { probability: number; state: Float32Array }

/** onnxruntime's probabilities and states, chunk by chunk. */
async function reference(sr: number, chunks: Float32Array[]): Promise<Step[]> {
  const session = await ort.InferenceSession.create(PATH);
  const steps: Step[] = [];
  let state = new Float32Array(2 * 128);
  for (const x of chunks) {
    const out = await session.run({
      input: new ort.Tensor('float32', x, [1, x.length]),
      state: new ort.Tensor('float32', state, [2, 1, 128]),
      sr: new ort.Tensor('int64', BigInt64Array.from([BigInt(sr)]), []),
    });
    assert.deepEqual(out.output!.dims, [1, 1]);
    state = Float32Array.from(out.stateN!.data as Float32Array);
    steps.push({ probability: (out.output!.data as Float32Array)[0]!, state });
  }
  await session.release();
  return steps;
}

const cases = await Promise.all(RATES.map(async ({ sr, chunk }) => {
  const chunks = syntheticAudio(sr, chunk);
  return { sr, chunk, chunks, expected: await reference(sr, chunks) };
}));

it('the synthetic audio gives onnxruntime varied probabilities (the comparison is not of constants)', () => {
  for (const c of cases) {
    const p = c.expected.map((s) => s.probability);
    assert.ok(Math.max(...p) - Math.min(...p) > 0.05, `${c.sr} Hz: probabilities ${p.join(', ')}`);
  }
});

forEachBackend('Silero VAD v5 against onnxruntime', () => {
  for (const c of cases) {
    it(`${c.sr} Hz, ${CHUNKS} chunks of ${c.chunk} samples, state carried across chunks`, () => {
      const model = OnnxModel.load(readFileSync(PATH));
      assert.deepEqual(model.inputs.map((i) => i.name), ['input', 'state', 'sr']);
      let state = t.zeros([2, 1, 128]);
      const sr = t.tensor([c.sr], { dtype: 'int32', shape: [] });
      c.chunks.forEach((x, k) => {
        const input = t.tensor(x, { shape: [1, x.length] });
        const out = model.run({ input, state, sr });
        assert.deepEqual(out.output!.shape, [1, 1]);
        assert.deepEqual(out.stateN!.shape, [2, 1, 128]);
        const want = c.expected[k]!;
        assertClose(out.output!, [want.probability], { atol: TOLERANCE.atol, rtol: 0 }, `chunk ${k}: probability`);
        assertClose(out.stateN!, want.state, TOLERANCE, `chunk ${k}: stateN`);
        input.dispose();
        out.output!.dispose();
        state.dispose();
        state = out.stateN!;
      });
      state.dispose();
      sr.dispose();
      model.dispose();
    });
  }
}, { skipWebgpu: 'the same ops as on wasm, at ~20 s on SwiftShader: it passes there (TESSERA_TEST_BACKENDS=webgpu) but the default run keeps the suite under its time budget' });
