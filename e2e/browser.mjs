// Helpers for the browser tests: Debian's Chromium driven by playwright-core.
//
// Never let Playwright fetch a browser: tests run offline, so we always pass
// `executablePath` (Debian's `chromium`, installed by scripts/setup.sh).

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from './serve.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Where screenshots go (git-ignored). */
export const ARTIFACTS_DIR = path.join(HERE, 'artifacts');

/** Chromium binary; CHROMIUM_PATH overrides Debian's default location. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// Flags for every run. --no-sandbox because tests run as root; the rest keep Chromium
// from phoning home (no network here) and from doing first-run work.
const COMMON_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

// WebGPU mode: without a GPU, Chromium then offers SwiftShader as a fallback adapter
// (correct, slow). --enable-unsafe-webgpu alone was enough with Debian's Chromium 156.
const WEBGPU_ARGS = ['--enable-unsafe-webgpu'];

// CPU mode: `navigator.gpu` still exists, but requestAdapter() resolves to null, which is
// what the app's CPU fallback must handle.
const CPU_ARGS = ['--disable-gpu'];

/** Chromium's command-line flags for one mode. */
export function chromiumArgs({ webgpu = false } = {}) {
  return [...COMMON_ARGS, ...(webgpu ? WEBGPU_ARGS : CPU_ARGS)];
}

/** Launches headless Chromium with WebGPU (SwiftShader) or with no WebGPU adapter. */
export async function launchChromium({ webgpu = false, headless = true } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless,
    args: chromiumArgs({ webgpu }),
    timeout: 60_000,
  });
}

/** Saves a full-page screenshot as e2e/artifacts/<name>.png and returns its path. */
export async function saveScreenshot(page, name) {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, '_');
  const file = path.join(ARTIFACTS_DIR, `${safe}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Records what a page does: console messages, uncaught page errors, and every request
 * with its final status (or failure).
 */
export function recordPage(page) {
  const log = { console: [], pageErrors: [], requests: [], failedRequests: [] };
  page.on('console', (message) => {
    log.console.push({ type: message.type(), text: message.text(), location: message.location() });
  });
  page.on('pageerror', (error) => {
    log.pageErrors.push(String(error?.stack || error));
  });
  page.on('request', (request) => {
    log.requests.push({
      url: request.url(),
      method: request.method(),
      resourceType: request.resourceType(),
      status: null,
    });
  });
  page.on('requestfinished', async (request) => {
    const entry = log.requests.findLast((r) => r.url === request.url() && r.status === null);
    const response = await request.response().catch(() => null);
    if (entry) entry.status = response ? response.status() : null;
  });
  page.on('requestfailed', (request) => {
    log.failedRequests.push({ url: request.url(), error: request.failure()?.errorText ?? 'failed' });
  });
  log.errors = () => log.console.filter((m) => m.type === 'error');
  log.badResponses = () => log.requests.filter((r) => r.status !== null && r.status >= 400);
  return log;
}

/**
 * Opens the built app (dist/) in a fresh browser and returns a session:
 * { browser, page, server, log, url, screenshot(name), close() }.
 *
 * params:
 *   webgpu      launch with WebGPU (SwiftShader) instead of the CPU fallback
 *   query       object of URL query parameters, e.g. { lesson: 'features' }
 *   path        path below the site root (default '/')
 *   lesson      open this lesson's page ('01'..'04', the address's '#/lesson/NN'); default:
 *               the home page
 *   server      an already started server from serve.mjs (default: start one on dist/)
 *   waitForReady  wait for [data-testid="app-ready"] (default true)
 *   timeout     ms to wait for the ready marker (default 120 s: WASM start-up is slow
 *               on two cores)
 *   viewport    { width, height } (default 1280x900)
 */
export async function openApp({
  webgpu = false,
  query = {},
  path: pagePath = '/',
  lesson = null,
  server = null,
  waitForReady = true,
  timeout = 120_000,
  viewport = { width: 1280, height: 900 },
} = {}) {
  const ownServer = server === null;
  const activeServer = server ?? (await startServer());
  let browser = null;
  let page = null;
  let log = null;
  try {
    browser = await launchChromium({ webgpu });
    const context = await browser.newContext({ viewport });
    page = await context.newPage();
    log = recordPage(page);
    const url = new URL(pagePath.replace(/^\//, ''), activeServer.url);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, String(value));
    if (lesson) url.hash = `#/lesson/${lesson}`;
    await page.goto(url.href, { waitUntil: 'load', timeout });
    if (waitForReady) {
      await page.locator('[data-testid="app-ready"]').first().waitFor({ state: 'attached', timeout });
    }
    const session = {
      browser,
      context,
      page,
      server: activeServer,
      log,
      url: url.href,
      screenshot: (name) => saveScreenshot(page, name),
      close: async () => {
        await browser.close().catch(() => {});
        if (ownServer) await activeServer.close();
      },
    };
    return session;
  } catch (error) {
    // Keep the evidence: a screenshot and what the page complained about.
    if (page) {
      const shot = await saveScreenshot(page, `open-failed-${webgpu ? 'webgpu' : 'cpu'}`).catch(
        () => null,
      );
      const problems = log ? describeProblems(log) : '';
      error.message += `${shot ? `\nscreenshot: ${shot}` : ''}${problems ? `\n${problems}` : ''}`;
    }
    if (browser) await browser.close().catch(() => {});
    if (ownServer) await activeServer.close();
    throw error;
  }
}

/** Shows lesson `lesson`'s page ('01'..'04') in an open app, as its link in the header does. */
export async function goToLesson(page, lesson) {
  await page.getByTestId(`nav-${lesson}`).click();
  await page.locator(`.lesson-page[data-lesson="${lesson}"]:not([hidden])`).waitFor();
}

/** A readable dump of what went wrong on a page, for assertion messages. */
export function describeProblems(log) {
  const lines = [];
  for (const e of log.pageErrors) lines.push(`page error: ${e}`);
  for (const m of log.errors()) lines.push(`console error: ${m.text} (${m.location?.url ?? '?'})`);
  for (const r of log.failedRequests) lines.push(`request failed: ${r.url} (${r.error})`);
  for (const r of log.badResponses()) lines.push(`HTTP ${r.status}: ${r.url}`);
  return lines.join('\n');
}
