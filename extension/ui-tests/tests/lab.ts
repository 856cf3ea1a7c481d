/**
 * Helpers shared by the UI tests and the benchmark: where the hub is, signing in through
 * its login page, waiting for JupyterLab, opening the Repository panel.
 *
 * `tests/extension/test_ui.py` (or `benchmarks/bench_lab.py`) sets
 * - `NANOREPO_UI_HUB`: the hub's public URL (`http://127.0.0.1:PORT`);
 * - `NANOREPO_UI_PASSWORD`: the password every test user signs in with;
 * - `NANOREPO_UI_SEED`: JSON naming the seeded datasets;
 * - `NANOREPO_UI_SCREENSHOTS`: where the README's screenshots go (optional).
 */
import { Page, expect } from '@playwright/test';

/** The runs recorded on `images` (tests/extension/_seed.py `record_provenance`). */
export interface IProvenanceSeed {
  analysis: string;
  smoothing: string;
  failed: string;
  comparison: string;
  derived: string;
  smoothed: string;
}

export interface ISeed {
  public: string;
  granted: string;
  hidden: string;
  images: string;
  image_count: number;
  treated: number;
  shape: number[];
  provenance: IProvenanceSeed;
}

export function env(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run the UI tests through pytest (tests/extension/test_ui.py)`
    );
  }
  return value;
}

export const HUB = (): string => env('NANOREPO_UI_HUB').replace(/\/$/, '');
export const seed = (): ISeed => JSON.parse(env('NANOREPO_UI_SEED')) as ISeed;

/** Sign in to the hub as `user` and open their JupyterLab (their server is running). */
export async function openLab(page: Page, user: string): Promise<void> {
  const next = encodeURIComponent(`/user/${user}/lab`);
  await page.goto(`${HUB()}/hub/login?next=${next}`);
  await page.locator('input[name="username"]').fill(user);
  await page
    .locator('input[name="password"]')
    .fill(env('NANOREPO_UI_PASSWORD'));
  await Promise.all([
    page.waitForURL(/\/user\/[^/]+\/lab/),
    page.locator('#login_submit').click()
  ]);
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible({
    timeout: 120_000
  });
  await page.locator('.jp-LabShell').waitFor();
}

/** Show the Repository panel (left sidebar) and wait for its first search. */
export async function openPanel(page: Page): Promise<void> {
  const tab = page.locator('.jp-SideBar [data-id="nanorepo-repository"]');
  await expect(tab).toBeVisible();
  const panel = page.locator('#nanorepo-repository');
  if (!(await panel.isVisible())) {
    await tab.click();
  }
  await expect(panel).toBeVisible();
  await expect(panel.locator('.nr-ResultsHeader')).toContainText('datasets');
}

/** Type `query` into the panel's search box and wait until the results are for it. */
export async function search(page: Page, query: string): Promise<void> {
  const box = page.locator('#nanorepo-repository input[type="search"]');
  await box.fill(query);
  await box.press('Enter');
  await expect(
    page.locator('#nanorepo-repository .nr-Results')
  ).toHaveAttribute('aria-busy', 'false');
}

/** Answer "No" to the news question Lab asks on first start, so it covers nothing. */
export async function dismissToasts(page: Page): Promise<void> {
  const toast = page.locator('.Toastify__toast', { hasText: 'Jupyter news' });
  try {
    await toast.waitFor({ timeout: 5000 });
  } catch {
    return; // not asked (already answered, or news switched off)
  }
  await toast.getByRole('button', { name: 'No', exact: true }).click();
  await expect(toast).toHaveCount(0);
}
