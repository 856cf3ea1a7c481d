/**
 * The panel's models: the query the search box and facets make, the code cell, the
 * citation; and, against the real service through a real Jupyter server, the search
 * (facets, pages, stale answers dropped), the image table (filters, sort, page-by-page
 * loading) and post edits that lose a race.
 */
import { IPost, RepositoryClient } from '../api';
import {
  ImageTableModel,
  SearchModel,
  buildQuery,
  citation,
  formatBytes,
  formatValue,
  notebookCode,
  quoteValue,
  savePostEdit
} from '../models';
import { live } from './live';

describe('pure helpers', () => {
  it('builds the service query from text and facet choices, quoting where needed', () => {
    expect(buildQuery('  nuclear pore ', {})).toBe('nuclear pore');
    expect(
      buildQuery('', { organism: 'homo sapiens', technique: 'sted' })
    ).toBe('technique:sted organism:"homo sapiens"');
    expect(buildQuery('rings', { access: 'embargoed', author: 'ada' })).toBe(
      'rings access:embargoed author:ada'
    );
    expect(quoteValue('cc-by-4.0')).toBe('cc-by-4.0');
    expect(quoteValue('a "b" c')).toBe('"a b c"');
  });

  it('writes a code cell that opens the pinned version and prints the image shape', () => {
    const code = notebookCode('S-NANO4', 2, 'cell_01');
    expect(code).toContain('ds = nanorepo.open("S-NANO4@v2")');
    expect(code).toContain('img = ds["cell_01"]');
    expect(code).toContain('print(img.name, data.dims, data.shape)');
    const whole = notebookCode('S-NANO4', 1, null);
    expect(whole).toContain('nanorepo.open("S-NANO4@v1")');
    expect(whole).not.toContain('img =');
  });

  it('cites authors, title, reference and year', () => {
    const meta = { study: { authors: [{ name: 'Ada' }, { name: 'Bo' }] } };
    expect(citation('Pores', 'S-NANO1', 3, '2026-05-01T10:00:00', meta)).toBe(
      'Ada, Bo (2026). Pores. nanorepo S-NANO1@v3.'
    );
    expect(citation('Pores', 'S-NANO1', 1, '2025-01-01', null)).toBe(
      '(2025). Pores. nanorepo S-NANO1@v1.'
    );
  });

  it('formats sizes and metadata values for people', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1500)).toBe('1.5 kB');
    expect(formatBytes(2_000_000_000)).toBe('2.0 GB');
    expect(formatValue(['a', 'b'])).toBe('a, b');
    expect(formatValue({ target: 'Nup96', n: 2 })).toBe('target: Nup96; n: 2');
    expect(formatValue(null)).toBe('—');
  });
});

describe('models against the service', () => {
  const L = live();
  const client = new RepositoryClient(L.settings);

  it('searches with text and facets, counting what the user may see', async () => {
    const model = new SearchModel(client, 2);
    let emitted = 0;
    model.changed.connect(() => (emitted += 1));
    await model.search();
    expect(emitted).toBeGreaterThanOrEqual(2);
    // alice sees all five seeded datasets (three public, one derived from a run among
    // them; two under embargo)
    expect(model.total).toBe(5);
    expect(model.results).toHaveLength(2);
    expect(model.hasNext).toBe(true);
    const access = Object.fromEntries(
      model.facets.access.map(f => [f.value, f.count])
    );
    expect(access).toEqual({ public: 3, embargoed: 2 });

    await model.nextPage();
    expect(model.page).toBe(1);
    expect(model.results).toHaveLength(2);
    expect(model.hasNext).toBe(true);
    await model.nextPage();
    expect(model.page).toBe(2);
    expect(model.results).toHaveLength(1);
    expect(model.hasNext).toBe(false);
    await model.previousPage();
    expect(model.page).toBe(1);

    await model.toggleFacet('access', 'embargoed');
    expect(model.query).toBe('access:embargoed');
    expect(model.total).toBe(2);
    expect(model.results.every(d => d.access === 'embargoed')).toBe(true);
    await model.toggleFacet('access', 'embargoed');
    expect(model.selected).toEqual({});
    expect(model.total).toBe(5);
  });

  it('keeps the newest query when answers cross', async () => {
    const model = new SearchModel(client, 20);
    const first = model.setText('zanzibar');
    const second = model.setText('nothing-matches-this-xyzzy');
    await Promise.all([first, second]);
    expect(model.text).toBe('nothing-matches-this-xyzzy');
    expect(model.total).toBe(0);
    expect(model.results).toEqual([]);
    await model.setText('zanzibar');
    expect(model.results.map(d => d.accession)).toEqual([L.seed.hidden]);
  });

  it('loads the image table page by page, filtered and sorted in the service', async () => {
    const model = new ImageTableModel(client, L.seed.images, 1, 3);
    await model.reload();
    expect(model.total).toBe(L.seed.image_count);
    expect(model.loaded).toBe(3);
    expect(model.row(3)).toBeUndefined();
    expect(model.columns).toEqual(
      expect.arrayContaining(['condition', 'well'])
    );
    await model.ensureLoaded(L.seed.image_count - 1);
    expect(model.loaded).toBe(L.seed.image_count);
    const names = Array.from(
      { length: model.loaded },
      (_, i) => model.row(i)?.name
    );
    expect(names).toEqual([...names].sort());

    await model.setQuery({ filters: [['condition', 'treated']] });
    expect(model.total).toBe(L.seed.treated);
    await model.ensureLoaded(100);
    expect(model.loaded).toBe(L.seed.treated);

    await model.setQuery({ filters: [], sort: 'well', order: 'desc' });
    await model.ensureLoaded(100);
    const wells = Array.from(
      { length: model.loaded },
      (_, i) => model.row(i)?.key_values.well ?? ''
    );
    expect(wells).toEqual([...wells].sort().reverse());

    await model.setQuery({ sort: 'name', order: 'asc', name: 'img0' });
    expect(model.total).toBeGreaterThan(0);
    expect(model.row(0)?.name.startsWith('img0')).toBe(true);
  });

  it('keeps the typed text and shows the newer post when an edit loses a race', async () => {
    const { data: thread } = await client.createThread(
      L.seed.images,
      'Jest race',
      'first text',
      null
    );
    const original = (thread.posts ?? [])[0] as IPost;
    const saved = await savePostEdit(
      client,
      L.seed.images,
      thread.id,
      original,
      'second text',
      'fix'
    );
    expect(saved.kind).toBe('saved');
    if (saved.kind !== 'saved') {
      return;
    }
    expect(saved.post.edited).toBe(true);
    expect(saved.post.html).toContain('second text');
    // the same edit started from the original, after somebody else saved: a conflict
    const raced = await savePostEdit(
      client,
      L.seed.images,
      thread.id,
      original,
      'my own text'
    );
    expect(raced.kind).toBe('conflict');
    if (raced.kind !== 'conflict') {
      return;
    }
    expect(raced.mine).toBe('my own text');
    expect(raced.current.body).toBe('second text');
    expect(raced.current.etag).toBe(saved.post.etag);
    // saving over it from the newer state works, and the history has every version
    const over = await savePostEdit(
      client,
      L.seed.images,
      thread.id,
      raced.current,
      raced.mine
    );
    expect(over.kind).toBe('saved');
    const history = await client.postHistory(
      L.seed.images,
      thread.id,
      original.id
    );
    expect(history.map(h => h.body)).toEqual([
      'first text',
      'second text',
      'my own text'
    ]);
  });
});
