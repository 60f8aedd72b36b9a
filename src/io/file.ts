// Node adapter for files. The node: modules are imported inside the functions, so that importing this
// module (and the io/data index that re-exports it) stays harmless in a browser; calling these there
// fails with a clear error instead.

import { gunzip, isGzip } from './gzip.js';

type NodeFs = typeof import('node:fs/promises');
type NodePath = typeof import('node:path');

async function nodeModules(what: string): Promise<{ fs: NodeFs; path: NodePath }> {
  try {
    const [fs, path] = await Promise.all([import('node:fs/promises'), import('node:path')]);
    return { fs, path };
  } catch {
    throw new Error(`${what} needs Node's file system (node:fs), which this environment lacks; in a browser, fetch the bytes and use the byte-level functions instead.`);
  }
}

/**
 * Writes `bytes` to `path` atomically: a crash or a full disk leaves either the old file or the new one,
 * never a torn one. It writes a temporary file in the same directory (so the rename stays on one file
 * system), flushes it to disk, renames it over `path`, then flushes the directory entry.
 */
export async function saveFile(path: string, bytes: Uint8Array): Promise<void> {
  const { fs, path: nodePath } = await nodeModules('saveFile');
  const dir = nodePath.dirname(nodePath.resolve(path));
  const temp = nodePath.join(dir, `.${nodePath.basename(path)}.${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}.tmp`);
  let handle: Awaited<ReturnType<NodeFs['open']>> | undefined;
  try {
    handle = await fs.open(temp, 'wx');
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
      written += bytesWritten;
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, path);
  } catch (e) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temp, { force: true }).catch(() => undefined);
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`saveFile: cannot write "${path}": the directory ${dir} does not exist; create it first.`, { cause: e });
    throw new Error(`saveFile: cannot write "${path}" (${err.code ?? err.message}); check the path and its permissions.`, { cause: e });
  }
  // Make the rename itself durable. Some platforms (Windows) cannot open a directory; the data is safe anyway.
  try {
    const dirHandle = await fs.open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  } catch {
    /* directory fsync is best effort */
  }
}

/**
 * Checks now that saveFile(path) will be able to write: the directory exists and is writable. For
 * long runs that save later (a parameter server's checkpoints), so a bad path fails at the start.
 */
export async function checkWritable(path: string): Promise<void> {
  const { fs, path: nodePath } = await nodeModules('checkWritable');
  const dir = nodePath.dirname(nodePath.resolve(path));
  try {
    await fs.access(dir, (await import('node:fs')).constants.W_OK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`cannot write "${path}": the directory ${dir} does not exist; create it first.`, { cause: e });
    throw new Error(`cannot write "${path}" (${err.code ?? err.message}); check the path and its permissions.`, { cause: e });
  }
}

function displayPath(path: string | URL): string {
  return path instanceof URL && path.protocol === 'file:' ? decodeURIComponent(path.pathname) : String(path);
}

/** Reads a whole file into a Uint8Array, with an error that says which path failed and why. */
export async function loadFile(path: string | URL): Promise<Uint8Array> {
  const { fs } = await nodeModules('loadFile');
  try {
    const buf = await fs.readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`loadFile: "${displayPath(path)}" does not exist; check the path.`, { cause: e });
    if (err.code === 'EISDIR') throw new Error(`loadFile: "${displayPath(path)}" is a directory; give the path of a file.`, { cause: e });
    throw new Error(`loadFile: cannot read "${displayPath(path)}" (${err.code ?? err.message}).`, { cause: e });
  }
}

/** Reads a file and, when it starts with the gzip magic bytes, inflates it (with node:zlib, which is fast). */
export async function loadMaybeGzippedFile(path: string | URL): Promise<Uint8Array> {
  const bytes = await loadFile(path);
  if (!isGzip(bytes)) return bytes;
  try {
    const zlib = await import('node:zlib');
    const out = zlib.gunzipSync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return gunzip(bytes);
    throw new Error(`loadMaybeGzippedFile: "${displayPath(path)}" starts like a gzip file but does not inflate (${(e as Error).message}); it is truncated or corrupt.`, { cause: e });
  }
}
