// Lesson 04 benchmark in the tab: photos per second and one-photo latency of each backbone of
// the zoo, on the CPU backend (lesson subset) and on WebGPU (a software adapter here, so a
// reduced subset). Prints figures; asserts nothing. The native figures come from
// `cargo bench -p transfer-lab-model --bench zoo`.
//
// Usage: node e2e/bench-lesson04.mjs   (after `trunk build --release`)

import { openApp } from './browser.mjs';
import { startServer } from './serve.mjs';

async function measure({ server, webgpu }) {
  const query = webgpu ? { train_per_class: 4, val_per_class: 2, zoo_photos: 2 } : {};
  const session = await openApp({ lesson: '04', server, webgpu, query });
  try {
    await session.page.getByTestId('train-zoo').click();
    await session.page
      .locator('[data-testid="decision-guide"], [data-testid="error"]')
      .first()
      .waitFor({ timeout: 60 * 60_000 });
    return await session.page.evaluate(() => ({
      error: document.querySelector('[data-testid="error"]')?.textContent ?? null,
      backend: document.querySelector('[data-testid="backend"]')?.dataset.backend ?? '',
      rows: [...document.querySelectorAll('[data-testid="zoo-row"]')].map((row) => row.dataset),
    }));
  } finally {
    await session.close();
  }
}

const server = await startServer();
try {
  for (const webgpu of [false, true]) {
    const r = await measure({ server, webgpu });
    if (r.error) {
      console.log(`lesson 04 in the tab, ${r.backend} backend: FAILED: ${r.error}`);
      continue;
    }
    for (const row of r.rows) {
      console.log(`lesson 04 in the tab, ${r.backend} backend, ${row.backbone}: ` +
        `${Number(row.photosPerSecond).toFixed(2)} photos/s, one photo ${Number(row.latency).toFixed(0)} ms` +
        (row.installed === 'true' ? `, validation accuracy ${row.accuracy}` : ' (no weights: speed only)'));
    }
  }
} finally {
  await server.close();
}
