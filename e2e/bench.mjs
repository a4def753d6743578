// Lesson 02 benchmark in the tab: bytes downloaded (over the wire: wasm, weights, photos),
// feature-extraction throughput and head-training time, on the CPU backend with the lesson's
// defaults and on WebGPU (a software adapter here, so on a reduced subset unless
// BENCH_WEBGPU_FULL=1). Prints figures; asserts nothing.
//
// Usage: node e2e/bench.mjs   (after `trunk build --release`; scripts/bench.sh runs it)

import { openApp } from './browser.mjs';
import { startServer } from './serve.mjs';

const REDUCED = { train_per_class: 10, val_per_class: 4 };

async function runInTab({ server, webgpu, query }) {
  const session = await openApp({ server, webgpu, query });
  try {
    const cdp = await session.context.newCDPSession(session.page);
    await cdp.send('Network.enable');
    let wireBytes = 0;
    const byKind = { wasm: 0, weights: 0, photos: 0, other: 0 };
    const urls = new Map();
    cdp.on('Network.responseReceived', (e) => urls.set(e.requestId, e.response.url));
    cdp.on('Network.loadingFinished', (e) => {
      wireBytes += e.encodedDataLength;
      const url = urls.get(e.requestId) ?? '';
      const kind = /\.wasm$/.test(url) ? 'wasm' : /\.tlw$/.test(url) ? 'weights' : /\.tlshard$/.test(url) ? 'photos' : 'other';
      byKind[kind] += e.encodedDataLength;
    });
    // The page's own wasm was fetched before CDP listened: count it from the server's files.
    const pageWasm = await session.page.evaluate(() =>
      performance.getEntriesByType('resource').filter((r) => r.name.endsWith('.wasm')).reduce((n, r) => n + r.encodedBodySize, 0),
    );
    await session.page.getByTestId('train').click();
    await session.page.locator('[data-testid="results"], [data-testid="error"]').first().waitFor({ timeout: 60 * 60_000 });
    const shown = await session.page.evaluate(() => ({
      error: document.querySelector('[data-testid="error"]')?.textContent ?? null,
      accuracy: document.querySelector('[data-testid="val-accuracy"]')?.dataset.value ?? null,
      timings: document.querySelector('[data-testid="timings"]')?.textContent ?? '',
      backend: document.querySelector('[data-testid="backend"]')?.dataset.backend ?? '',
    }));
    byKind.wasm += pageWasm;
    return { ...shown, wireBytes: wireBytes + pageWasm, byKind };
  } finally {
    await session.close();
  }
}

function report(label, r) {
  const mb = (n) => (n / 1e6).toFixed(2);
  console.log(`\n${label}: backend ${r.backend}${r.error ? `, FAILED: ${r.error}` : ''}`);
  console.log(`  downloaded over the wire: ${mb(r.wireBytes)} MB (wasm ${mb(r.byKind.wasm)}, weights ${mb(r.byKind.weights)}, photos ${mb(r.byKind.photos)}, other ${mb(r.byKind.other)}; goal <= 15 MB)`);
  console.log(`  ${r.timings}`);
  console.log(`  validation accuracy: ${r.accuracy}`);
}

const server = await startServer();
try {
  report('tab, CPU backend, lesson defaults', await runInTab({ server, webgpu: false, query: {} }));
  const webgpuQuery = process.env.BENCH_WEBGPU_FULL === '1' ? {} : REDUCED;
  const label = process.env.BENCH_WEBGPU_FULL === '1' ? 'lesson defaults' : `reduced subset ${JSON.stringify(REDUCED)}`;
  report(`tab, WebGPU backend (software adapter), ${label}`, await runInTab({ server, webgpu: true, query: webgpuQuery }));
} finally {
  await server.close();
}
