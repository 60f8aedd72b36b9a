// A small WebAssembly binary encoder: enough of the module format (types, an imported memory,
// imported/defined functions, exports) and of the instruction set (MVP, SIMD) to generate
// kernels at run time. Kernels are a few KB, so this is deliberately a thin layer over the
// binary format rather than an IR with its own optimiser: V8's TurboFan does the register
// allocation and instruction selection (research/spikes.md §C).

import { ByteWriter } from './byte-writer.js';
import {
  AtomicOp, EMPTY_BLOCK, MiscOp, NATURAL_ALIGN, Op, MemOp, SIMD_LANES, SIMD_NATURAL_ALIGN, SimdLaneOp, SimdMemOp, SimdOp,
  ValType,
} from './opcodes.js';

export { ValType, Op, MemOp, MiscOp, SimdOp, SimdMemOp, SimdLaneOp, AtomicOp, EMPTY_BLOCK } from './opcodes.js';

export interface FuncType {
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

export interface MemoryImport {
  readonly module: string;
  readonly name: string;
  /** Minimum size in 64 KiB pages. */
  readonly minPages: number;
  /** Maximum size in pages; required when shared. */
  readonly maxPages?: number;
  readonly shared: boolean;
}

type BlockType = ValType | typeof EMPTY_BLOCK;

/**
 * Emits one function body. Instruction methods return `this` so short sequences read in
 * stack order: `f.localGet(a).localGet(b).op(Op.i32Add)`.
 */
export class FunctionBuilder {
  readonly code = new ByteWriter(512);
  private readonly localTypes: ValType[] = [];
  /** Open blocks (block/loop/if), to check that every one is closed. */
  private depth = 0;

  constructor(
    /** Index of this function in the module's function index space. */
    readonly index: number,
    readonly type: FuncType,
    readonly exportName: string | undefined,
  ) {}

  /** Index of parameter `i`. */
  param(i: number): number {
    if (i < 0 || i >= this.type.params.length) {
      throw new RangeError(`param(${i}): the function has ${this.type.params.length} parameters`);
    }
    return i;
  }

  /** Declares a new local and returns its index. */
  local(type: ValType): number {
    this.localTypes.push(type);
    return this.type.params.length + this.localTypes.length - 1;
  }

  // ---- generic emitters ----
  op(code: Op): this {
    this.code.byte(code);
    return this;
  }

  misc(code: MiscOp): this {
    this.code.byte(0xfc).u32(code);
    return this;
  }

  simd(code: SimdOp): this {
    this.code.byte(0xfd).u32(code);
    return this;
  }

  /** A load or store; `offset` is a constant byte offset added to the address operand. */
  mem(code: MemOp, offset = 0, alignLog2 = NATURAL_ALIGN[code]!): this {
    this.code.byte(code).u32(alignLog2).u32(offset);
    return this;
  }

  simdMem(code: SimdMemOp, offset = 0, alignLog2 = SIMD_NATURAL_ALIGN[code]!): this {
    this.code.byte(0xfd).u32(code).u32(alignLog2).u32(offset);
    return this;
  }

  /** An atomic access (shared memory); i32 ops are 4-byte aligned, `offset` as in `mem`. */
  atomic(code: AtomicOp, offset = 0): this {
    this.code.byte(0xfe).u32(code).u32(2).u32(offset);
    return this;
  }

  simdLane(code: SimdLaneOp, lane: number): this {
    const lanes = SIMD_LANES[code]!;
    if (!Number.isInteger(lane) || lane < 0 || lane >= lanes) {
      throw new RangeError(`lane ${lane} is out of range for a ${lanes}-lane shape`);
    }
    this.code.byte(0xfd).u32(code).byte(lane);
    return this;
  }

  // ---- constants ----
  i32Const(value: number): this {
    this.code.byte(0x41).s32(value);
    return this;
  }

  i64Const(value: bigint): this {
    this.code.byte(0x42).s64(value);
    return this;
  }

  f32Const(value: number): this {
    this.code.byte(0x43).f32(value);
    return this;
  }

  f64Const(value: number): this {
    this.code.byte(0x44).f64(value);
    return this;
  }

  /** A v128 constant from its 16 bytes, little-endian lane order. */
  v128Const(bytes: ArrayLike<number>): this {
    if (bytes.length !== 16) throw new RangeError(`v128Const needs 16 bytes, got ${bytes.length}`);
    this.code.byte(0xfd).u32(0x0c).bytes(bytes);
    return this;
  }

  f32x4Const(a: number, b: number, c: number, d: number): this {
    return this.v128Const(new Uint8Array(new Float32Array([a, b, c, d]).buffer));
  }

  i32x4Const(a: number, b: number, c: number, d: number): this {
    return this.v128Const(new Uint8Array(new Int32Array([a, b, c, d]).buffer));
  }

  /** i8x16.shuffle with 16 lane indices into the concatenation of the two operands. */
  i8x16Shuffle(lanes: ArrayLike<number>): this {
    if (lanes.length !== 16 || Array.from(lanes).some((l) => l < 0 || l > 31)) {
      throw new RangeError(`i8x16Shuffle needs 16 lane indices in [0, 32), got [${Array.from(lanes).join(', ')}]`);
    }
    this.code.byte(0xfd).u32(0x0d).bytes(lanes);
    return this;
  }

  // ---- locals, globals, calls ----
  localGet(index: number): this {
    this.code.byte(0x20).u32(index);
    return this;
  }

  localSet(index: number): this {
    this.code.byte(0x21).u32(index);
    return this;
  }

  localTee(index: number): this {
    this.code.byte(0x22).u32(index);
    return this;
  }

  call(funcIndex: number): this {
    this.code.byte(0x10).u32(funcIndex);
    return this;
  }

  memorySize(): this {
    this.code.byte(0x3f).byte(0);
    return this;
  }

  memoryGrow(): this {
    this.code.byte(0x40).byte(0);
    return this;
  }

  /** memory.copy(dest, src, n) from the bulk-memory proposal (shipped in every engine with SIMD). */
  memoryCopy(): this {
    this.code.byte(0xfc).u32(10).byte(0).byte(0);
    return this;
  }

  /** memory.fill(dest, byteValue, n). */
  memoryFill(): this {
    this.code.byte(0xfc).u32(11).byte(0);
    return this;
  }

  // ---- structured control flow ----
  block(type: BlockType = EMPTY_BLOCK): this {
    this.depth++;
    this.code.byte(0x02).byte(type);
    return this;
  }

  loop(type: BlockType = EMPTY_BLOCK): this {
    this.depth++;
    this.code.byte(0x03).byte(type);
    return this;
  }

  if(type: BlockType = EMPTY_BLOCK): this {
    this.depth++;
    this.code.byte(0x04).byte(type);
    return this;
  }

  else(): this {
    this.code.byte(0x05);
    return this;
  }

  end(): this {
    if (this.depth === 0) throw new Error('end(): no open block/loop/if to close');
    this.depth--;
    this.code.byte(0x0b);
    return this;
  }

  /** Branch to the enclosing label `depth` levels out (0 = innermost). */
  br(depth: number): this {
    this.code.byte(0x0c).u32(depth);
    return this;
  }

  brIf(depth: number): this {
    this.code.byte(0x0d).u32(depth);
    return this;
  }

  brTable(depths: readonly number[], defaultDepth: number): this {
    this.code.byte(0x0e).u32(depths.length);
    for (const d of depths) this.code.u32(d);
    this.code.u32(defaultDepth);
    return this;
  }

  return(): this {
    return this.op(Op.return);
  }

  /**
   * `for (i = start; i < end; i += step) body()` over i32 locals, as block+loop. The
   * condition is tested before the first iteration; `end` is re-evaluated every iteration.
   * The body sits inside two labels: `br(1)` from the body's top level leaves the loop.
   */
  forRange(i: number, start: () => void, end: () => void, step: number | (() => void), body: () => void): this {
    start();
    this.localSet(i);
    this.block().loop();
    this.localGet(i);
    end();
    this.op(Op.i32GeS).brIf(1);
    body();
    this.localGet(i);
    if (typeof step === 'number') this.i32Const(step);
    else step();
    this.op(Op.i32Add).localSet(i).br(0);
    this.end().end();
    return this;
  }

  /** The function body in binary form: local declarations, code, final `end`. */
  encodeBody(): ByteWriter {
    if (this.depth !== 0) {
      throw new Error(`function ${this.exportName ?? this.index}: ${this.depth} block(s) left open (missing end())`);
    }
    const body = new ByteWriter(this.code.length + 32);
    // Consecutive locals of one type share a (count, type) entry.
    const groups: Array<[number, ValType]> = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    body.u32(groups.length);
    for (const [count, type] of groups) body.u32(count).byte(type);
    body.bytes(this.code.toBytes());
    body.byte(0x0b);
    return body;
  }
}

interface FunctionImport {
  readonly module: string;
  readonly name: string;
  readonly typeIndex: number;
}

/** Builds a module: types (deduplicated), imports, functions, exports. */
export class ModuleBuilder {
  private readonly types: FuncType[] = [];
  private readonly typeKeys = new Map<string, number>();
  private readonly functionImports: FunctionImport[] = [];
  private memoryImport: MemoryImport | undefined;
  private readonly functions: FunctionBuilder[] = [];
  private sealedImports = false;
  private moduleName: string | undefined;

  private typeIndex(type: FuncType): number {
    const key = `${type.params.join(',')}>${type.results.join(',')}`;
    let index = this.typeKeys.get(key);
    if (index === undefined) {
      index = this.types.length;
      this.types.push(type);
      this.typeKeys.set(key, index);
    }
    return index;
  }

  /**
   * Names the module in its "name" section, so that CPU profiles and stack traces show e.g.
   * `wasm://wasm/matmul mr4_nr8…` and the export names instead of `wasm-function[2]`.
   */
  named(moduleName: string): this {
    this.moduleName = moduleName;
    return this;
  }

  /** Imports a memory (the module's only memory). */
  importMemory(memory: MemoryImport): this {
    if (memory.shared && memory.maxPages === undefined) {
      throw new Error(`shared memory import ${memory.module}.${memory.name} needs maxPages`);
    }
    if (memory.maxPages !== undefined && memory.maxPages < memory.minPages) {
      throw new RangeError(`memory import: maxPages ${memory.maxPages} < minPages ${memory.minPages}`);
    }
    this.memoryImport = memory;
    return this;
  }

  /** Imports a host function and returns its function index. Imports must precede definitions. */
  importFunction(module: string, name: string, type: FuncType): number {
    if (this.sealedImports) {
      throw new Error(`importFunction(${module}.${name}) after a function was defined: declare imports first`);
    }
    this.functionImports.push({ module, name, typeIndex: this.typeIndex(type) });
    return this.functionImports.length - 1;
  }

  /** Defines a function (exported when `exportName` is given) and returns its builder. */
  function(type: FuncType, exportName?: string): FunctionBuilder {
    this.sealedImports = true;
    this.typeIndex(type);
    const fn = new FunctionBuilder(this.functionImports.length + this.functions.length, type, exportName);
    this.functions.push(fn);
    return fn;
  }

  /** The complete module binary. */
  encode(): Uint8Array<ArrayBuffer> {
    const out = new ByteWriter(1024);
    out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

    const section = (id: number, fill: (s: ByteWriter) => void): void => {
      const s = new ByteWriter(256);
      fill(s);
      out.byte(id).sized(s);
    };

    section(1, (s) => {
      s.u32(this.types.length);
      for (const t of this.types) {
        s.byte(0x60).u32(t.params.length);
        for (const p of t.params) s.byte(p);
        s.u32(t.results.length);
        for (const r of t.results) s.byte(r);
      }
    });

    const importCount = this.functionImports.length + (this.memoryImport ? 1 : 0);
    if (importCount > 0) {
      section(2, (s) => {
        s.u32(importCount);
        for (const imp of this.functionImports) s.name(imp.module).name(imp.name).byte(0x00).u32(imp.typeIndex);
        const mem = this.memoryImport;
        if (mem) {
          s.name(mem.module).name(mem.name).byte(0x02);
          if (mem.maxPages === undefined) s.byte(0x00).u32(mem.minPages);
          else s.byte(mem.shared ? 0x03 : 0x01).u32(mem.minPages).u32(mem.maxPages);
        }
      });
    }

    section(3, (s) => {
      s.u32(this.functions.length);
      for (const f of this.functions) s.u32(this.typeIndex(f.type));
    });

    const exported = this.functions.filter((f) => f.exportName !== undefined);
    section(7, (s) => {
      s.u32(exported.length);
      for (const f of exported) s.name(f.exportName!).byte(0x00).u32(f.index);
    });

    section(10, (s) => {
      s.u32(this.functions.length);
      for (const f of this.functions) s.sized(f.encodeBody());
    });

    // The custom "name" section (WebAssembly spec, appendix "Name Section"): subsection 0 names
    // the module, subsection 1 the functions (exported ones by their export name, others f<index>).
    // It costs a few dozen bytes and nothing at run time; profilers and stack traces read it.
    section(0, (s) => {
      s.name('name');
      if (this.moduleName !== undefined) {
        const sub = new ByteWriter(64);
        sub.name(this.moduleName);
        s.byte(0).sized(sub);
      }
      const names = new ByteWriter(256);
      names.u32(this.functions.length);
      for (const f of this.functions) names.u32(f.index).name(f.exportName ?? `f${f.index}`);
      s.byte(1).sized(names);
    });
    return out.toBytes();
  }
}
