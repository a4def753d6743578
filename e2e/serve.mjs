// A tiny static file server for Trunk's `dist/` folder.
//
// Used by the browser tests (start/stop from a test with `startServer`) and by
// `scripts/serve.sh` (run as a program). It exists so that the tests and the served app
// see exactly the files `trunk build --release` produced, with the right MIME types
// (browsers refuse `WebAssembly.instantiateStreaming` unless the type is
// `application/wasm`), and without Trunk's dev-server extras (auto-reload, CSP nonces).
//
// Program use: node e2e/serve.mjs [--dir dist] [--host 127.0.0.1] [--port 8080]

import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The repository's `dist/` folder (Trunk's output); E2E_DIST_DIR overrides it. */
export const DIST_DIR = path.resolve(process.env.E2E_DIST_DIR || path.join(HERE, '..', 'dist'));

const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.bmp': 'image/bmp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.bin': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.tflite': 'application/octet-stream',
  '.mpk': 'application/octet-stream',
};

// Kinds worth compressing on the wire, as any production web server would: the wasm shrinks
// about four-fold and the weight file a little. JPEG shards are already compressed.
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.json', '.wasm', '.tlw', '.txt', '.svg']);

// Gzipped bytes per file, reused while the file is unchanged.
const gzipCache = new Map();

async function gzipped(file, info) {
  const key = `${file}:${info.mtimeMs}:${info.size}`;
  let body = gzipCache.get(key);
  if (!body) {
    body = gzipSync(await readFile(file), { level: 6 });
    gzipCache.set(key, body);
  }
  return body;
}

/** The Content-Type for a file name; unknown kinds are served as bytes. */
export function mimeType(fileName) {
  return MIME_TYPES[path.extname(fileName).toLowerCase()] ?? 'application/octet-stream';
}

// Maps a URL path onto a file below `root`, or null when it would escape it.
function resolveInside(root, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const file = path.resolve(root, '.' + path.posix.normalize('/' + decoded));
  if (file !== root && !file.startsWith(root + path.sep)) return null;
  return file;
}

async function fileInfo(file) {
  try {
    return await stat(file);
  } catch {
    return null;
  }
}

/**
 * Starts serving `root` on `host:port` (port 0 = any free port).
 * Resolves to { url, port, close(), requests } where `requests` lists every request
 * seen as { method, path, status, bytes } (`bytes`: body bytes sent, after compression).
 *
 * Paths without a file extension that match no file fall back to `index.html`, as
 * Trunk's own server does, so that client-side routes survive a reload.
 */
export async function startServer({
  root = DIST_DIR,
  host = '127.0.0.1',
  port = 0,
  headers = {},
  quiet = true,
} = {}) {
  const rootDir = path.resolve(root);
  const rootInfo = await fileInfo(rootDir);
  if (!rootInfo?.isDirectory()) {
    throw new Error(`cannot serve ${rootDir}: it is not a folder (run "trunk build --release" first)`);
  }
  const requests = [];

  const server = createServer(async (req, res) => {
    const record = { method: req.method, path: req.url, status: 0 };
    requests.push(record);
    const send = (status, extraHeaders, body) => {
      record.status = status;
      res.writeHead(status, { 'Cache-Control': 'no-store', ...headers, ...extraHeaders });
      res.end(body);
      if (!quiet) console.log(`${req.method} ${req.url} ${status}`);
    };

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }, 'method not allowed\n');
      return;
    }
    const urlPath = new URL(req.url, 'http://localhost').pathname;
    let file = resolveInside(rootDir, urlPath);
    if (file === null) {
      send(400, { 'Content-Type': 'text/plain' }, 'bad path\n');
      return;
    }
    let info = await fileInfo(file);
    if (info?.isDirectory()) {
      file = path.join(file, 'index.html');
      info = await fileInfo(file);
    }
    if (!info && path.extname(urlPath) === '') {
      file = path.join(rootDir, 'index.html');
      info = await fileInfo(file);
    }
    if (!info?.isFile()) {
      send(404, { 'Content-Type': 'text/plain' }, 'not found\n');
      return;
    }

    record.status = 200;
    const acceptsGzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
    if (acceptsGzip && COMPRESSIBLE.has(path.extname(file).toLowerCase())) {
      const body = await gzipped(file, info);
      record.bytes = req.method === 'HEAD' ? 0 : body.length;
      res.writeHead(200, {
        'Cache-Control': 'no-store',
        'Content-Type': mimeType(file),
        'Content-Encoding': 'gzip',
        'Content-Length': body.length,
        Vary: 'Accept-Encoding',
        ...headers,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    record.bytes = req.method === 'HEAD' ? 0 : info.size;
    res.writeHead(200, {
      'Cache-Control': 'no-store',
      'Content-Type': mimeType(file),
      'Content-Length': info.size,
      ...headers,
    });
    if (!quiet) console.log(`${req.method} ${req.url} 200`);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  return {
    url: `http://${host}:${actualPort}/`,
    port: actualPort,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

function parseArgs(argv) {
  const options = { root: DIST_DIR, host: '127.0.0.1', port: 8080, quiet: true };
  for (let i = 0; i < argv.length; i += 1) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--dir':
        options.root = path.resolve(value);
        i += 1;
        break;
      case '--host':
        options.host = value;
        i += 1;
        break;
      case '--port':
        options.port = Number(value);
        i += 1;
        break;
      case '--verbose':
        options.quiet = false;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]} (use --dir, --host, --port, --verbose)`);
    }
  }
  return options;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const server = await startServer(parseArgs(process.argv.slice(2)));
    console.log(`Transfer Lab is served at ${server.url} (Ctrl+C stops it)`);
    const stop = () => server.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  } catch (error) {
    console.error(`serve.mjs: ${error.message}`);
    process.exit(1);
  }
}
