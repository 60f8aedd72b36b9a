// Published model configurations. Each entry cites the table it comes from.
import { transformer, type TransformerSpec, type TransformerInput } from './model.js';

function gpt3(name: string, layers: number, hidden: number, heads: number, globalBatch: number): TransformerSpec {
  // Brown et al. 2020 (arXiv:2005.14165) Table 2.1: n_layers, d_model, n_heads, batch in tokens
  // (converted to 2048-token sequences), n_ctx = 2048, GPT-2 BPE vocabulary of 50257.
  return transformer({ name, layers, hidden, heads, vocab: 50257, seqLen: 2048, globalBatch });
}

function megatron(name: string, heads: number, hidden: number, layers: number, globalBatch: number): TransformerSpec {
  // Narayanan et al. 2021 (arXiv:2104.04473) Table 1: V = 51200, s = 2048.
  return transformer({ name, layers, hidden, heads, vocab: 51200, seqLen: 2048, globalBatch });
}

const llama = (input: TransformerInput): TransformerSpec =>
  transformer({ gatedMlp: true, tiedEmbeddings: false, biases: false, norm: 'rmsnorm', positions: 'rotary', ...input });

const presetList: TransformerSpec[] = [
  gpt3('gpt3-125m', 12, 768, 12, 256),
  gpt3('gpt3-350m', 24, 1024, 16, 256),
  gpt3('gpt3-760m', 24, 1536, 16, 256),
  // Table 2.1 lists 24 heads of width 128 for d_model 2048, which is inconsistent with the 1.3B
  // total; 16 heads of 128 (= d_model) reproduces it.
  gpt3('gpt3-1.3b', 24, 2048, 16, 512),
  gpt3('gpt3-2.7b', 32, 2560, 32, 512),
  gpt3('gpt3-6.7b', 32, 4096, 32, 1024),
  // Table 2.1 prints d_model = 5140; 40 heads × 128 = 5120 is the width that gives 13B.
  gpt3('gpt3-13b', 40, 5120, 40, 1024),
  gpt3('gpt3-175b', 96, 12288, 96, 1536),

  megatron('megatron-1.7b', 24, 2304, 24, 512),
  megatron('megatron-3.6b', 32, 3072, 30, 512),
  megatron('megatron-7.5b', 32, 4096, 36, 512),
  megatron('megatron-18.4b', 48, 6144, 40, 1024),
  megatron('megatron-39.1b', 64, 8192, 48, 1536),
  megatron('megatron-76.1b', 80, 10240, 60, 1792),
  megatron('megatron-145.6b', 96, 12288, 80, 2304),
  megatron('megatron-310.1b', 128, 16384, 96, 2160),
  megatron('megatron-529.6b', 128, 20480, 105, 2520),
  megatron('megatron-1008b', 160, 25600, 128, 3072),

  // Chowdhery et al. 2022 (arXiv:2204.02311) Table 1 and §2: SwiGLU with d_ff = 4·d_model, MQA
  // (one K/V head), head width 256 ≠ d_model/heads, parallel block, no biases, shared embeddings,
  // 256k SentencePiece vocabulary, 2048 tokens. Batch: 540B ended at 2048 sequences (§5).
  transformer({ name: 'palm-8b', layers: 32, hidden: 4096, heads: 16, kvHeads: 1, headDim: 256, ffn: 16384, vocab: 256000, seqLen: 2048, gatedMlp: true, biases: false, positions: 'rotary', parallelBlock: true }),
  transformer({ name: 'palm-62b', layers: 64, hidden: 8192, heads: 32, kvHeads: 1, headDim: 256, ffn: 32768, vocab: 256000, seqLen: 2048, gatedMlp: true, biases: false, positions: 'rotary', parallelBlock: true }),
  transformer({ name: 'palm-540b', layers: 118, hidden: 18432, heads: 48, kvHeads: 1, headDim: 256, ffn: 73728, vocab: 256000, seqLen: 2048, gatedMlp: true, biases: false, positions: 'rotary', parallelBlock: true, globalBatch: 2048 }),

  // Touvron et al. 2023 (arXiv:2307.09288) Table 1 + the released config.json files: 4k context,
  // 32000 vocabulary, 4M-token batches (1024 sequences); 70B uses GQA with 8 KV heads.
  llama({ name: 'llama2-7b', layers: 32, hidden: 4096, heads: 32, ffn: 11008, vocab: 32000, seqLen: 4096, globalBatch: 1024 }),
  llama({ name: 'llama2-13b', layers: 40, hidden: 5120, heads: 40, ffn: 13824, vocab: 32000, seqLen: 4096, globalBatch: 1024 }),
  llama({ name: 'llama2-70b', layers: 80, hidden: 8192, heads: 64, kvHeads: 8, ffn: 28672, vocab: 32000, seqLen: 4096, globalBatch: 1024 }),

  // Llama 3 herd (arXiv:2407.21783) Table 3 + config.json: 8 KV heads, 128256 vocabulary, 8k
  // pre-training context; the 405B ran with 16M-token batches (2048 sequences), Table 4.
  llama({ name: 'llama3-8b', layers: 32, hidden: 4096, heads: 32, kvHeads: 8, ffn: 14336, vocab: 128256, seqLen: 8192, globalBatch: 512 }),
  llama({ name: 'llama3-70b', layers: 80, hidden: 8192, heads: 64, kvHeads: 8, ffn: 28672, vocab: 128256, seqLen: 8192, globalBatch: 1024 }),
  llama({ name: 'llama3-405b', layers: 126, hidden: 16384, heads: 128, kvHeads: 8, ffn: 53248, vocab: 128256, seqLen: 8192, globalBatch: 2048 }),

  // Jiang et al. 2024 (arXiv:2401.04088) Table 1 + config.json: 8 experts, top-2. The training
  // sequence length is not published; 4096 is used here (pass --seq to change it).
  llama({ name: 'mixtral-8x7b', layers: 32, hidden: 4096, heads: 32, kvHeads: 8, ffn: 14336, vocab: 32000, seqLen: 4096, moe: { experts: 8, topK: 2 } }),
  llama({ name: 'mixtral-8x22b', layers: 56, hidden: 6144, heads: 48, kvHeads: 8, ffn: 16384, vocab: 32768, seqLen: 4096, moe: { experts: 8, topK: 2 } }),
];

export const modelPresets: ReadonlyMap<string, TransformerSpec> = new Map(presetList.map((m) => [m.name, m]));

export function modelPreset(name: string): TransformerSpec {
  const m = modelPresets.get(name.toLowerCase());
  if (m === undefined) {
    throw new Error(`unknown model '${name}'. Known models: ${[...modelPresets.keys()].join(', ')}.`);
  }
  return m;
}
