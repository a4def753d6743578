// Runs the workspace's `transfer-lab` command-line tool (built by scripts/setup.sh) from the
// browser tests, so a model can travel between the browser and the CLI.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'target/release/transfer-lab');

/** Runs `transfer-lab ARGS... --json` in the workspace root and returns the parsed JSON. */
export async function cliJson(args) {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} is missing: build it with cargo build --release -p transfer-lab-cli`);
  }
  try {
    const { stdout } = await promisify(execFile)(CLI, [...args, '--json'], {
      cwd: ROOT,
      maxBuffer: 64 << 20,
    });
    return JSON.parse(stdout);
  } catch (error) {
    throw new Error(`transfer-lab ${args.join(' ')} failed: ${error.stderr ?? error.message}`);
  }
}

/** Loads a model file through the page's "Load a model" control and waits for its measurement. */
export async function loadModelInPage(page, file, { timeout }) {
  // A message sent before the worker listens would be lost: wait until the control is enabled.
  await page.locator('[data-testid="load-model"]:enabled').waitFor({ timeout });
  await page.getByTestId('load-model').setInputFiles(file);
  await page
    .locator('[data-testid="model-check"], [data-testid="model-error"]')
    .first()
    .waitFor({ timeout });
  return page.evaluate(() => {
    const check = document.querySelector('[data-testid="model-check"]');
    return {
      error: document.querySelector('[data-testid="model-error"]')?.textContent ?? null,
      accuracy: check ? Number(check.dataset.accuracy) : null,
      predictions: check ? JSON.parse(check.dataset.predictions) : null,
      text: check?.textContent ?? null,
    };
  });
}
