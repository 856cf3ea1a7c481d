/**
 * The Repository panel end to end, in a real Chromium against a real JupyterHub with the
 * nanorepo service (tests/extension/test_ui.py starts them and seeds the repository).
 *
 * alice (who owns every seeded dataset) finds a dataset, opens it, filters its images,
 * opens a thread, replies, edits the reply (and reads its history), resolves the thread,
 * inserts the code cell for an image, runs it and sees the image's shape. She reads the
 * dataset's provenance: the runs that read it (a real run of intensity_statistics.ipynb,
 * a failed one with its error, one that read an embargoed dataset too), their inputs and
 * outputs, the lineage down to a dataset derived from a run, which she opens to find the
 * run it came from; she opens a run's executed notebook in Lab. bob, a reader, must not
 * see the dataset under embargo that nobody granted him: not in results, not in facet
 * counts, not when he searches for its words or its accession, and not the run that read
 * it on the public dataset's Provenance tab. The image table shows axes, shape, pixel size,
 * channels and dtype; the sealed metadata puts the authors (with ORCID) first. Finally
 * alice opens the service's landing page and, from it, a dataset in her Lab.
 */
import * as path from 'path';

import { expect, test } from '@playwright/test';

import { HUB, dismissToasts, openLab, openPanel, search, seed } from './lab';

const SHOTS = process.env.NANOREPO_UI_SCREENSHOTS;

test.describe.configure({ mode: 'serial' });

test('alice searches, reads, filters, discusses and opens an image in a notebook', async ({
  page
}) => {
  const S = seed();
  const errors: string[] = [];
  page.on('pageerror', e => errors.push(String(e)));
  await openLab(page, 'alice');
  await dismissToasts(page);
  await openPanel(page);
  const panel = page.locator('#nanorepo-repository');

  // everything alice may see: the five seeded datasets, two under embargo
  await expect(panel.locator('.nr-Result')).toHaveCount(5);
  await expect(
    panel.locator(`.nr-Result[data-accession="${S.hidden}"] .nr-Badge-embargo`)
  ).toBeVisible();
  const embargoed = panel.locator(
    '[data-facet="access"] [data-value="embargoed"] .nr-FacetValue-count'
  );
  await expect(embargoed).toHaveText('2');

  // full-text search, then a facet
  await search(page, 'rings');
  await expect(panel.locator('.nr-Result')).toHaveCount(1);
  const hit = panel.locator(`.nr-Result[data-accession="${S.images}"]`);
  await expect(hit).toContainText('Nup96 rings');
  await expect(hit.locator('img')).toBeVisible();
  await search(page, '');
  await panel
    .locator('[data-facet="technique"] .nr-FacetValue')
    .first()
    .click();
  await expect(
    panel.locator('[data-facet="technique"] [aria-pressed="true"]')
  ).toHaveCount(1);
  await expect(panel.locator('.nr-Result')).toHaveCount(5);
  if (SHOTS) {
    await panel.screenshot({ path: path.join(SHOTS, 'lab-panel.png') });
  }

  // the dataset page, opened from the keyboard
  await hit.focus();
  await page.keyboard.press('Enter');
  const ds = page.locator(`.nr-Dataset[data-accession="${S.images}"]`);
  await expect(ds).toHaveAttribute('data-state', 'ready');
  await expect(ds.locator('.nr-Ref')).toHaveText(`${S.images}@v1`);
  await expect(ds.locator('.nr-CiteText')).toContainText(`Alice`);
  await expect(ds.locator('.nr-Digest code')).toHaveText(/^[0-9a-f]{64}$/);
  await expect(ds.locator('.nr-Immutable')).toContainText('Homo sapiens');
  // the sealed metadata for people: authors first with their ORCID, no "value" labels
  await expect(ds.locator('.nr-Immutable h4').first()).toHaveText('Authors');
  await expect(ds.locator('.nr-Authors a.nr-Orcid')).toHaveAttribute(
    'href',
    'https://orcid.org/0000-0002-1825-0097'
  );
  await expect(
    ds.locator('.nr-Immutable dt', { hasText: /^value$/ })
  ).toHaveCount(0);
  await expect(ds.locator('.nr-Immutable h4')).toHaveText([
    'Authors',
    'biosample',
    'specimen',
    'image acquisition'
  ]);
  await expect(ds.locator('.nr-Mutable')).toContainText('CC-BY-4.0');
  // alice owns it: she edits the keywords with a reason, and the history shows the change
  await ds.locator('button[aria-label="Edit keywords"]').click();
  const edit = ds.locator('form.nr-EditField');
  await edit
    .locator('input[aria-label="New value"]')
    .fill('nuclear pore, Nup96');
  await edit
    .locator('input[aria-label="Reason"]')
    .fill('keywords from the paper');
  await edit.locator('button:has-text("Save")').click();
  await expect(edit).toHaveCount(0);
  await expect(
    ds.locator('.nr-Mutable dd').filter({ hasText: 'nuclear pore, Nup96' })
  ).toHaveCount(1);
  await ds.locator('.nr-Mutable button:has-text("History")').click();
  const history = ds
    .locator('table.nr-History tbody tr')
    .filter({ hasText: 'keywords from the paper' });
  await expect(history).toHaveCount(1);
  await expect(history).toContainText('alice');

  // images: filter on a key/value in the service, virtualised rows
  await ds.locator('button[data-tab="images"]').click();
  await expect(ds.locator('.nr-ImagesStatus')).toHaveText(
    `${S.image_count} images`
  );
  await expect(ds.locator('.nr-ImageRow[data-image]')).toHaveCount(
    S.image_count
  );
  await ds.locator('select[aria-label="Filter key"]').selectOption('condition');
  await ds.locator('input[aria-label="Filter value"]').fill('treated');
  await ds.locator('button:has-text("Add filter")').click();
  await expect(ds.locator('.nr-ImagesStatus')).toHaveText(
    `${S.treated} images match`
  );
  await expect(ds.locator('.nr-ImageRow[data-image]')).toHaveCount(S.treated);
  const rows = ds.locator('.nr-ImageRow[data-image]');
  for (let i = 0; i < S.treated; i++) {
    await expect(rows.nth(i)).toContainText('treated');
  }
  await expect(rows.first().locator('img')).toBeVisible();
  // what a microscopist looks for first: axes, shape, pixel size (nm), channels, dtype
  const header = ds.locator('.nr-ImageHeader [role="columnheader"]');
  for (const column of [
    'axes',
    'shape',
    'pixel size (nm)',
    'channels',
    'dtype'
  ]) {
    await expect(
      header.filter({
        hasText: new RegExp(`^${column.replace(/[()]/g, '\\$&')}$`)
      })
    ).toHaveCount(1);
  }
  await expect(rows.first().locator('.nr-Col-axes')).toHaveText('c y x');
  await expect(rows.first().locator('.nr-Col-shape')).toHaveText(
    S.shape.join(' × ')
  );
  await expect(rows.first().locator('.nr-Col-pixel')).toHaveText('y 20 · x 20');
  await expect(rows.first().locator('.nr-Col-dtype')).toHaveText('uint16');
  await expect(rows.first().locator('.nr-Channel')).toHaveCount(2);
  await expect(rows.first().locator('.nr-Channel').first()).toContainText(
    'Nup96 STED'
  );
  if (SHOTS) {
    // the page down to the last row of the table
    const area = await page.locator('.nr-DatasetPage').boundingBox();
    const last = await rows.last().boundingBox();
    if (!area || !last) {
      throw new Error('the dataset page is not on screen');
    }
    const height = last.y + last.height + 12 - area.y;
    await page.screenshot({
      path: path.join(SHOTS, 'lab-dataset.png'),
      clip: { ...area, height }
    });
  }
  const image = (await rows.first().getAttribute('data-image')) as string;

  // a thread on the image, a reply, an edit with history, resolved
  await rows.first().locator('button:has-text("Discuss")').click();
  const form = ds.locator('form.nr-NewThread');
  await expect(form.locator('select[aria-label="Thread anchor"]')).toHaveValue(
    image
  );
  await form
    .locator('input[aria-label="Thread title"]')
    .fill('Is the lower ring complete?');
  await form
    .locator('textarea[aria-label="Thread message"]')
    .fill('The lower ring seems to lack a **corner**.');
  await form.locator('button:has-text("Post thread")').click();
  const thread = ds.locator('section.nr-Thread');
  await expect(thread.locator('h3')).toHaveText('Is the lower ring complete?');
  await expect(
    thread.locator('.nr-Post').first().locator('strong', { hasText: 'corner' })
  ).toBeVisible();
  await thread
    .locator('textarea[aria-label="Reply"]')
    .fill('Seven of eight corners, I count.');
  await thread.locator('form.nr-Reply button:has-text("Reply")').click();
  await expect(thread.locator('.nr-Post')).toHaveCount(2);
  const reply = thread.locator('.nr-Post').nth(1);
  await expect(reply).toContainText('Seven of eight corners');
  await reply.locator('button:has-text("Edit")').click();
  await reply
    .locator('textarea[aria-label="Edit post"]')
    .fill('Eight of eight corners, on a second look.');
  await reply.locator('button:has-text("Save")').click();
  await expect(reply.locator('.nr-PostBody')).toContainText(
    'Eight of eight corners'
  );
  await expect(reply.locator('.nr-Edited')).toHaveText('(edited)');
  await reply.locator('.nr-Edited').click();
  await expect(reply.locator('.nr-PostHistory li')).toHaveCount(2);
  await expect(reply.locator('.nr-PostHistory')).toContainText(
    'Seven of eight corners'
  );
  await thread.locator('button:has-text("Resolve")').click();
  await expect(thread.locator('.nr-ThreadHead .nr-Status-resolved')).toHaveText(
    'resolved'
  );
  await thread.locator('button[aria-label="Back to the threads"]').click();
  await ds.locator('.nr-Toggle', { hasText: 'Resolved' }).click();
  await expect(ds.locator('.nr-ThreadItem')).toHaveCount(1);
  await expect(ds.locator('.nr-Toggle', { hasText: 'Resolved' })).toHaveText(
    'Resolved (1)'
  );

  // the code cell: inserted into a new notebook, not run until alice runs it
  await ds.locator('button[data-tab="images"]').click();
  await ds
    .locator(`.nr-ImageRow[data-image="${image}"] button:has-text("Notebook")`)
    .click();
  const nb = page.locator('.jp-NotebookPanel:visible');
  await expect(nb).toBeVisible();
  // (found by its text: running it appends an empty cell below)
  const cell = nb.locator('.jp-CodeCell', { hasText: 'nanorepo.open' });
  await expect(cell).toHaveCount(1);
  await expect(cell.locator('.jp-InputArea-editor')).toContainText(
    `nanorepo.open("${S.images}@v1")`
  );
  await expect(cell.locator('.jp-InputArea-editor')).toContainText(
    `img = ds["${image}"]`
  );
  await expect(cell.locator('.jp-OutputArea-output')).toHaveCount(0);
  await expect(
    nb.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
  ).toBeVisible({
    timeout: 120_000
  });
  await cell.locator('.jp-InputArea-editor').click();
  await page.keyboard.press('Escape');
  await page.keyboard.press('Shift+Enter');
  const shape = `(${S.shape.join(', ')})`;
  await expect(cell.locator('.jp-OutputArea-output').first()).toContainText(
    shape,
    { timeout: 120_000 }
  );
  await expect(cell.locator('.jp-OutputArea-output').first()).toContainText(
    image
  );
  // from the dataset page again (the active tab is not a notebook): a new notebook, the
  // one alice just ran is left as it is
  await page
    .locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: S.images })
    .click();
  await ds.locator('.nr-Actions button:has-text("Open in notebook")').click();
  await expect(page.locator('.jp-NotebookPanel')).toHaveCount(2);
  await expect(
    page.locator('.jp-NotebookPanel:visible .jp-CodeCell', {
      hasText: 'nanorepo.open'
    })
  ).toHaveCount(1);
  await expect(
    nb.locator('.jp-CodeCell', { hasText: 'nanorepo.open' })
  ).toHaveCount(1);

  // a service error reaches the user as a notification with the service's message
  await openPanel(page);
  await search(page, 'nosuchfield:value');
  await expect(
    page.locator('.Toastify__toast', { hasText: 'unknown search field' })
  ).toBeVisible();

  expect(errors).toEqual([]);
});

test('alice reads the provenance of a dataset and opens a run in Lab', async ({
  page
}) => {
  const S = seed();
  const P = S.provenance;
  const errors: string[] = [];
  page.on('pageerror', e => errors.push(String(e)));
  await openLab(page, 'alice');
  await dismissToasts(page);
  await openPanel(page);
  await search(page, 'rings');
  await page
    .locator(`#nanorepo-repository .nr-Result[data-accession="${S.images}"]`)
    .click();
  const ds = page.locator(`.nr-Dataset[data-accession="${S.images}"]`);
  await expect(ds).toHaveAttribute('data-state', 'ready');
  await ds.locator('button[data-tab="provenance"]').click();

  // the runs that read it, newest first: the real analysis, the comparison with the
  // embargoed dataset (alice owns that one), the failed run with its error, the smoothing
  const runs = ds.locator('.nr-Runs[data-list="readers"] > .nr-Run');
  await expect(runs).toHaveCount(4);
  const order = await runs.evaluateAll(els =>
    els.map(e => e.getAttribute('data-run'))
  );
  expect(order).toEqual([P.analysis, P.comparison, P.failed, P.smoothing]);
  const failed = ds.locator(`.nr-Run[data-run="${P.failed}"]`);
  await expect(failed).toHaveAttribute('data-status', 'failed');
  await expect(failed.locator('.nr-RunErrorLine')).toContainText(
    'InvalidInput: level 7 does not exist'
  );
  await expect(
    ds.locator(`.nr-Run[data-run="${P.comparison}"] .nr-RunHead`)
  ).toContainText(`${S.hidden}@v1`);

  // the analysis opened: parameters, inputs as ACC@vN, outputs with sizes and digests
  const analysis = ds.locator(`.nr-Run[data-run="${P.analysis}"]`);
  await analysis.locator('.nr-RunHead').click();
  await expect(analysis.locator('.nr-RunHead')).toHaveAttribute(
    'aria-expanded',
    'true'
  );
  const details = analysis.locator('.nr-RunDetails');
  await expect(details.locator('.nr-RunFacts')).toContainText(
    'intensity_statistics.ipynb'
  );
  await expect(
    details.locator('.nr-RunValues[aria-label="Parameters"]')
  ).toContainText(`${S.images}@v1`);
  await expect(
    details.locator(`.nr-RunInputs [data-input="${S.images}@v1"]`)
  ).toContainText('img00, img01');
  const csv = details.locator('tr[data-output="statistics.csv"]');
  await expect(csv).toContainText(/\d+(\.\d)? (B|kB)/);
  await expect(csv.locator('code.nr-Sha')).toHaveText(/^[0-9a-f]{12}…$/);
  await expect(csv.locator('a')).toHaveAttribute(
    'href',
    new RegExp(`nanorepo/api/runs/${P.analysis}/outputs/statistics\\.csv$`)
  );
  await expect(
    details.locator('a', { hasText: 'Download RO-Crate' })
  ).toHaveAttribute('href', new RegExp(`runs/${P.analysis}/crate$`));

  // the lineage: the smoothing run's output is the source of the derived dataset
  const lineage = ds.locator('.nr-Lineage');
  const derivedNode = lineage.locator(
    `.nr-LineageItem[data-node="${P.derived}@v1"]`
  );
  await expect(derivedNode).toHaveCount(1);
  await expect(derivedNode.locator('.nr-LineageRelation').first()).toHaveText(
    'source of'
  );
  await expect(
    lineage.locator(
      `.nr-LineageItem[data-node="output:${P.smoothing}/${P.smoothed}"]`
    )
  ).toHaveCount(1);
  if (SHOTS) {
    // a taller window, scrolled to the top: the page's head, the runs and the lineage
    await page.setViewportSize({ width: 1366, height: 1280 });
    await ds.evaluate(el =>
      (el.closest('.nr-DatasetPage') as HTMLElement).scrollTo(0, 0)
    );
    const area = await page.locator('.nr-DatasetPage:visible').boundingBox();
    if (!area) {
      throw new Error('the dataset page is not on screen');
    }
    await page.screenshot({
      path: path.join(SHOTS, 'lab-provenance.png'),
      clip: area
    });
    await page.setViewportSize({ width: 1366, height: 860 });
  }

  // the rerun command, on the clipboard
  await details.locator('button:has-text("Copy rerun command")').click();
  await expect(
    page.locator('.Toastify__toast', {
      hasText: `nanorepo rerun ${P.analysis}`
    })
  ).toBeVisible();

  // the executed notebook, saved in alice's home and opened in Lab, with its outputs
  await details.locator('button:has-text("Open executed notebook")').click();
  const tab = page.locator(
    '.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current',
    {
      hasText: `${P.analysis.slice(0, 12)}-intensity_statistics-executed.ipynb`
    }
  );
  await expect(tab).toHaveCount(1);
  const nb = page.locator('.jp-NotebookPanel:visible');
  await expect(nb.locator('.jp-OutputArea-output').first()).toBeVisible();
  await expect(
    nb.locator('h1', { hasText: 'Intensity statistics' })
  ).toBeVisible();

  // the derived dataset, opened from the lineage: the run it came from, no reader yet
  await page
    .locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: S.images })
    .click();
  await derivedNode.locator('button.nr-Ref').first().click();
  const derived = page.locator(`.nr-Dataset[data-accession="${P.derived}"]`);
  await expect(derived).toHaveAttribute('data-state', 'ready');
  await derived.locator('button[data-tab="provenance"]').click();
  const producer = derived.locator(
    `.nr-Runs[data-list="producers"] > .nr-Run[data-run="${P.smoothing}"]`
  );
  await expect(producer).toHaveCount(1);
  await expect(
    producer.locator(`.nr-RunInputs [data-input="${S.images}@v1"]`)
  ).toBeVisible();
  await expect(
    producer.locator(`tr[data-output="${P.smoothed}"]`)
  ).toBeVisible();
  await expect(derived.locator('.nr-RunsEmpty')).toContainText(
    `nanorepo run NOTEBOOK.ipynb -p accession ${P.derived}@v1`
  );

  expect(errors).toEqual([]);
});

test('bob does not see the dataset under embargo nobody granted him', async ({
  page
}, testInfo) => {
  const S = seed();
  await openLab(page, 'bob');
  await dismissToasts(page);
  await openPanel(page);
  const panel = page.locator('#nanorepo-repository');
  // public ones and the one granted to him; never the hidden one
  await expect(panel.locator('.nr-Result')).toHaveCount(4);
  await expect(
    panel.locator(`.nr-Result[data-accession="${S.granted}"] .nr-Badge-embargo`)
  ).toBeVisible();
  await expect(
    panel.locator(`.nr-Result[data-accession="${S.hidden}"]`)
  ).toHaveCount(0);
  const embargoed = panel.locator(
    '[data-facet="access"] [data-value="embargoed"] .nr-FacetValue-count'
  );
  await expect(embargoed).toHaveText('1');
  // its words and its accession find nothing
  await search(page, 'zanzibar');
  await expect(panel.locator('.nr-ResultsHeader')).toHaveText(
    'No datasets match'
  );
  await search(page, `accession:${S.hidden}`);
  await expect(panel.locator('.nr-Result')).toHaveCount(0);
  // while alice's public dataset is there for him too, with her resolved thread
  await search(page, 'rings');
  await panel.locator(`.nr-Result[data-accession="${S.images}"]`).click();
  const ds = page.locator(`.nr-Dataset[data-accession="${S.images}"]`);
  await expect(ds).toHaveAttribute('data-state', 'ready');
  await ds.locator('button[data-tab="threads"]').click();
  await expect(ds.locator('.nr-Toggle', { hasText: 'Resolved' })).toHaveText(
    'Resolved (1)'
  );
  await expect(ds.locator('.nr-Mutable button:has-text("Edit")')).toHaveCount(
    0
  );

  // provenance: the runs he may see; never the one that read the embargoed dataset
  const P = S.provenance;
  await ds.locator('button[data-tab="provenance"]').click();
  const runs = ds.locator('.nr-Runs[data-list="readers"] > .nr-Run');
  await expect(runs).toHaveCount(3);
  await expect(runs.nth(0)).toHaveAttribute('data-run', P.analysis);
  await expect(ds.locator(`.nr-Run[data-run="${P.comparison}"]`)).toHaveCount(
    0
  );
  const lineage = ds.locator('.nr-Lineage');
  await expect(
    lineage.locator(`.nr-LineageItem[data-node="${P.derived}@v1"]`)
  ).toHaveCount(1);
  await expect(
    lineage.locator(`.nr-LineageItem[data-node="run:${P.comparison}"]`)
  ).toHaveCount(0);
  await expect(ds.locator('.nr-Provenance')).not.toContainText(S.hidden);

  // the dark theme: Lab's own variables only, so the page follows it (kept with the results)
  await page
    .locator('.lm-MenuBar-itemLabel', { hasText: /^Settings$/ })
    .click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Theme$/ }).click();
  await page
    .locator('.lm-Menu-itemLabel', { hasText: /^JupyterLab Dark$/ })
    .click();
  await expect(page.locator('body')).toHaveAttribute(
    'data-jp-theme-light',
    'false'
  );
  await expect(page.locator('#jupyterlab-splash')).toHaveCount(0);
  const background = await ds.evaluate(
    el =>
      getComputedStyle(el.closest('.nr-DatasetPage') as Element).backgroundColor
  );
  expect(background).not.toBe('rgb(255, 255, 255)');
  await page.screenshot({ path: testInfo.outputPath('dark.png') });
});

test('the landing page shows what alice may see and opens a dataset in her Lab', async ({
  page
}) => {
  const S = seed();
  await openLab(page, 'alice');
  await page.goto(`${HUB()}/services/nanorepo/`);
  await expect(page.locator('h1')).toHaveText('nanorepo');
  await expect(page.locator('.nr-who')).toContainText('Signed in as alice');
  await expect(page.locator('.nr-count').first()).toContainText('datasets');
  const item = page.locator('.nr-ds', { hasText: `${S.images}@v1` });
  await expect(item).toHaveCount(1);
  await expect(item.locator('img')).toBeVisible();
  await expect
    .poll(
      () =>
        item
          .locator('img')
          .evaluate(img => (img as HTMLImageElement).naturalWidth),
      { timeout: 30_000 }
    )
    .toBeGreaterThan(0); // the thumbnail loaded (same origin, with her cookie)
  if (SHOTS) {
    await page.setViewportSize({ width: 1000, height: 1100 });
    await page.screenshot({
      path: path.join(SHOTS, 'landing.png'),
      fullPage: true
    });
  }
  // "Open in Lab": her JupyterLab opens with the dataset's page
  await Promise.all([
    page.waitForURL(/\/user\/alice\/lab/),
    item.locator('a.nr-open').click()
  ]);
  await expect(
    page.locator(`.nr-Dataset[data-accession="${S.images}"]`)
  ).toHaveAttribute('data-state', 'ready', {
    timeout: 120_000
  });
  await expect(page.locator('#nanorepo-repository')).toBeVisible();

  // the training notebooks, from the command palette
  await page.locator('#nanorepo-repository').click(); // focus on Lab, not the page
  await page.keyboard.press('Control+Shift+C');
  const paletteInput = page.locator('.lm-CommandPalette-input');
  await expect(paletteInput).toBeVisible();
  await paletteInput.fill('Training Notebooks');
  await page
    .locator('.lm-CommandPalette-item', { hasText: 'Training Notebooks' })
    .first()
    .click();
  await expect(
    page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
      hasText: '01_finding_and_opening.ipynb'
    })
  ).toBeVisible({
    timeout: 60_000
  });

  // a new launcher has a nanorepo section with both cards
  await page.locator('.lm-MenuBar-item', { hasText: 'File' }).click();
  await page
    .locator('.lm-Menu-item', { hasText: 'New Launcher' })
    .first()
    .click();
  const section = page.locator('.jp-Launcher-section', {
    has: page.locator('.jp-Launcher-sectionTitle', { hasText: 'nanorepo' })
  });
  await expect(section.locator('.jp-LauncherCard')).toHaveText([
    /Search the Repository/,
    /Training Notebooks/
  ]);
  await section
    .locator('.jp-LauncherCard', { hasText: 'Search the Repository' })
    .click();
  await expect(page.locator('#nanorepo-repository')).toBeVisible();
});
