/**
 * The image viewer end to end (tests/extension/test_viewer.py starts the hub, deposits the
 * ground-truth image and checks the screenshots this spec saves against it).
 *
 * alice opens the image from its row in the dataset's image table; the viewer streams the
 * pyramid through her Jupyter server and draws it with WebGL (SwiftShader here). She
 * switches channels, moves z, sees the seeded region threads drawn where they are, opens
 * one by clicking it, draws a box and posts a region thread, copies the view link and
 * opens it again from the command palette. A malformed link gets nanorepo's message. bob
 * opens a link to an embargoed image: nothing of its Zarr is ever fetched.
 *
 * Each screenshot is saved with the viewer's view (target, zoom, canvas size) beside it as
 * JSON, so the Python side maps image pixels to screen pixels and compares.
 */
import * as fs from 'fs';
import * as path from 'path';

import { Page, expect, test } from '@playwright/test';

import { dismissToasts, env, openLab, openPanel, search } from './lab';

interface IViewerSeed {
  accession: string;
  image: string;
  hidden: string;
  hidden_image: string;
  thread_open: string;
  thread_resolved: string;
  out: string;
}

const S = (): IViewerSeed =>
  JSON.parse(env('NANOREPO_UI_VIEWER')) as IViewerSeed;

test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--use-gl=angle',
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
      '--ignore-gpu-blocklist'
    ]
  }
});

test.describe.configure({ mode: 'serial' });

interface IView {
  target: [number, number, number];
  zoom: number;
  width: number;
  height: number;
  pixelNm: { x: number; y: number };
}

/** Wait until the viewer has loaded tiles more than `after` times; returns the count. */
async function loaded(page: Page, after: number): Promise<number> {
  const viewer = page.locator('.nr-Viewer:visible');
  await expect(viewer).toHaveAttribute('data-state', 'ready', {
    timeout: 90_000
  });
  await expect
    .poll(async () => Number(await viewer.getAttribute('data-loads')), {
      timeout: 60_000
    })
    .toBeGreaterThan(after);
  await page.waitForTimeout(500); // the frame after the load
  return Number(await viewer.getAttribute('data-loads'));
}

async function view(page: Page): Promise<IView> {
  const raw = await page
    .locator('.nr-Viewer:visible')
    .getAttribute('data-view');
  return JSON.parse(raw ?? '{}') as IView;
}

/** Screenshot of the canvas with its view beside it, for the Python side. */
async function shot(page: Page, name: string): Promise<void> {
  const out = S().out;
  fs.mkdirSync(out, { recursive: true });
  await page
    .locator('.nr-Viewer:visible .nr-Viewer-canvas')
    .screenshot({ path: path.join(out, `${name}.png`) });
  fs.writeFileSync(
    path.join(out, `${name}.json`),
    JSON.stringify(await view(page))
  );
}

/** Screen position (in the page) of level-0 image pixel (x, y). */
async function screenOf(
  page: Page,
  x: number,
  y: number
): Promise<[number, number]> {
  const v = await view(page);
  const box = await page
    .locator('.nr-Viewer:visible .nr-Viewer-canvas')
    .boundingBox();
  const s = 2 ** v.zoom;
  return [
    box!.x + (x - v.target[0]) * s + v.width / 2,
    box!.y + (y - v.target[1]) * s + v.height / 2
  ];
}

async function openLink(page: Page, link: string): Promise<void> {
  await page.keyboard.press('Control+Shift+C');
  const palette = page.locator('#command-palette input');
  await palette.fill('Open a View Link');
  await page.keyboard.press('Enter');
  const dialog = page.locator('.jp-Dialog');
  await dialog.locator('input').fill(link);
  await dialog.locator('button.jp-mod-accept').click();
}

test('alice views an image, its channels, planes and threads, and shares the view', async ({
  page
}) => {
  const seed = S();
  const errors: string[] = [];
  page.on('pageerror', e => errors.push(String(e)));
  const zarr: string[] = [];
  page.on('request', r => {
    if (r.url().includes('/nanorepo/api/zarr/')) {
      zarr.push(r.url());
    }
  });
  await openLab(page, 'alice');
  await dismissToasts(page);
  await openPanel(page);
  await search(page, seed.accession);
  const panel = page.locator('#nanorepo-repository');
  await panel.locator(`.nr-Result[data-accession="${seed.accession}"]`).click();
  const ds = page.locator(`.nr-Dataset[data-accession="${seed.accession}"]`);
  await expect(ds).toHaveAttribute('data-state', 'ready');
  await ds.locator('button[data-tab="images"]').click();
  // from the thumbnail of the image's row
  await ds
    .locator(`.nr-ImageRow[data-image="${seed.image}"] button.nr-Thumb`)
    .click();
  let n = await loaded(page, 0);
  const viewer = page.locator('.nr-Viewer:visible');
  await expect(viewer.locator('.nr-Viewer-channel')).toHaveCount(2);
  await expect(viewer.locator('.nr-Viewer-channel').first()).toContainText(
    'membrane'
  );
  await expect(viewer).toHaveAttribute('data-threads', '2');
  // only channel 0, z 0
  await viewer.locator('input[aria-label="show channel nucleus"]').uncheck();
  n = await loaded(page, n - 1);
  await shot(page, 'c0-z0');
  // the cursor over the bright square: position in nm and the pixel value
  const [cx, cy] = await screenOf(page, 128, 128);
  await page.mouse.move(cx, cy);
  await expect(viewer.locator('.nr-Viewer-cursor')).toContainText('µm');
  await expect(viewer.locator('.nr-Viewer-cursor')).toContainText(
    'values 1000'
  );
  // only channel 1
  await viewer.locator('input[aria-label="show channel nucleus"]').check();
  await viewer.locator('input[aria-label="show channel membrane"]').uncheck();
  n = await loaded(page, n - 1);
  await shot(page, 'c1-z0');
  // channel 0 again, at z 2
  await viewer.locator('input[aria-label="show channel membrane"]').check();
  await viewer.locator('input[aria-label="show channel nucleus"]').uncheck();
  await viewer.locator('input[aria-label="z plane"]').fill('2');
  n = await loaded(page, n);
  await shot(page, 'c0-z2');
  await viewer.locator('input[aria-label="z plane"]').fill('0');
  n = await loaded(page, n);

  // click the open thread's outline: the thread opens in the viewer
  const [tx, ty] = await screenOf(page, 256, 40);
  await page.mouse.click(tx, ty);
  await expect(viewer.locator('.nr-Viewer-thread')).toContainText(
    seed.thread_open
  );
  await viewer.locator('.nr-Viewer-thread button').click();

  // draw a box from image pixel (100, 300) to (200, 400) and post it
  await viewer.locator('button:has-text("Draw region")').click();
  const [ax, ay] = await screenOf(page, 100, 300);
  const [bx, by] = await screenOf(page, 200, 400);
  await page.mouse.move(ax, ay);
  await page.mouse.down();
  await page.mouse.move((ax + bx) / 2, (ay + by) / 2);
  await page.mouse.move(bx, by);
  await page.mouse.up();
  const form = viewer.locator('form.nr-Viewer-comment');
  await form.locator('input[aria-label="thread title"]').fill('drawn box');
  await form.locator('textarea[aria-label="comment"]').fill('look here');
  await form.locator('button[type="submit"]').click();
  await expect(viewer).toHaveAttribute('data-threads', '3');
  fs.writeFileSync(
    path.join(seed.out, 'drawn.json'),
    JSON.stringify({ view: await view(page) })
  );

  // copy the view's link; open it again from the palette: the same view
  await page.evaluate(() => {
    // headless Chromium has no clipboard permission: keep what is copied
    (window as unknown as { copied: string[] }).copied = [];
    document.addEventListener('copy', e => {
      const text = e.clipboardData?.getData('text/plain');
      if (text) {
        (window as unknown as { copied: string[] }).copied.push(text);
      }
    });
  });
  const before = await view(page);
  await viewer.locator('button:has-text("Copy link")').click();
  const toast = page.locator('.Toastify__toast', { hasText: 'Copied' });
  await expect(toast).toContainText(`${seed.accession}@v1/${seed.image}?x=`);
  const link = ((await toast.textContent()) ?? '')
    .replace(/^.*Copied /, '')
    .trim();
  fs.writeFileSync(path.join(seed.out, 'link.txt'), link);
  // a different view first, so the link has something to restore
  await openLink(page, `${seed.accession}@v1/${seed.image}?x=0,1000&y=0,1000`);
  await expect(page.locator('.nr-Viewer:visible')).toHaveCount(1);
  await loaded(page, 0);
  const other = await view(page);
  expect(other.zoom).toBeGreaterThan(before.zoom + 1);
  await openLink(page, link);
  await loaded(page, 0);
  const again = await view(page);
  expect(Math.abs(again.zoom - before.zoom)).toBeLessThan(0.05);
  expect(Math.abs(again.target[0] - before.target[0])).toBeLessThan(3);
  expect(Math.abs(again.target[1] - before.target[1])).toBeLessThan(3);
  await shot(page, 'link');

  // a malformed link: nanorepo's message, nothing opened
  const viewers = await page.locator('.nr-Viewer').count();
  await openLink(page, `${seed.accession}@v1/${seed.image}?x=5,1`);
  await expect(
    page.locator('.Toastify__toast', { hasText: 'is not a range' })
  ).toBeVisible();
  await expect(page.locator('.nr-Viewer')).toHaveCount(viewers);
  expect(zarr.length).toBeGreaterThan(0);
  expect(errors).toEqual([]);
});

test('bob never fetches a tile of an embargoed image', async ({ page }) => {
  const seed = S();
  const zarr: string[] = [];
  page.on('request', r => {
    if (r.url().includes('/zarr/')) {
      zarr.push(r.url());
    }
  });
  await openLab(page, 'bob');
  await dismissToasts(page);
  await openLink(page, `${seed.hidden}@v1/${seed.hidden_image}`);
  await expect(
    page.locator('.Toastify__toast', { hasText: 'View image' })
  ).toBeVisible();
  await expect(page.locator('.nr-Viewer')).toHaveCount(0);
  // and straight at the forwarder's Zarr endpoint: refused as missing
  const status = await page.evaluate(
    async url => {
      const r = await fetch(url, { credentials: 'same-origin' });
      return r.status;
    },
    `${new URL(page.url()).pathname.replace(/\/lab.*$/, '')}/nanorepo/api/zarr/${seed.hidden}/v1/${seed.hidden_image}/zarr.json`
  );
  expect([403, 404]).toContain(status); // refused, never served
  expect(zarr.filter(u => !u.endsWith('/zarr.json'))).toEqual([]);
});
