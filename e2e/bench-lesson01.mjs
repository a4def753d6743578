// Lesson 01 benchmark in the tab: seconds per epoch of the default CNN (64x64 photos, lesson
// subset) on the CPU backend and on WebGPU (a software adapter here). Prints figures; asserts
// nothing. The native figure comes from `cargo bench -p transfer-lab-model --bench lesson01`.
//
// Usage: node e2e/bench-lesson01.mjs   (after `trunk build --release`)

import { openApp } from './browser.mjs';
import { startServer } from './serve.mjs';

// A few epochs are enough for a per-epoch time; no sweep.
const QUERY = { epochs: 3, sweep: '' };

async function secondsPerEpoch({ server, webgpu }) {
  const session = await openApp({ lesson: '01', server, webgpu, query: QUERY });
  try {
    await session.page.getByTestId('train-scratch').click();
    await session.page
      .locator('[data-testid="scratch-results"], [data-testid="error"]')
      .first()
      .waitFor({ timeout: 60 * 60_000 });
    return await session.page.evaluate(() => ({
      error: document.querySelector('[data-testid="error"]')?.textContent ?? null,
      seconds: document.querySelector('[data-testid="scratch-results"]')?.dataset.secondsPerEpoch,
      backend: document.querySelector('[data-testid="backend"]')?.dataset.backend ?? '',
    }));
  } finally {
    await session.close();
  }
}

const server = await startServer();
try {
  for (const webgpu of [false, true]) {
    const r = await secondsPerEpoch({ server, webgpu });
    console.log(`lesson 01 in the tab, ${r.backend} backend: ${r.error ? `FAILED: ${r.error}` : `${r.seconds} s per epoch (500 photos, 64x64)`}`);
  }
} finally {
  await server.close();
}
