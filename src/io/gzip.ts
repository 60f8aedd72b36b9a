// gzip detection and inflation that work in browsers and in Node (>= 18) alike, through the standard
// DecompressionStream. Node code that reads files uses node:zlib instead (see file.ts), which is faster.

/** True when the bytes start with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Inflates gzip bytes. Throws an error that names the problem when the data is truncated or corrupt. */
export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  if (typeof DecompressionStream === 'undefined') {
    throw new Error('gunzip: this environment has no DecompressionStream; inflate the data yourself (e.g. node:zlib) and pass the raw bytes.');
  }
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'));
  try {
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new Error(`gunzip: the ${bytes.length} bytes are not a complete gzip stream (${(e as Error).message}); the file is truncated or corrupt.`, { cause: e });
  }
}

/** Inflates the bytes when they are gzip, and returns them unchanged otherwise. */
export async function maybeGunzip(bytes: Uint8Array): Promise<Uint8Array> {
  return isGzip(bytes) ? gunzip(bytes) : bytes;
}
