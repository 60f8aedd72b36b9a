// Runs a bundled page in headless Chromium and returns what the page POSTs to /results: esbuild
// bundles the entries in memory, a node:http server on 127.0.0.1 serves them, with or without the
// headers that make the page cross-origin isolated (and so give it SharedArrayBuffer), and
// Chromium is started as its own process group so that it and every helper it starts can be
// killed, always.
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import * as esbuild from 'esbuild';

/** The chromium on PATH (`command -v chromium`), or undefined when there is none. */
export function findChromium(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

/** Bundles `entryPoints` (output name → source path) for the browser, as ES modules with shared chunks, in memory. */
export async function bundleForBrowser(entryPoints: Record<string, string>): Promise<Map<string, Uint8Array>> {
  const outdir = join(tmpdir(), 'tessera-browser-bundle'); // nothing is written: write: false
  const result = await esbuild.build({
    entryPoints,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    splitting: true,
    // Node-only paths of the library reach node: modules through dynamic imports only.
    external: ['node:*'],
    target: 'es2022',
    entryNames: '[name]',
    chunkNames: 'chunk-[hash]',
    outdir,
    write: false,
    logLevel: 'silent',
  });
  const files = new Map<string, Uint8Array>();
  for (const file of result.outputFiles) files.set(`/${basename(file.path)}`, file.contents);
  return files;
}

/** Headers that make the page cross-origin isolated (SharedArrayBuffer, shared wasm memory). */
const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

export interface BrowserRunOptions {
  chromium: string;
  /** Bundled files by URL path ('/page.js', ...); '/' serves a page that loads `/${pageScript}` as a module. */
  files: Map<string, Uint8Array>;
  pageScript: string;
  /** Serve every response with ISOLATION_HEADERS (else without: no SharedArrayBuffer on the page). */
  crossOriginIsolated: boolean;
  timeoutMs: number;
  /** Start Chromium with WebGPU on (--enable-unsafe-webgpu; without a GPU it is SwiftShader's) instead of --disable-gpu. */
  webgpu?: boolean;
}

/** Starts Chromium on the page and resolves with the JSON body of the page's POST /results. */
export async function runPageInChromium(options: BrowserRunOptions): Promise<unknown> {
  const html = `<!doctype html><meta charset="utf-8"><title>tessera browser test</title><script type="module" src="/${options.pageScript}"></script>`;
  let deliver: (body: string) => void = () => {};
  const posted = new Promise<string>((resolve) => (deliver = resolve));
  const requests: string[] = [];
  const headers = { 'cache-control': 'no-store', ...(options.crossOriginIsolated ? ISOLATION_HEADERS : {}) };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.method === 'POST' && req.url === '/results') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(204, headers).end();
        deliver(Buffer.concat(chunks).toString('utf8'));
      });
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const body = path === '/' ? new TextEncoder().encode(html) : options.files.get(path);
    if (req.method !== 'GET' || body === undefined) {
      res.writeHead(404, headers).end();
      return;
    }
    const type = path === '/' ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8';
    res.writeHead(200, { ...headers, 'content-type': type }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const profile = mkdtempSync(join(tmpdir(), 'tessera-chromium-'));
  const browser = spawn(options.chromium, [
    '--headless=new', '--no-sandbox', options.webgpu === true ? '--enable-unsafe-webgpu' : '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-extensions', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', '--mute-audio', '--enable-logging=stderr', `--user-data-dir=${profile}`, url,
  ], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  browser.stderr!.setEncoding('utf8').on('data', (text: string) => {
    // D-Bus is absent in containers; its complaints would push out the lines that matter.
    const useful = text.split('\n').filter((line) => !line.includes('dbus/bus.cc')).join('\n');
    stderr = (stderr + useful).slice(-8000);
  });
  const exited = new Promise<void>((resolve) => browser.once('exit', () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  try {
    const failure = new Promise<never>((_, reject) => {
      const describe = () => `requests served: ${requests.join(', ') || 'none'}\n--- chromium stderr (last 8000 chars) ---\n${stderr}`;
      timer = setTimeout(() => reject(new Error(`no results from the page within ${options.timeoutMs} ms (${url})\n${describe()}`)), options.timeoutMs);
      browser.once('error', (error) => reject(new Error(`could not start ${options.chromium}: ${String(error)}`)));
      void exited.then(() => reject(new Error(`chromium exited (code ${browser.exitCode}, signal ${browser.signalCode}) before the page reported\n${describe()}`)));
    });
    return JSON.parse(await Promise.race([posted, failure])) as unknown;
  } finally {
    clearTimeout(timer);
    // The whole process group: the launcher script, the browser and its zygote/renderer/GPU helpers.
    // Also when the launcher already exited: its helpers may still run.
    if (browser.pid !== undefined) {
      try {
        process.kill(-browser.pid, 'SIGKILL');
      } catch {
        // ESRCH: the group is gone already.
      }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    }
    server.closeAllConnections();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
