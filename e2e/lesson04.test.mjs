// Lesson 04 in headless Chromium: the model zoo. With the mirrored MobileNetV2 weights and no
// VGG16 or ResNet50 weights installed, all three rows appear: MobileNetV2 measured and trained,
// the other two marked as not installed but with their size and speed measured on their
// architecture; the decision guide follows from the measured rows.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { describeProblems, openApp } from './browser.mjs';
import { startServer } from './serve.mjs';

const MINUTES = 60_000;
const PARAMETERS = { mobilenet_v2: 2_206_816, vgg16: 14_714_688, resnet50: 23_481_472 };

/** Clicks "Compare the backbones" and waits for the guide (or an error); returns the rows. */
async function compare(page, { timeout }) {
  await page.getByTestId('train-zoo').click();
  await page
    .locator('[data-testid="decision-guide"], [data-testid="error"]')
    .first()
    .waitFor({ timeout });
  return page.evaluate(() => ({
    error: document.querySelector('[data-testid="error"]')?.textContent ?? null,
    backend: document.querySelector('[data-testid="backend"]')?.dataset.backend ?? null,
    rows: [...document.querySelectorAll('[data-testid="zoo-row"]')].map((row) => ({
      backbone: row.dataset.backbone,
      installed: row.dataset.installed === 'true',
      parameters: Number(row.dataset.parameters),
      latency: Number(row.dataset.latency),
      photosPerSecond: Number(row.dataset.photosPerSecond),
      accuracy: Number(row.dataset.accuracy),
    })),
    notes: Object.fromEntries([...document.querySelectorAll('[data-testid="zoo-note"]')]
      .map((note) => [note.dataset.backbone, note.textContent])),
    guide: [...document.querySelectorAll('[data-testid="decision-guide"] li')].map((li) => li.textContent),
    speedBars: document.querySelectorAll('[data-testid="zoo-speed-chart"] rect').length,
  }));
}

describe('lesson 04: the model zoo', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.close();
  });

  test('CPU backend with defaults: three rows, two without weights but measured', { timeout: 25 * MINUTES }, async () => {
    const session = await openApp({ lesson: '04', server, webgpu: false });
    try {
      const outcome = await compare(session.page, { timeout: 23 * MINUTES });
      await session.screenshot('lesson04-cpu-defaults');
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}\n${describeProblems(session.log)}`);
      assert.equal(outcome.backend, 'CPU');
      console.log(`lesson 04 on CPU: ${JSON.stringify(outcome.rows)}`);
      assert.deepEqual(outcome.rows.map((r) => r.backbone), ['mobilenet_v2', 'vgg16', 'resnet50']);
      const row = Object.fromEntries(outcome.rows.map((r) => [r.backbone, r]));
      for (const r of outcome.rows) {
        assert.equal(r.parameters, PARAMETERS[r.backbone], r.backbone);
        assert.ok(r.latency > 0 && r.photosPerSecond > 0, `${r.backbone} was not timed`);
      }
      assert.equal(row.mobilenet_v2.installed, true);
      assert.ok(row.mobilenet_v2.accuracy >= 0.8, `MobileNetV2 accuracy ${row.mobilenet_v2.accuracy}`);
      for (const id of ['vgg16', 'resnet50']) {
        assert.equal(row[id].installed, false);
        assert.equal(row[id].accuracy, -1);
        assert.match(outcome.notes[id], /transfer-lab prepare/);
      }
      // 15.5 GFLOPs per photo against 0.3: VGG16 cannot be the faster one.
      assert.ok(row.vgg16.latency > row.mobilenet_v2.latency);
      assert.equal(outcome.speedBars, 3);
      assert.equal(outcome.guide.length, 3);
      assert.match(outcome.guide[0], /MobileNetV2/);
      assert.match(outcome.guide[1], /only backbone with weights/);
      assert.equal(session.log.pageErrors.length, 0, describeProblems(session.log));
    } finally {
      await session.close();
    }
  });

  test('WebGPU with a reduced subset measures all three rows', { timeout: 30 * MINUTES }, async () => {
    const query = { train_per_class: 4, val_per_class: 2, zoo_photos: 1 };
    const session = await openApp({ lesson: '04', server, webgpu: true, query });
    try {
      const outcome = await compare(session.page, { timeout: 28 * MINUTES });
      await session.screenshot('lesson04-webgpu-reduced');
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}\n${describeProblems(session.log)}`);
      assert.equal(outcome.backend, 'WebGPU');
      console.log(`lesson 04 on WebGPU (reduced): ${JSON.stringify(outcome.rows)}`);
      assert.equal(outcome.rows.length, 3);
      for (const r of outcome.rows) {
        // Each row is measured, or says why it could not be (too large for the adapter).
        assert.ok(r.latency > 0 || /Too large/.test(outcome.notes[r.backbone] ?? ''), r.backbone);
      }
      assert.ok(outcome.rows.find((r) => r.backbone === 'mobilenet_v2').accuracy >= 0);
      assert.equal(outcome.guide.length, 3);
      assert.equal(session.log.pageErrors.length, 0, describeProblems(session.log));
    } finally {
      await session.close();
    }
  });
});
