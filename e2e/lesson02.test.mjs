// Lesson 02 in headless Chromium: feature extraction with the frozen MobileNetV2 and a trained
// head, on the CPU fallback (defaults) and on WebGPU (reduced subset), plus the bad-input paths.

import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeProblems, openApp } from './browser.mjs';
import { cliJson } from './cli.mjs';
import { startServer } from './serve.mjs';

// A reduced subset that a software WebGPU adapter finishes in a few minutes (default epochs).
const REDUCED = { train_per_class: 6, val_per_class: 4 };
const DEFAULT_EPOCHS = 30;
const MINUTES = 60_000;

/** Clicks Train and waits for the results or an error; returns what the page shows. */
async function train(page, { timeout }) {
  await page.getByTestId('train').click();
  await page.locator('[data-testid="results"], [data-testid="error"]').first().waitFor({ timeout });
  return page.evaluate(() => {
    const results = document.querySelector('[data-testid="results"]');
    const accuracy = document.querySelector('[data-testid="val-accuracy"]');
    return {
      error: document.querySelector('[data-testid="error"]')?.textContent ?? null,
      accuracy: accuracy ? Number(accuracy.dataset.value) : null,
      predictions: results ? JSON.parse(results.dataset.predictions) : null,
      backend: document.querySelector('[data-testid="backend"]')?.dataset.backend ?? null,
      epochs: Number(document.querySelector('[data-testid="epoch-count"]')?.dataset.epochs ?? 0),
      epochNumbers: JSON.parse(document.querySelector('[data-testid="epoch-count"]')?.dataset.epochNumbers ?? '[]'),
      warnings: [...document.querySelectorAll('[data-testid="warnings"] li')].map((li) => li.textContent),
      perClassRows: document.querySelectorAll('[data-testid="per-class"] tr').length,
      chartLines: document.querySelectorAll('.chart polyline').length,
    };
  });
}

describe('lesson 02: feature extraction', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.close();
  });

  test('defaults on the CPU backend reach at least 80% validation accuracy', { timeout: 40 * MINUTES }, async () => {
    const session = await openApp({ lesson: '02', server, webgpu: false });
    try {
      const outcome = await train(session.page, { timeout: 38 * MINUTES });
      await session.screenshot('lesson02-cpu-defaults');
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}\n${describeProblems(session.log)}`);
      assert.equal(outcome.backend, 'CPU');
      console.log(`lesson 02 defaults on CPU: validation accuracy ${outcome.accuracy}`);
      assert.ok(outcome.accuracy >= 0.8, `validation accuracy ${outcome.accuracy} is below 0.80`);
      assert.ok(outcome.epochs >= 20, `only ${outcome.epochs} epochs were charted`);
      assert.equal(outcome.perClassRows, 5);
      assert.equal(outcome.chartLines, 4);
      assert.equal(session.log.pageErrors.length, 0, describeProblems(session.log));

      // The downloaded model, evaluated by the command-line tool on the same validation photos,
      // gives the accuracy the page showed.
      const [download] = await Promise.all([
        session.page.waitForEvent('download'),
        session.page.getByTestId('download-model').click(),
      ]);
      const file = path.join(await mkdtemp(path.join(tmpdir(), 'transfer-lab-')), download.suggestedFilename());
      await download.saveAs(file);
      assert.match(file, /\.tlmodel$/);
      const report = await cliJson(['eval', file]);
      console.log(`the CLI measures the browser's model at ${report.evaluation.accuracy}`);
      assert.equal(report.photos, outcome.predictions.length);
      assert.ok(
        Math.abs(report.evaluation.accuracy - outcome.accuracy) <= 0.01,
        `CLI ${report.evaluation.accuracy} vs browser ${outcome.accuracy}`,
      );
    } finally {
      await session.close();
    }
  });

  let webgpuPredictions = null;
  test('WebGPU trains a reduced subset clearly above chance', { timeout: 30 * MINUTES }, async () => {
    const session = await openApp({ lesson: '02', server, webgpu: true, query: REDUCED });
    try {
      const outcome = await train(session.page, { timeout: 28 * MINUTES });
      await session.screenshot('lesson02-webgpu-reduced');
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}\n${describeProblems(session.log)}`);
      assert.equal(outcome.backend, 'WebGPU');
      console.log(`lesson 02 reduced on WebGPU: validation accuracy ${outcome.accuracy}`);
      assert.ok(outcome.accuracy >= 0.6, `accuracy ${outcome.accuracy} is not clearly above chance (0.2)`);
      webgpuPredictions = outcome.predictions;
    } finally {
      await session.close();
    }
  });

  test('the CPU backend predicts the same classes as WebGPU on the same photos', { timeout: 10 * MINUTES }, async (t) => {
    if (!webgpuPredictions) return t.skip('the WebGPU run did not finish');
    const session = await openApp({ lesson: '02', server, webgpu: false, query: REDUCED });
    try {
      const outcome = await train(session.page, { timeout: 9 * MINUTES });
      assert.equal(outcome.backend, 'CPU');
      assert.equal(outcome.predictions.length, 20);
      assert.deepEqual(outcome.predictions, webgpuPredictions);
    } finally {
      await session.close();
    }
  });

  test('a GPU device lost mid-training: the run goes on on the CPU from the last epoch', { timeout: 30 * MINUTES }, async () => {
    const query = { ...REDUCED, simulate_device_loss_at_epoch: 3 };
    const session = await openApp({ lesson: '02', server, webgpu: true, query });
    try {
      const outcome = await train(session.page, { timeout: 28 * MINUTES });
      await session.screenshot('lesson02-device-lost');
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}`);
      assert.equal(outcome.backend, 'CPU');
      assert.ok(outcome.warnings.some((w) => /GPU device was lost/.test(w)), outcome.warnings.join('\n'));
      // Epochs may start on the first shards (warm-up) before the configured ones; after the
      // switch the count goes on from the last finished epoch, never back to 1 or repeated.
      const numbers = outcome.epochNumbers;
      assert.deepEqual(numbers, numbers.map((_, i) => i + 1), `epochs charted: ${numbers}`);
      assert.ok(numbers.length >= DEFAULT_EPOCHS, `only ${numbers.length} epochs`);
      assert.ok(outcome.accuracy >= 0.6, `accuracy ${outcome.accuracy}`);
    } finally {
      await session.close();
    }
  });

  test('a shard that keeps failing is reported and training uses what arrived', { timeout: 10 * MINUTES }, async () => {
    const session = await openApp({ lesson: '02', server, webgpu: false, query: REDUCED, waitForReady: true });
    try {
      const manifest = await (await fetch(new URL('generated/flowers/manifest.json', server.url))).json();
      const shard = manifest.shards.find((s) => s.split === 'train' && s.subset === 'lesson').file;
      let attempts = 0;
      await session.page.context().route((url) => url.pathname.endsWith(`/${shard}`), (route) => {
        attempts += 1;
        return route.abort('connectionreset');
      });
      const outcome = await train(session.page, { timeout: 9 * MINUTES });
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}`);
      assert.equal(attempts, 3, 'the shard is tried three times');
      assert.ok(outcome.warnings.some((w) => /could not be downloaded/.test(w)), outcome.warnings.join('\n'));
      assert.ok(outcome.accuracy !== null);
    } finally {
      await session.close();
    }
  });

  test('a shard that fails once is retried without loss', { timeout: 10 * MINUTES }, async () => {
    const session = await openApp({ lesson: '02', server, webgpu: false, query: REDUCED });
    try {
      let failed = false;
      await session.page.context().route(/validation-lesson-000\.tlshard$/, (route) => {
        if (failed) return route.continue();
        failed = true;
        return route.abort('connectionreset');
      });
      const outcome = await train(session.page, { timeout: 9 * MINUTES });
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}`);
      assert.ok(failed);
      assert.deepEqual(outcome.warnings, []);
      assert.equal(outcome.predictions.length, 20);
    } finally {
      await session.close();
    }
  });

  test('a damaged weight file is refused with its name, without a crash', { timeout: 5 * MINUTES }, async () => {
    const session = await openApp({ lesson: '02', server, webgpu: false, query: REDUCED });
    try {
      await session.page.context().route(/models\/mobilenet_v2\.tlw$/, (route) =>
        route.fulfill({ status: 200, body: Buffer.from('not a weight file at all') }),
      );
      const outcome = await train(session.page, { timeout: 4 * MINUTES });
      assert.match(outcome.error ?? '', /mobilenet_v2\.tlw/);
      assert.match(outcome.error ?? '', /SHA-256/);
      assert.equal(session.log.pageErrors.length, 0);
    } finally {
      await session.close();
    }
  });

  test('a weight file of another layout is refused in plain words', { timeout: 5 * MINUTES }, async () => {
    const session = await openApp({ lesson: '02', server, webgpu: false, query: REDUCED });
    try {
      const body = Buffer.from('TLWEIGHT but then nothing sensible');
      const { createHash } = await import('node:crypto');
      const sha256 = createHash('sha256').update(body).digest('hex');
      await session.page.context().route(/models\/index\.json$/, async (route) => {
        const response = await route.fetch();
        const index = await response.json();
        for (const model of index.models) Object.assign(model, { sha256, bytes: body.length });
        return route.fulfill({ response, json: index });
      });
      await session.page.context().route(/models\/mobilenet_v2\.tlw$/, (route) =>
        route.fulfill({ status: 200, body }),
      );
      const outcome = await train(session.page, { timeout: 4 * MINUTES });
      assert.match(outcome.error ?? '', /mobilenet_v2\.tlw/);
      assert.equal(session.log.pageErrors.length, 0);
    } finally {
      await session.close();
    }
  });

  test('a loss that stops being finite stops training with an explanation', { timeout: 10 * MINUTES }, async () => {
    const session = await openApp({ lesson: '02', server, webgpu: false, query: REDUCED });
    try {
      // Lessons 01 and 03 have a learning-rate field too, and a question's answer mentions
      // learning rates: this is lesson 02's field.
      await session.page.getByRole('region', { name: /Lesson 02/ })
        .getByLabel('Learning rate', { exact: true }).fill('1e37');
      const outcome = await train(session.page, { timeout: 9 * MINUTES });
      assert.match(outcome.error ?? '', /loss became/);
      assert.match(outcome.error ?? '', /learning rate/);
    } finally {
      await session.close();
    }
  });
});
