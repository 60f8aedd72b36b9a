// Character-level vocabulary for character language models (char-gpt, char-lstm).
// "Characters" are Unicode code points, so text outside the Basic Multilingual Plane round-trips too.

export class CharVocab {
  /** The characters, in id order (sorted by code point, so the ids do not depend on the text's order). */
  readonly chars: readonly string[];
  private readonly ids: Map<string, number>;

  constructor(chars: Iterable<string>) {
    const list = [...chars];
    const ids = new Map<string, number>();
    list.forEach((ch, i) => {
      if ([...ch].length !== 1) throw new Error(`CharVocab: entry ${i} is ${JSON.stringify(ch)}, not a single character.`);
      if (ids.has(ch)) throw new Error(`CharVocab: the character ${JSON.stringify(ch)} is listed twice (entries ${ids.get(ch)} and ${i}).`);
      ids.set(ch, i);
    });
    this.chars = list;
    this.ids = ids;
  }

  /** The vocabulary of the distinct characters of `text`, sorted by code point. */
  static fromText(text: string): CharVocab {
    const set = new Set<string>();
    for (const ch of text) set.add(ch);
    return new CharVocab([...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  }

  get size(): number {
    return this.chars.length;
  }

  /** The id of each character. Throws, naming the character and its position, for one not in the vocabulary. */
  encode(text: string): Int32Array {
    const out: number[] = [];
    let position = 0;
    for (const ch of text) {
      const id = this.ids.get(ch);
      if (id === undefined) {
        throw new Error(
          `CharVocab.encode: character ${JSON.stringify(ch)} (U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) at position ${position} is not in the ${this.size}-character vocabulary; build the vocabulary from text that contains it.`,
        );
      }
      out.push(id);
      position++;
    }
    return Int32Array.from(out);
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const ch = this.chars[ids[i]!];
      if (ch === undefined) throw new Error(`CharVocab.decode: id ${ids[i]} at position ${i} is outside [0, ${this.size}).`);
      s += ch;
    }
    return s;
  }

  /** A JSON-friendly form, to store the vocabulary with a checkpoint. */
  toJSON(): { chars: string } {
    return { chars: this.chars.join('') };
  }

  static fromJSON(json: { chars: string }): CharVocab {
    return new CharVocab([...json.chars]);
  }
}
