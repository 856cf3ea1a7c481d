/**
 * The browser half of `benchmarks/bench_lab.py` (not a test: skipped unless the benchmark
 * runs it). In a real Chromium, against JupyterLab with the extension in front of the
 * service over a 10,000-dataset catalog, it times
 *
 * - typing a query into the Repository panel until its results are on screen, and
 * - clicking a dataset in the results until its page is rendered (summary, versions and
 *   the sealed metadata shown: `data-state="ready"`),
 *
 * in the page itself (`performance.now()` at the input or click event, and at the first
 * animation frame after the DOM shows the answer), so the driver's own latency is not
 * counted. It also records how much of each interval the requests to `nanorepo/api/` took
 * (Resource Timing), and writes everything as JSON to `NANOREPO_BENCH_OUT`.
 */
import * as fs from 'fs';

import { Page, expect, test } from '@playwright/test';

import { env } from './lab';

interface ISample {
  what: string;
  ms: number;
  network_ms: number;
}

const ENABLED = Boolean(process.env.NANOREPO_BENCH_OUT);

async function instrument(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __nr: { start: number; end: number } };
    w.__nr = { start: 0, end: 0 };
    const panel = document.querySelector('#nanorepo-repository') as HTMLElement;
    panel.addEventListener(
      'input',
      () => (w.__nr.start = performance.now()),
      true
    );
    document.addEventListener(
      'click',
      e => {
        if ((e.target as HTMLElement).closest('.nr-Result')) {
          w.__nr.start = performance.now();
        }
      },
      true
    );
    const done = () =>
      requestAnimationFrame(() => (w.__nr.end = performance.now()));
    const list = panel.querySelector('.nr-Results') as HTMLElement;
    new MutationObserver(() => {
      if (
        list.getAttribute('aria-busy') === 'false' &&
        w.__nr.end === 0 &&
        w.__nr.start > 0
      ) {
        done();
      }
    }).observe(list, { attributes: true, childList: true, subtree: true });
    new MutationObserver(() => {
      if (
        document.querySelector('.nr-Dataset[data-state="ready"]') &&
        w.__nr.end === 0 &&
        w.__nr.start > 0
      ) {
        done();
      }
    }).observe(document.body, {
      attributes: true,
      attributeFilter: ['data-state'],
      subtree: true
    });
  });
}

async function reset(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __nr: { start: number; end: number } };
    w.__nr.start = 0;
    w.__nr.end = 0;
    performance.clearResourceTimings();
  });
}

async function collect(page: Page, what: string): Promise<ISample> {
  await page.waitForFunction(
    () => (window as unknown as { __nr: { end: number } }).__nr.end > 0,
    null,
    {
      timeout: 30_000
    }
  );
  return page.evaluate(label => {
    const w = window as unknown as { __nr: { start: number; end: number } };
    const api = performance
      .getEntriesByType('resource')
      .filter(
        e =>
          e.name.includes('/nanorepo/api/') &&
          !e.name.includes('thumbnail') &&
          e.startTime >= w.__nr.start
      )
      .map(e => (e as PerformanceResourceTiming).responseEnd - w.__nr.start);
    return {
      what: label,
      ms: w.__nr.end - w.__nr.start,
      network_ms: api.length ? Math.max(...api) : 0
    };
  }, what);
}

test('time search and dataset pages', async ({ page }) => {
  test.skip(!ENABLED, 'run by benchmarks/bench_lab.py');
  test.setTimeout(1_800_000);
  const queries = JSON.parse(env('NANOREPO_BENCH_QUERIES')) as string[];
  const opens = Number(env('NANOREPO_BENCH_OPENS'));
  await page.goto(env('NANOREPO_BENCH_LAB'));
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible({
    timeout: 120_000
  });
  const tab = page.locator('.jp-SideBar [data-id="nanorepo-repository"]');
  await tab.click();
  const panel = page.locator('#nanorepo-repository');
  await expect(panel.locator('.nr-ResultsHeader')).toContainText('datasets');
  await instrument(page);
  const box = panel.locator('input[type="search"]');
  const samples: ISample[] = [];

  // typing a query (one input event, as a paste or the last keystroke) until results show
  for (const q of queries) {
    await reset(page);
    await box.fill(q);
    samples.push(await collect(page, 'search'));
    await expect(panel.locator('.nr-Results')).toHaveAttribute(
      'aria-busy',
      'false'
    );
  }

  // clicking a result until the dataset page is rendered; every time another dataset
  await box.fill('');
  await expect(panel.locator('.nr-Results')).toHaveAttribute(
    'aria-busy',
    'false'
  );
  let done = 0;
  while (done < opens) {
    const results = panel.locator('.nr-Result');
    const n = await results.count();
    for (let i = 0; i < n && done < opens; i++) {
      await reset(page);
      await results.nth(i).click();
      samples.push(await collect(page, 'open'));
      done += 1;
      await page
        .locator(
          '.lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon'
        )
        .click();
      await expect(page.locator('.nr-Dataset')).toHaveCount(0);
    }
    await panel.locator('button[aria-label="Next page"]').click();
    await expect(panel.locator('.nr-Results')).toHaveAttribute(
      'aria-busy',
      'false'
    );
  }
  // the image table of the version with 100,000 images: scrolling through it, frame by
  // frame, and how many rows are in the DOM meanwhile (virtualised: a screenful or two)
  const big = process.env.NANOREPO_BENCH_BIG;
  if (big) {
    await box.fill(`accession:${big}`);
    await panel.locator(`.nr-Result[data-accession="${big}"]`).click();
    const ds = page.locator(`.nr-Dataset[data-accession="${big}"]`);
    await expect(ds).toHaveAttribute('data-state', 'ready');
    await ds.locator('button[data-tab="images"]').click();
    await expect(ds.locator('.nr-ImagesStatus')).toHaveText('100,000 images', {
      timeout: 60_000
    });
    await expect(ds.locator('.nr-ImageRow[data-image]').first()).toBeVisible();
    const scrolled = await page.evaluate(async () => {
      const el = document.querySelector('.nr-ImageScroller') as HTMLElement;
      const frame = () =>
        new Promise(resolve => requestAnimationFrame(() => resolve(null)));
      const pause = (ms: number) =>
        new Promise(resolve => setTimeout(resolve, ms));
      const frames: number[] = [];
      let rows = 0;
      for (let i = 0; i < 120; i++) {
        const t0 = performance.now();
        el.scrollTop += 440; // ten rows, a brisk wheel turn
        await frame();
        await frame();
        frames.push(performance.now() - t0);
        rows = Math.max(rows, el.querySelectorAll('.nr-ImageRow').length);
        await pause(16);
      }
      return { frames, rows, top: el.scrollTop };
    });
    for (const ms of scrolled.frames) {
      samples.push({ what: 'scroll', ms, network_ms: scrolled.rows });
    }
    // a jump far down: rows show as placeholders at once, then fill in as their pages
    // arrive (keyset cursors are followed in order)
    const t0 = Date.now();
    await page.evaluate(() => {
      const el = document.querySelector('.nr-ImageScroller') as HTMLElement;
      el.scrollTop = 44 * 5000;
    });
    await expect(
      ds.locator('.nr-ImageRow[aria-rowindex="5002"][data-image]')
    ).toBeVisible({ timeout: 120_000 });
    samples.push({ what: 'jump', ms: Date.now() - t0, network_ms: 0 });
  }
  fs.writeFileSync(env('NANOREPO_BENCH_OUT'), JSON.stringify(samples));
});
