// Lesson 03 benchmark in the tab: the time of one fine-tuning epoch from the boundary cache and
// of one that runs the frozen blocks again for every batch, on the CPU backend (lesson subset)
// and on WebGPU (a software adapter here, so on a reduced subset unless BENCH_WEBGPU_FULL=1).
// Prints figures; asserts nothing. The native figures come from
// `cargo bench -p transfer-lab-model --bench lesson03`.
//
// Usage: node e2e/bench-lesson03.mjs   (after `trunk build --release`; scripts/bench.sh runs it)

import { openApp } from './browser.mjs';
import { startServer } from './serve.mjs';

const REDUCED = { train_per_class: 6, val_per_class: 2 };
const HOUR = 60 * 60_000;

async function timeEpochs({ server, webgpu, query }) {
  // One fine-tuning epoch is enough to fill the caches; the timing runs its own epochs.
  const session = await openApp({ lesson: '03', server, webgpu, query: { ...query, epochs: 1 } });
  const { page } = session;
  const error = () => page.evaluate(() =>
    document.querySelector('[data-testid="error"], [data-testid="experiment-error"]')?.textContent ?? null);
  try {
    await page.getByTestId('train-fine-tune').click();
    await page.locator('[data-testid="fine-tune-results"], [data-testid="error"]').first().waitFor({ timeout: HOUR });
    if (await error()) return { error: await error() };
    await page.getByTestId('cache-speed').click();
    await page.locator('[data-testid="cache-speed-result"], [data-testid="experiment-error"]').first().waitFor({ timeout: HOUR });
    if (await error()) return { error: await error() };
    const timing = page.getByTestId('cache-speed-result');
    return {
      error: null,
      backend: await page.getByTestId('backend').getAttribute('data-backend'),
      cached: Number(await timing.getAttribute('data-cached')),
      uncached: Number(await timing.getAttribute('data-uncached')),
      text: await timing.textContent(),
    };
  } finally {
    await session.close();
  }
}

const server = await startServer();
try {
  const webgpuQuery = process.env.BENCH_WEBGPU_FULL === '1' ? {} : REDUCED;
  for (const [webgpu, query, label] of [
    [false, {}, 'lesson subset'],
    [true, webgpuQuery, process.env.BENCH_WEBGPU_FULL === '1' ? 'lesson subset' : `reduced subset ${JSON.stringify(REDUCED)}`],
  ]) {
    const r = await timeEpochs({ server, webgpu, query });
    if (r.error) {
      console.log(`lesson 03 in the tab (${webgpu ? 'WebGPU' : 'CPU'}), ${label}: FAILED: ${r.error}`);
    } else {
      console.log(`lesson 03 in the tab, ${r.backend} backend, ${label}: one epoch ${r.cached.toFixed(2)} s ` +
        `with the boundary cache, ${r.uncached.toFixed(2)} s without = ${(r.uncached / r.cached).toFixed(1)}x faster`);
    }
  }
} finally {
  await server.close();
}
