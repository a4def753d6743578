// Lesson 03 in headless Chromium: fine-tuning the top of MobileNetV2 from lesson 02's head.
// On the CPU backend with the defaults it ends at or above lesson 02's accuracy of the same tab,
// the downloaded model evaluates to the same accuracy in the CLI, and a learning rate 100x
// larger loses accuracy in at least one epoch; on WebGPU a reduced subset completes, with the cache timing.

import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeProblems, goToLesson, openApp } from './browser.mjs';
import { cliJson } from './cli.mjs';
import { startServer } from './serve.mjs';

const MINUTES = 60_000;

/** Waits for one of `selectors` (or the run's error) and returns which appeared. */
async function waitFor(page, selectors, { timeout }) {
  const all = [...selectors, '[data-testid="error"]', '[data-testid="experiment-error"]'];
  await page.locator(all.join(', ')).first().waitFor({ timeout });
  return page.evaluate(() =>
    document.querySelector('[data-testid="error"]')?.textContent ??
    document.querySelector('[data-testid="experiment-error"]')?.textContent ??
    null);
}

/** Clicks Fine-tune and waits for the result; returns what the page shows. */
async function fineTune(page, { timeout }) {
  await page.getByTestId('train-fine-tune').click();
  const error = await waitFor(page, ['[data-testid="fine-tune-results"]'], { timeout });
  return page.evaluate((error) => {
    const results = document.querySelector('[data-testid="fine-tune-results"]');
    const comparison = [...document.querySelectorAll('[data-testid="lesson-comparison"] tbody tr')]
      .map((row) => [row.dataset.lesson, row.querySelector('td').textContent]);
    return {
      error,
      lesson02: results ? Number(results.dataset.lesson02) : null,
      lesson03: results ? Number(results.dataset.lesson03) : null,
      epochs: results ? Number(results.dataset.epochs) : 0,
      bestEpoch: results ? Number(results.dataset.bestEpoch) : 0,
      predictions: results ? JSON.parse(results.dataset.predictions) : [],
      charted: document.querySelectorAll('.chart polyline').length,
      trainingStages: document.querySelectorAll('[data-testid="block-diagram"] .stage.trains').length,
      comparison: Object.fromEntries(comparison),
      backend: document.querySelector('[data-testid="backend"]')?.dataset.backend ?? null,
    };
  }, error);
}

describe('lesson 03: fine-tuning', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.close();
  });

  test('defaults on the CPU backend end at or above lesson 02 of the same tab', { timeout: 45 * MINUTES }, async () => {
    const session = await openApp({ lesson: '02', server, webgpu: false });
    const { page } = session;
    try {
      // Lesson 02 first, in the same tab: lesson 03 starts from its head.
      await page.getByTestId('train').click();
      const lesson02Error = await waitFor(page, ['[data-testid="results"]'], { timeout: 20 * MINUTES });
      assert.equal(lesson02Error, null, `lesson 02 failed: ${lesson02Error}`);
      const lesson02 = Number(await page.getByTestId('val-accuracy').getAttribute('data-value'));
      await goToLesson(page, '03');

      const outcome = await fineTune(page, { timeout: 30 * MINUTES });
      await session.screenshot('lesson03-cpu-defaults');
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}\n${describeProblems(session.log)}`);
      assert.equal(outcome.backend, 'CPU');
      console.log(`lesson 03 defaults on CPU: lesson 02 panel ${lesson02}, fine-tuning start ` +
        `${outcome.lesson02}, fine-tuned ${outcome.lesson03} (best epoch ${outcome.bestEpoch} of ${outcome.epochs})`);
      // It starts from lesson 02's head, measured on the same validation photos.
      assert.ok(Math.abs(outcome.lesson02 - lesson02) < 1e-3, `start ${outcome.lesson02} vs lesson 02 ${lesson02}`);
      assert.ok(outcome.lesson03 >= lesson02, `fine-tuned ${outcome.lesson03} is below lesson 02's ${lesson02}`);
      assert.ok(outcome.bestEpoch >= 1 && outcome.bestEpoch <= outcome.epochs);
      // head_conv and the head train by default (the boundary nearest 20% of the parameters).
      assert.equal(outcome.trainingStages, 2);
      assert.match(outcome.comparison['02'], /%/);
      assert.match(outcome.comparison['03'], /%/);
      assert.equal(session.log.pageErrors.length, 0, describeProblems(session.log));

      // The downloaded model gives the CLI the accuracy that the page showed.
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByTestId('download-fine-tuned').click(),
      ]);
      const file = path.join(await mkdtemp(path.join(tmpdir(), 'transfer-lab-')), download.suggestedFilename());
      await download.saveAs(file);
      const report = await cliJson(['eval', file]);
      console.log(`the CLI measures the browser's fine-tuned model at ${report.evaluation.accuracy}`);
      assert.equal(report.photos, outcome.predictions.length);
      assert.ok(Math.abs(report.evaluation.accuracy - outcome.lesson03) <= 0.01,
        `CLI ${report.evaluation.accuracy} vs browser ${outcome.lesson03}`);

      // A learning rate 100x larger damages what lesson 02 had.
      await page.getByTestId('large-learning-rate').click();
      const experimentError = await waitFor(page, ['[data-testid="large-lr-result"]'], { timeout: 15 * MINUTES });
      assert.equal(experimentError, null, `the experiment failed: ${experimentError}`);
      const large = page.getByTestId('large-lr-result');
      const start = Number(await large.getAttribute('data-start'));
      const final = Number(await large.getAttribute('data-final'));
      const worst = Number(await large.getAttribute('data-worst'));
      await session.screenshot('lesson03-cpu-large-learning-rate');
      console.log(`learning rate x100: ${start} -> ${final} (worst epoch ${worst})`);
      assert.ok(worst < start - 0.02, `a 100x learning rate did not lose accuracy (${start} -> worst ${worst})`);
    } finally {
      await session.close();
    }
  });

  test('WebGPU fine-tunes a reduced subset and times the cache', { timeout: 30 * MINUTES }, async () => {
    const query = { train_per_class: 4, val_per_class: 2, epochs: 2 };
    const session = await openApp({ lesson: '03', server, webgpu: true, query });
    const { page } = session;
    try {
      const outcome = await fineTune(page, { timeout: 25 * MINUTES });
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}\n${describeProblems(session.log)}`);
      assert.equal(outcome.backend, 'WebGPU');
      console.log(`lesson 03 reduced on WebGPU: ${outcome.lesson02} -> ${outcome.lesson03}`);
      assert.equal(outcome.predictions.length, 10);
      assert.ok(outcome.epochs >= 1 && outcome.epochs <= 2);

      await page.getByTestId('cache-speed').click();
      const error = await waitFor(page, ['[data-testid="cache-speed-result"]'], { timeout: 10 * MINUTES });
      assert.equal(error, null, `the timing failed: ${error}`);
      const timing = page.getByTestId('cache-speed-result');
      const cached = Number(await timing.getAttribute('data-cached'));
      const uncached = Number(await timing.getAttribute('data-uncached'));
      console.log(`one epoch on WebGPU (reduced): ${cached} s cached, ${uncached} s uncached`);
      assert.ok(cached > 0 && uncached > 0);
      await session.screenshot('lesson03-webgpu-reduced');
      assert.equal(session.log.pageErrors.length, 0, describeProblems(session.log));
    } finally {
      await session.close();
    }
  });
});
