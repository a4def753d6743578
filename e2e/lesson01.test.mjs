// Lesson 01 in headless Chromium: a small CNN trained from scratch overfits (training accuracy
// well above validation accuracy), then the dataset-size sweep draws one point per subset; the
// CLI reproduces the browser's validation accuracy with the same seed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { describeProblems, openApp } from './browser.mjs';
import { cliJson } from './cli.mjs';
import { startServer } from './serve.mjs';

const MINUTES = 60_000;

/** Starts lesson 01 and waits until its sweep is over (or an error); returns what the page shows. */
async function trainFromScratch(page, { timeout }) {
  await page.getByTestId('train-scratch').click();
  await page.waitForFunction(
    () =>
      document.querySelector('[data-testid="error"]') ||
      // The results are there and the run (sweep included) is over: Stop is disabled again.
      (document.querySelector('[data-testid="scratch-results"]') &&
        document.querySelector('[data-testid="stop-scratch"]').disabled),
    null,
    { timeout, polling: 1000 },
  );
  return page.evaluate(() => {
    const results = document.querySelector('[data-testid="scratch-results"]');
    const gap = document.querySelector('[data-testid="gap"]');
    const sweep = document.querySelector('[data-testid="sweep"]');
    return {
      error: document.querySelector('[data-testid="error"]')?.textContent ?? null,
      validation: results ? Number(results.dataset.validation) : null,
      train: results ? Number(results.dataset.train) : null,
      verdict: document.querySelector('[data-testid="scratch-verdict"]')?.textContent ?? null,
      gapEpochs: gap ? Number(gap.dataset.epochs) : 0,
      gapText: gap?.textContent ?? '',
      sweep: sweep ? JSON.parse(sweep.dataset.points) : [],
      sweepCircles: document.querySelectorAll('[data-testid="sweep"] circle').length,
      backend: document.querySelector('[data-testid="backend"]')?.dataset.backend ?? null,
      chartLines: document.querySelectorAll('.chart polyline').length,
    };
  });
}

describe('lesson 01: a CNN from scratch', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.close();
  });

  test('defaults on the CPU backend overfit visibly and sweep four dataset sizes', { timeout: 30 * MINUTES }, async () => {
    const session = await openApp({ lesson: '01', server, webgpu: false });
    try {
      const outcome = await trainFromScratch(session.page, { timeout: 28 * MINUTES });
      await session.screenshot('lesson01-cpu-defaults');
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}\n${describeProblems(session.log)}`);
      assert.equal(outcome.backend, 'CPU');
      console.log(`lesson 01 defaults on CPU: train ${outcome.train}, validation ${outcome.validation}; ` +
        `sweep ${JSON.stringify(outcome.sweep)}`);
      assert.ok(outcome.train - outcome.validation >= 0.2,
        `training ${outcome.train} is not clearly above validation ${outcome.validation}`);
      assert.ok(outcome.validation > 0.3 && outcome.validation < 0.75, `validation ${outcome.validation}`);
      assert.match(outcome.gapText, /overfitting/);
      assert.equal(outcome.gapEpochs, 20);
      assert.deepEqual(outcome.sweep.map((p) => p.photos_per_class).sort((a, b) => a - b), [10, 25, 50, 100]);
      assert.equal(outcome.sweepCircles, 4);
      assert.match(outcome.verdict, /claim of 45\.0%–55\.0%/);
      assert.equal(session.log.pageErrors.length, 0, describeProblems(session.log));

      // The CLI on the same photos with the same seed.
      const cli = await cliJson(['train', '--lesson', '01', '--out', '/tmp/transfer-lab-e2e-lesson01.tlmodel']);
      console.log(`lesson 01 in the CLI: validation ${cli.validation.accuracy}`);
      // Within 2 points, inclusive (1e-9 absorbs the rounding of 0.545 - 0.525 and the like).
      assert.ok(Math.abs(cli.validation.accuracy - outcome.validation) <= 0.02 + 1e-9,
        `CLI ${cli.validation.accuracy} vs browser ${outcome.validation}`);
    } finally {
      await session.close();
    }
  });

  test('WebGPU trains a reduced subset and draws its sweep', { timeout: 30 * MINUTES }, async () => {
    // Few epochs: a software adapter takes about 20 s per epoch here.
    const query = { train_per_class: 8, val_per_class: 4, sweep: '2,4', epochs: 6 };
    const session = await openApp({ lesson: '01', server, webgpu: true, query });
    try {
      const outcome = await trainFromScratch(session.page, { timeout: 28 * MINUTES });
      await session.screenshot('lesson01-webgpu-reduced');
      assert.equal(outcome.error, null, `the run failed: ${outcome.error}\n${describeProblems(session.log)}`);
      assert.equal(outcome.backend, 'WebGPU');
      console.log(`lesson 01 reduced on WebGPU: train ${outcome.train}, validation ${outcome.validation}`);
      assert.ok(outcome.train > outcome.validation, 'training accuracy above validation accuracy');
      assert.deepEqual(outcome.sweep.map((p) => p.photos_per_class).sort((a, b) => a - b), [2, 4, 8]);
    } finally {
      await session.close();
    }
  });
});
