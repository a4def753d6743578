// The trained-model file between the command-line tool and the browser: a model trained by
// `transfer-lab train` loads in the page and predicts what the CLI predicts on the same photos;
// a file that is not a trained model is refused in plain words.

import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeProblems, openApp } from './browser.mjs';
import { cliJson, loadModelInPage } from './cli.mjs';
import { startServer } from './serve.mjs';

const MINUTES = 60_000;
// Few photos keep the CLI's training and the page's measurement short.
const VALIDATION_PER_CLASS = 8;

describe('trained-model files', () => {
  let server;
  let dir;
  before(async () => {
    server = await startServer();
    dir = await mkdtemp(path.join(tmpdir(), 'transfer-lab-model-'));
  });
  after(async () => {
    await server?.close();
  });

  test('a model trained by the CLI loads in the page with the same predictions', { timeout: 15 * MINUTES }, async () => {
    const model = path.join(dir, 'cli-lesson02.tlmodel');
    await cliJson([
      'train', '--lesson', '02', '--train-per-class', '20',
      '--val-per-class', String(VALIDATION_PER_CLASS), '--out', model,
    ]);
    const cli = await cliJson(['eval', model, '--per-class', String(VALIDATION_PER_CLASS)]);
    const session = await openApp({
      lesson: '02',
      server,
      webgpu: false,
      query: { backend: 'cpu', val_per_class: VALIDATION_PER_CLASS },
    });
    try {
      const loaded = await loadModelInPage(session.page, model, { timeout: 10 * MINUTES });
      await session.screenshot('model-file-cli-to-browser');
      assert.equal(loaded.error, null, `${loaded.error}\n${describeProblems(session.log)}`);
      const cliPredictions = cli.evaluation.predictions;
      assert.equal(loaded.predictions.length, cliPredictions.length);
      const same = loaded.predictions.filter((p, i) => p === cliPredictions[i]).length;
      console.log(`CLI model in the page: ${same}/${cliPredictions.length} predictions agree; ` +
        `accuracy page ${loaded.accuracy}, CLI ${cli.evaluation.accuracy}`);
      assert.equal(same, cliPredictions.length, 'every photo gets the same class on both sides');
      assert.ok(Math.abs(loaded.accuracy - cli.evaluation.accuracy) < 1e-3);
      assert.match(loaded.text, /transfer-lab CLI/);
    } finally {
      await session.close();
    }
  });

  test('a backbone weight file offered as a model is refused in plain words', { timeout: 5 * MINUTES }, async () => {
    const session = await openApp({ lesson: '02', server, webgpu: false, query: { backend: 'cpu' } });
    try {
      const backbone = path.resolve('../public/generated/models/mobilenet_v2.tlw');
      const loaded = await loadModelInPage(session.page, backbone, { timeout: 2 * MINUTES });
      assert.match(loaded.error ?? '', /no trained model/);
      assert.equal(session.log.pageErrors.length, 0, describeProblems(session.log));
      // The page still works: the Train button is enabled again.
      assert.equal(await session.page.getByTestId('train').isDisabled(), false);
    } finally {
      await session.close();
    }
  });
});
