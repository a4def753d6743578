// The course as a student and a teacher use it, in headless Chromium: the home page leads to
// lesson 02, its questions are answered, and after a reload the results and answers are still
// there; a photo gets the same top 3 from the trained model and from that model downloaded and
// loaded back; after that first visit the app reloads and trains without a network; no request ever
// leaves the page's origin. Projector mode shows every step of every lesson at 1280x720
// without scrollbars (screenshots in e2e/artifacts/).

import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeProblems, goToLesson, openApp } from './browser.mjs';
import { startServer } from './serve.mjs';

const MINUTES = 60_000;
// Small enough for a few minutes on the CPU backend.
const REDUCED = { train_per_class: 6, val_per_class: 4 };

/** Waits for the app to be ready again after a reload. */
async function reloaded(page) {
  await page.reload({ waitUntil: 'load' });
  await page.locator('[data-testid="app-ready"]').waitFor({ state: 'attached', timeout: 2 * MINUTES });
}

/** Lesson 02's shown validation accuracy, or null. */
async function lesson02Accuracy(page) {
  return page.evaluate(() => {
    const accuracy = document.querySelector('[data-testid="val-accuracy"]');
    return accuracy ? Number(accuracy.dataset.value) : null;
  });
}

/** A made-up photo (a yellow disc on green), drawn by the page itself, as PNG bytes. */
async function drawnPhoto(page) {
  const base64 = await page.evaluate(() => {
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 240;
    const context = canvas.getContext('2d');
    context.fillStyle = '#2e7d32';
    context.fillRect(0, 0, 320, 240);
    context.fillStyle = '#fdd835';
    context.beginPath();
    context.arc(160, 120, 80, 0, 2 * Math.PI);
    context.fill();
    context.fillStyle = '#5d4037';
    context.beginPath();
    context.arc(160, 120, 30, 0, 2 * Math.PI);
    context.fill();
    return canvas.toDataURL('image/png').split(',')[1];
  });
  return Buffer.from(base64, 'base64');
}

/** Classifies `file` ({ name, mimeType, buffer }) and returns the shown top 3 or the error. */
async function classify(page, file) {
  await page.locator('[data-testid="classify-photo"]:enabled').waitFor({ timeout: MINUTES });
  await page.getByTestId('classify-photo').setInputFiles(file);
  await page.locator('[data-testid="photo-answer"], [data-testid="photo-error"]').first()
    .waitFor({ timeout: 5 * MINUTES });
  return page.evaluate(() => ({
    top: JSON.parse(document.querySelector('[data-testid="photo-answer"]')?.dataset.top ?? 'null'),
    error: document.querySelector('[data-testid="photo-error"]')?.textContent ?? null,
  }));
}

/** Trains lesson 02 and returns its validation accuracy; fails on the page's error. */
async function trainLesson02(page) {
  await page.getByTestId('train').click();
  await page.locator('[data-testid="results"], [data-testid="error"]').first()
    .waitFor({ timeout: 15 * MINUTES });
  const error = await page.evaluate(() => document.querySelector('[data-testid="error"]')?.textContent ?? null);
  assert.equal(error, null, `lesson 02 failed: ${error}`);
  return lesson02Accuracy(page);
}

describe('the course', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.close();
  });

  test('home -> lesson 02 -> questions -> reload keeps it all; offline after the first visit', { timeout: 30 * MINUTES }, async () => {
    const session = await openApp({ server, webgpu: false, query: REDUCED });
    const { page, context } = session;
    const requests = [];
    context.on('request', (request) => requests.push(request.url()));
    try {
      // Home: the four lessons in order, none started.
      const cards = await page.locator('[data-testid^="lesson-card-"]').evaluateAll((all) =>
        all.map((card) => [card.dataset.testid.slice(-2), card.dataset.status]));
      assert.deepEqual(cards, [['01', 'not-started'], ['02', 'not-started'], ['03', 'not-started'],
        ['04', 'not-started']]);
      await page.getByTestId('lesson-card-02').getByRole('link').click();
      await page.locator('.lesson-page[data-lesson="02"]:not([hidden])').waitFor();
      assert.match(page.url(), /#\/lesson\/02$/);

      const accuracy = await trainLesson02(page);
      assert.ok(accuracy > 0, `accuracy ${accuracy}`);

      // A photo of the student's own: top 3 from the model trained here, then the same from
      // that model downloaded and loaded back.
      const photo = { name: 'drawn.png', mimeType: 'image/png', buffer: await drawnPhoto(page) };
      const trained = await classify(page, photo);
      assert.equal(trained.error, null);
      assert.equal(trained.top.length, 3);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByTestId('download-model').click(),
      ]);
      const file = path.join(await mkdtemp(path.join(tmpdir(), 'transfer-lab-course-')),
        download.suggestedFilename());
      await download.saveAs(file);
      await page.getByTestId('load-model').setInputFiles(file);
      await page.locator('[data-testid="model-check"], [data-testid="model-error"]').first()
        .waitFor({ timeout: 5 * MINUTES });
      const loaded = await classify(page, photo);
      console.log(`drawn photo, trained model: ${JSON.stringify(trained.top)}; loaded: ${JSON.stringify(loaded.top)}`);
      assert.deepEqual(loaded.top.map(([name]) => name), trained.top.map(([name]) => name));
      loaded.top.forEach(([, p], i) => assert.ok(Math.abs(p - trained.top[i][1]) < 1e-5));
      // A file that is not a photo is refused in plain words; the loaded model stays.
      const broken = await classify(page, { name: 'broken.jpg', mimeType: 'image/jpeg',
        buffer: Buffer.from('not a photo at all') });
      assert.match(broken.error ?? '', /broken\.jpg could not be read as a photo/);
      await page.locator('[data-testid="classify-photo"]:enabled').waitFor();
      assert.equal(await page.getByTestId('model-check').count(), 1);
      await session.screenshot('course-photo-classified');
      // Two questions: one right, one wrong; each explains itself.
      await page.getByTestId('answer-02-frozen-1').check();
      await page.getByTestId('answer-02-when-2').check();
      assert.equal(await page.getByTestId('feedback-02-frozen').getAttribute('data-correct'), 'true');
      const score = await page.getByTestId('quiz-score-02').textContent();
      assert.match(score, /^2 of \d+ answered/);
      await session.screenshot('course-lesson02-answered');

      // A reload brings back the result, the trained model and the answers.
      await reloaded(page);
      await page.locator('[data-testid="results"]').waitFor({ timeout: MINUTES });
      assert.equal(await lesson02Accuracy(page), accuracy);
      assert.equal(await page.getByTestId('answer-02-frozen-1').isChecked(), true);
      assert.equal(await page.getByTestId('answer-02-when-2').isChecked(), true);
      assert.equal(await page.getByTestId('quiz-score-02').textContent(), score);
      await page.getByTestId('nav-home').click();
      const status = page.getByTestId('lesson-card-02');
      assert.equal(await status.getAttribute('data-status'), 'done');
      assert.match(await page.getByTestId('lesson-status-02').textContent(), /Done: validation \d/);
      await session.screenshot('course-home-after-reload');

      // Offline: the service worker kept the app; the worker kept what lesson 02 downloaded.
      await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null,
        { timeout: MINUTES });
      await page.getByTestId('nav-settings').click();
      await page.getByTestId('refresh-storage').click();
      await page.waitForFunction(() =>
        Number(document.querySelector('[data-testid="cached-files"]')?.dataset.files ?? 0) > 3,
      null, { timeout: MINUTES });
      await context.setOffline(true);
      await reloaded(page);
      await goToLesson(page, '02');
      assert.equal(await lesson02Accuracy(page), accuracy);
      const offlineAccuracy = await trainLesson02(page);
      console.log(`lesson 02 reduced: ${accuracy} online, ${offlineAccuracy} offline`);
      // Epochs on the photos that arrived while later shards were still downloading depend on
      // timing, so the two runs need not agree exactly; both must learn (chance is 0.2).
      assert.ok(offlineAccuracy >= 0.5, `offline accuracy ${offlineAccuracy}`);
      await page.getByTestId('nav-settings').click();
      await page.getByTestId('refresh-storage').click();
      await page.locator('[data-testid="offline-status"][data-ready="true"]').waitFor();
      await session.screenshot('course-settings-offline');
      await context.setOffline(false);

      // The reset button forgets everything.
      await page.getByTestId('reset-progress').click();
      await page.getByTestId('nav-home').click();
      await page.locator('[data-testid="lesson-card-02"][data-status="not-started"]').waitFor();
      await reloaded(page);
      assert.equal(await page.getByTestId('lesson-card-02').getAttribute('data-status'), 'not-started');

      const origin = new URL(session.url).origin;
      const foreign = requests.filter((url) => !url.startsWith(origin) &&
        !url.startsWith('data:') && !url.startsWith('blob:'));
      console.log(`${requests.length} requests, ${foreign.length} to another origin`);
      assert.deepEqual(foreign, []);
      assert.equal(session.log.pageErrors.length, 0, describeProblems(session.log));
    } finally {
      await session.close();
    }
  });

  test('projector mode: every step of every lesson fits 1280x720 without scrollbars', { timeout: 10 * MINUTES }, async () => {
    const session = await openApp({
      server,
      webgpu: false,
      query: { projector: 1 },
      viewport: { width: 1280, height: 720 },
    });
    const { page } = session;
    try {
      assert.equal(await page.getByTestId('projector-toggle').isChecked(), true);
      const overflow = [];
      // The presenter's keys walk home -> every step of lessons 01..04 -> home.
      for (let step = 0; step < 40; step += 1) {
        await page.keyboard.press('ArrowRight');
        await page.waitForTimeout(150);
        const where = await page.evaluate(() => location.hash);
        if (where === '#/') break;
        const sizes = await page.evaluate(() => {
          const root = document.documentElement;
          return {
            shown: document.querySelectorAll('.lesson-page:not([hidden]) .step.current').length,
            scrollHeight: root.scrollHeight,
            scrollWidth: root.scrollWidth,
            height: root.clientHeight,
            width: root.clientWidth,
          };
        });
        assert.equal(sizes.shown, 1, `${where}: one step on screen`);
        if (sizes.scrollHeight > sizes.height || sizes.scrollWidth > sizes.width) {
          overflow.push(`${where} ${sizes.scrollWidth}x${sizes.scrollHeight}`);
        }
        if (/\/(idea|run|questions)$/.test(where) || /lesson\/0\d$/.test(where)) {
          await session.screenshot(`projector${where.replace(/[#/]+/g, '-')}`);
        }
      }
      assert.deepEqual(overflow, [], 'steps that need scrolling at 1280x720');
      assert.equal(session.log.pageErrors.length, 0, describeProblems(session.log));
    } finally {
      await session.close();
    }
  });
});
