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
  // Body bytes as the server sent them (gzip where it compresses): the page's and the worker's
  // requests alike, which a page-level network listener would not both see.
  const firstRequest = server.requests.length;
  const session = await openApp({ lesson: '02', server, webgpu, query });
  try {
    await session.page.getByTestId('train').click();
    await session.page.locator('[data-testid="results"], [data-testid="error"]').first().waitFor({ timeout: 60 * 60_000 });
    const shown = await session.page.evaluate(() => ({
      error: document.querySelector('[data-testid="error"]')?.textContent ?? null,
      accuracy: document.querySelector('[data-testid="val-accuracy"]')?.dataset.value ?? null,
      timings: document.querySelector('[data-testid="timings"]')?.textContent ?? '',
      backend: document.querySelector('[data-testid="backend"]')?.dataset.backend ?? '',
    }));
    const byKind = { wasm: 0, weights: 0, photos: 0, other: 0 };
    for (const { path, bytes = 0 } of server.requests.slice(firstRequest)) {
      const kind = /\.wasm$/.test(path) ? 'wasm' : /\.tlw$/.test(path) ? 'weights' : /\.tlshard$/.test(path) ? 'photos' : 'other';
      byKind[kind] += bytes;
    }
    const wireBytes = Object.values(byKind).reduce((a, b) => a + b, 0);
    return { ...shown, wireBytes, byKind };
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
