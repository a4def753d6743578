// Smoke test: the built app (dist/) loads and renders, in both compute modes, without
// console errors or uncaught exceptions. It builds nothing: run `trunk build --release`
// first (scripts/test.sh does).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeProblems, openApp } from './browser.mjs';
import { DIST_DIR, startServer } from './serve.mjs';

// Chromium asks for /favicon.ico on its own; a missing icon is not an app error.
const isFaviconNoise = (text) => /favicon\.ico/.test(text);

describe('smoke', () => {
  let server;

  before(async () => {
    assert.ok(
      existsSync(path.join(DIST_DIR, 'index.html')),
      `${DIST_DIR}/index.html is missing: run "trunk build --release" (scripts/test.sh does) first`,
    );
    server = await startServer();
  });

  after(async () => {
    await server?.close();
  });

  for (const webgpu of [false, true]) {
    const mode = webgpu ? 'webgpu' : 'cpu';
    test(`app starts and renders (${mode})`, { timeout: 180_000 }, async () => {
      const session = await openApp({ server, webgpu });
      try {
        // Give late start-up work (adapter probing, first fetches) a moment to fail loudly.
        await session.page.waitForTimeout(1_000);
        const shot = await session.screenshot(`smoke-${mode}`);
        const { log } = session;
        log.console = log.console.filter((m) => !isFaviconNoise(`${m.text} ${m.location?.url}`));
        log.failedRequests = log.failedRequests.filter((r) => !isFaviconNoise(r.url));
        log.requests = log.requests.filter((r) => !isFaviconNoise(r.url));
        const problems = describeProblems(log);
        assert.equal(log.pageErrors.length, 0, `uncaught errors (screenshot ${shot}):\n${problems}`);
        assert.equal(log.errors().length, 0, `console errors (screenshot ${shot}):\n${problems}`);
        assert.equal(log.failedRequests.length, 0, `failed requests:\n${problems}`);
        assert.equal(log.badResponses().length, 0, `HTTP errors:\n${problems}`);
      } finally {
        await session.close();
      }
    });
  }
});
