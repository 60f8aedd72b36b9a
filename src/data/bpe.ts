// GPT-2's byte-level BPE tokenizer, reading the original `encoder.json` (token string → id) and
// `vocab.bpe` (merges, in rank order). Text is split with GPT-2's pre-tokenization pattern, each piece's
// UTF-8 bytes are mapped to printable characters (the byte-to-unicode table), and pairs are merged by
// rank until no known merge is left. Every byte sequence is representable, so encode/decode round-trips
// any string.

/**
 * GPT-2's table from bytes to printable characters: the printable Latin-1 bytes map to themselves, the
 * other 68 bytes (controls, space, ...) to code points from 256 up, in byte order.
 */
export function bytesToUnicode(): string[] {
  const table: string[] = new Array<string>(256);
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : next++);
  return table;
}

/** GPT-2's pre-tokenization: contractions, letters, digits, other symbols, each with an optional leading space; whitespace runs. */
export const GPT2_PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export class BpeTokenizer {
  readonly vocabSize: number;
  /** Id of `<|endoftext|>` when the vocabulary has it. */
  readonly endOfText: number | undefined;
  private readonly encoder: Map<string, number>;
  private readonly decoder: string[];
  private readonly ranks: Map<string, number>;
  private readonly byteEncoder = bytesToUnicode();
  private readonly byteDecoder: Map<string, number>;
  private readonly cache = new Map<string, number[]>();

  /**
   * @param encoder token string → id (the content of encoder.json)
   * @param merges the merges in rank order, each as [left, right]
   */
  constructor(encoder: Record<string, number>, merges: ReadonlyArray<readonly [string, string]>) {
    this.encoder = new Map(Object.entries(encoder));
    this.decoder = [];
    for (const [token, id] of this.encoder) {
      if (!Number.isInteger(id) || id < 0) throw new Error(`BpeTokenizer: token ${JSON.stringify(token)} has id ${id}; ids must be non-negative integers.`);
      if (this.decoder[id] !== undefined) {
        throw new Error(`BpeTokenizer: id ${id} belongs to both ${JSON.stringify(this.decoder[id])} and ${JSON.stringify(token)}; the encoder file is corrupt.`);
      }
      this.decoder[id] = token;
    }
    this.vocabSize = this.decoder.length;
    this.endOfText = this.encoder.get('<|endoftext|>');
    this.ranks = new Map(merges.map(([a, b], rank) => [`${a} ${b}`, rank]));
    this.byteDecoder = new Map(this.byteEncoder.map((ch, b) => [ch, b]));
    // Every single byte must be a token, or some text would be unencodable.
    for (const ch of this.byteEncoder) {
      if (!this.encoder.has(ch)) throw new Error(`BpeTokenizer: the encoder lacks the single-byte token ${JSON.stringify(ch)}; it is not a byte-level BPE vocabulary.`);
    }
  }

  /** Builds the tokenizer from the texts of `encoder.json` and `vocab.bpe`. */
  static fromFiles(encoderJson: string, vocabBpe: string): BpeTokenizer {
    let encoder: unknown;
    try {
      encoder = JSON.parse(encoderJson);
    } catch (e) {
      throw new Error(`BpeTokenizer: encoder.json is not valid JSON (${(e as Error).message}); pass the file's text.`, { cause: e });
    }
    if (typeof encoder !== 'object' || encoder === null || Array.isArray(encoder)) {
      throw new Error('BpeTokenizer: encoder.json must be an object mapping token strings to ids.');
    }
    return new BpeTokenizer(encoder as Record<string, number>, parseMerges(vocabBpe));
  }

  /** Token ids of `text`. Special tokens such as `<|endoftext|>` in the text are encoded as plain text. */
  encode(text: string): number[] {
    const ids: number[] = [];
    const utf8 = new TextEncoder();
    for (const match of text.matchAll(GPT2_PRETOKENIZE)) {
      const piece = match[0];
      let cached = this.cache.get(piece);
      if (cached === undefined) {
        let mapped = '';
        for (const b of utf8.encode(piece)) mapped += this.byteEncoder[b]!;
        cached = this.bpe(mapped).map((token) => this.encoder.get(token)!);
        if (this.cache.size < 100_000) this.cache.set(piece, cached);
      }
      for (const id of cached) ids.push(id);
    }
    return ids;
  }

  /** The text of token ids; byte sequences that are not valid UTF-8 decode to U+FFFD, as in GPT-2. */
  decode(ids: ArrayLike<number>): string {
    return new TextDecoder('utf-8').decode(this.decodeBytes(ids));
  }

  /** The raw bytes of token ids (useful when a token ends mid-character). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const token = this.decoder[ids[i]!];
      if (token === undefined) throw new Error(`BpeTokenizer.decode: id ${ids[i]} at position ${i} is not in the vocabulary of ${this.vocabSize} tokens.`);
      for (const ch of token) {
        const b = this.byteDecoder.get(ch);
        if (b === undefined) {
          throw new Error(`BpeTokenizer.decode: token ${ids[i]} (${JSON.stringify(token)}) holds ${JSON.stringify(ch)}, which is not in the byte table; the vocabulary is not byte-level.`);
        }
        bytes.push(b);
      }
    }
    return Uint8Array.from(bytes);
  }

  /** The token string of an id (in the byte-to-unicode alphabet), e.g. "Ġworld" for 995. */
  tokenOf(id: number): string | undefined {
    return this.decoder[id];
  }

  /** Applies the merges to one pre-tokenized piece (already in the byte-to-unicode alphabet). */
  private bpe(piece: string): string[] {
    let word = [...piece];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      // Merge every occurrence of the best pair, left to right, as the reference implementation does.
      const left = word[best]!;
      const right = word[best + 1]!;
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === left && word[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else merged.push(word[i]!);
      }
      word = merged;
    }
    for (const token of word) {
      if (!this.encoder.has(token)) {
        throw new Error(`BpeTokenizer: merging produced ${JSON.stringify(token)}, which encoder.json lacks; encoder.json and vocab.bpe do not belong together.`);
      }
    }
    return word;
  }
}

/** The merges of a `vocab.bpe` file: an optional `#version` line, then one "left right" pair per line. */
export function parseMerges(vocabBpe: string): Array<[string, string]> {
  const merges: Array<[string, string]> = [];
  const lines = vocabBpe.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(`BpeTokenizer: line ${i + 1} of vocab.bpe is ${JSON.stringify(line)}; each merge line must be two tokens separated by one space.`);
    }
    merges.push([parts[0]!, parts[1]!]);
  });
  return merges;
}
