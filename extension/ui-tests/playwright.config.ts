/**
 * Playwright for the extension's end-to-end tests: Debian's Chromium (test tools cannot
 * download browsers here), one worker, against the hub `tests/extension/test_ui.py`
 * starts (its address and users come in the environment).
 */
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  timeout: 240_000,
  expect: { timeout: 30_000 },
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: process.env.NANOREPO_UI_OUTPUT || 'test-results',
  use: {
    launchOptions: {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage']
    },
    viewport: { width: 1366, height: 860 },
    actionTimeout: 30_000,
    navigationTimeout: 90_000,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure'
  }
});
