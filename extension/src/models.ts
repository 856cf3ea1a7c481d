/**
 * The panel's state, kept apart from the widgets so it can be tested without a browser:
 * the search (query text, facet choices, pages), the image table (a sparse window over up
 * to 100,000 rows loaded page by page), post edits with their conflicts, and the code cell
 * the "Open in notebook" action inserts.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  Facets,
  IDatasetSummary,
  IImageInfo,
  IImageQuery,
  IPost,
  RepositoryClient
} from './api';
import { RequestError } from './request';

/** The facet fields the panel shows, in order, with their labels. */
export const FACET_FIELDS: ReadonlyArray<[string, string]> = [
  ['technique', 'Technique'],
  ['organism', 'Organism'],
  ['fluorophore', 'Fluorophore'],
  ['license', 'Licence'],
  ['access', 'Access']
];

/** `value`, quoted for the service's `field:value` syntax when it has to be. */
export function quoteValue(value: string): string {
  return /[\s"':]/.test(value) ? `"${value.replace(/"/g, '')}"` : value;
}

/**
 * The service's query string from the search box and the chosen facet values
 * (`nuclear pore technique:sted organism:"homo sapiens"`).
 */
export function buildQuery(
  text: string,
  selected: { [field: string]: string }
): string {
  const parts = [text.trim()];
  for (const [field] of FACET_FIELDS) {
    const value = selected[field];
    if (value) {
      parts.push(`${field}:${quoteValue(value)}`);
    }
  }
  for (const field of Object.keys(selected).sort()) {
    if (!FACET_FIELDS.some(([f]) => f === field) && selected[field]) {
      parts.push(`${field}:${quoteValue(selected[field])}`);
    }
  }
  return parts.filter(p => p.length > 0).join(' ');
}

/** The citable reference of a version. */
export function reference(accession: string, version: number): string {
  return `${accession}@v${version}`;
}

/** A Python string literal (for the generated code cell). */
export function pyString(value: string): string {
  return JSON.stringify(value);
}

/**
 * The code cell "Open in notebook" inserts: opens the version (and the image) with
 * `nanorepo.open`, lazily, and prints what it opened. It is inserted, never run.
 */
export function notebookCode(
  accession: string,
  version: number,
  image: string | null
): string {
  const ref = pyString(reference(accession, version));
  const lines = ['import nanorepo', '', `ds = nanorepo.open(${ref})`];
  if (image) {
    lines.push(
      `img = ds[${pyString(image)}]`,
      'data = img.to_xarray()  # lazy: reads only the chunks you touch, coordinates in nm',
      'print(img.name, data.dims, data.shape)',
      'data'
    );
  } else {
    lines.push('print(ds.ref, [im.name for im in ds.images])', 'ds');
  }
  return lines.join('\n');
}

/** `1.5 MB`: a byte count for people. */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0
    ? `${n} B`
    : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A metadata value as one line of text (lists joined, objects as `key: value` pairs). */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) {
    return '—';
  }
  if (Array.isArray(value)) {
    return value.map(formatValue).join(', ');
  }
  if (typeof value === 'object') {
    return Object.entries(value as { [key: string]: unknown })
      .map(([k, v]) => `${k}: ${formatValue(v)}`)
      .join('; ');
  }
  return String(value);
}

/** How to cite a version: authors (from the sealed metadata), title, reference, year. */
export function citation(
  title: string,
  accession: string,
  version: number,
  created: string,
  metadata: { [section: string]: unknown } | null
): string {
  const study = (metadata?.study ?? {}) as {
    authors?: Array<{ name?: string }>;
  };
  const authors = (study.authors ?? [])
    .map(a => a.name)
    .filter(Boolean)
    .join(', ');
  const year = created.slice(0, 4);
  const head = authors ? `${authors} (${year}). ` : `(${year}). `;
  return `${head}${title}. nanorepo ${reference(accession, version)}.`;
}

/** An error's message for a person (the service's detail and hint when it sent them). */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/**
 * The search of the Repository panel: text, facet choices, one page of results at a time
 * and the facet counts for the same query. Answers arriving after a newer query started
 * are dropped, so typing fast never shows an older query's results.
 */
export class SearchModel {
  constructor(client: RepositoryClient, pageSize = 20) {
    this._client = client;
    this.pageSize = pageSize;
  }

  readonly pageSize: number;
  text = '';
  selected: { [field: string]: string } = {};
  results: IDatasetSummary[] = [];
  total = 0;
  facets: Facets = {};
  loading = false;
  error: unknown = null;
  /** index of the shown page (0-based) */
  page = 0;

  /** Emitted whenever anything above changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The query the service receives. */
  get query(): string {
    return buildQuery(this.text, this.selected);
  }

  get hasNext(): boolean {
    return (
      this._cursors[this.page + 1] !== undefined &&
      this._cursors[this.page + 1] !== null
    );
  }

  get hasPrevious(): boolean {
    return this.page > 0;
  }

  /** Set the search text and search again from the first page. */
  setText(text: string): Promise<void> {
    this.text = text;
    return this.search();
  }

  /** Choose a facet value, or clear it when it is already chosen. */
  toggleFacet(field: string, value: string): Promise<void> {
    if (this.selected[field] === value) {
      const { [field]: _dropped, ...rest } = this.selected;
      void _dropped;
      this.selected = rest;
    } else {
      this.selected = { ...this.selected, [field]: value };
    }
    return this.search();
  }

  /**
   * Search from the first page. The results are shown as soon as they arrive; the facet
   * counts for the same query are asked for then, so they never delay the results (on a
   * busy server two requests at once each take longer than one).
   */
  async search(): Promise<void> {
    this._cursors = [null];
    this.page = 0;
    const seq = ++this._seq;
    this.loading = true;
    this.error = null;
    this._changed.emit();
    const q = this.query;
    try {
      const page = await this._client.search(q, null, this.pageSize);
      if (seq !== this._seq) {
        return;
      }
      this.results = page.items;
      this.total = page.total ?? page.items.length;
      this._cursors[1] = page.next;
    } catch (error) {
      if (seq !== this._seq) {
        return;
      }
      this.results = [];
      this.total = 0;
      this.error = error;
      throw error;
    } finally {
      if (seq === this._seq) {
        this.loading = false;
        this._changed.emit();
      }
    }
    const facets = await this._client.facets(q);
    if (seq === this._seq) {
      this.facets = facets;
      this._changed.emit();
    }
  }

  /** Show the next page (no-op on the last). */
  nextPage(): Promise<void> {
    return this.hasNext ? this._show(this.page + 1) : Promise.resolve();
  }

  /** Show the previous page (no-op on the first). */
  previousPage(): Promise<void> {
    return this.hasPrevious ? this._show(this.page - 1) : Promise.resolve();
  }

  private async _show(index: number): Promise<void> {
    const seq = ++this._seq;
    this.loading = true;
    this._changed.emit();
    try {
      const page = await this._client.search(
        this.query,
        this._cursors[index],
        this.pageSize
      );
      if (seq !== this._seq) {
        return;
      }
      this.page = index;
      this.results = page.items;
      this._cursors[index + 1] = page.next;
    } finally {
      if (seq === this._seq) {
        this.loading = false;
        this._changed.emit();
      }
    }
  }

  private _client: RepositoryClient;
  private _cursors: Array<string | null> = [null];
  private _seq = 0;
  private _changed = new Signal<this, void>(this);
}

/**
 * The image table of a dataset version: filters and sort run in the service; rows are
 * fetched page by page (keyset cursors) as the view scrolls towards them, and kept in a
 * sparse array, so 100,000 rows cost only the pages actually looked at.
 */
export class ImageTableModel {
  constructor(
    client: RepositoryClient,
    accession: string,
    version: number,
    pageSize = 200
  ) {
    this._client = client;
    this.accession = accession;
    this.version = version;
    this.pageSize = pageSize;
  }

  readonly accession: string;
  readonly version: number;
  readonly pageSize: number;
  query: IImageQuery = { filters: [], name: '', sort: 'name', order: 'asc' };
  /** number of rows matching the query (known after the first page) */
  total = 0;
  loading = false;
  error: unknown = null;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Rows loaded so far, in order. */
  get loaded(): number {
    return this._rows.length;
  }

  /** The row at `index`, or `undefined` while its page is not loaded yet. */
  row(index: number): IImageInfo | undefined {
    return this._rows[index];
  }

  /** Keys of the file-level key/value metadata seen in the loaded rows, sorted. */
  get columns(): string[] {
    return [...this._keys].sort();
  }

  /** Change filters, name substring or sort and load the first page again. */
  setQuery(change: Partial<IImageQuery>): Promise<void> {
    this.query = { ...this.query, ...change };
    return this.reload();
  }

  /** Load the first page of the current query (dropping what was loaded). */
  async reload(): Promise<void> {
    this._generation += 1;
    this._rows = [];
    this._next = null;
    this._done = false;
    this.total = 0;
    this.error = null;
    this._pending = null;
    await this.ensureLoaded(0);
  }

  /**
   * Load pages until row `index` is loaded (or there are no more rows). Pages come one
   * after the other, as keyset cursors require; concurrent calls share the work.
   */
  async ensureLoaded(index: number): Promise<void> {
    while (!this._done && this._rows.length <= index) {
      if (this._pending === null) {
        this._pending = this._loadPage(this._generation);
      }
      const pending = this._pending;
      try {
        await pending;
      } finally {
        if (this._pending === pending) {
          this._pending = null;
        }
      }
      if (this.error !== null) {
        return;
      }
    }
  }

  private async _loadPage(generation: number): Promise<void> {
    this.loading = true;
    this._changed.emit();
    try {
      const page = await this._client.images(
        this.accession,
        this.version,
        this.query,
        this._next,
        this.pageSize
      );
      if (generation !== this._generation) {
        return;
      }
      for (const item of page.items) {
        this._rows.push(item);
        for (const key of Object.keys(item.key_values)) {
          this._keys.add(key);
        }
      }
      if (page.total !== null) {
        this.total = page.total;
      }
      this._next = page.next;
      this._done = page.next === null;
    } catch (error) {
      if (generation === this._generation) {
        this.error = error;
        this._done = true;
      }
      throw error;
    } finally {
      if (generation === this._generation) {
        this.loading = false;
        this._changed.emit();
      }
    }
  }

  private _client: RepositoryClient;
  private _rows: IImageInfo[] = [];
  private _keys = new Set<string>();
  private _next: string | null = null;
  private _done = false;
  private _pending: Promise<void> | null = null;
  private _generation = 0;
  private _changed = new Signal<this, void>(this);
}

/** The outcome of saving an edited post. */
export type EditOutcome =
  | { kind: 'saved'; post: IPost }
  | { kind: 'conflict'; current: IPost; mine: string; message: string };

/**
 * Save an edit of `post` with `If-Match`; when somebody else edited it first (412), the
 * newer post the service sent back and the text the user typed, so nothing is lost.
 */
export async function savePostEdit(
  client: RepositoryClient,
  accession: string,
  threadId: number,
  post: IPost,
  body: string,
  reason = ''
): Promise<EditOutcome> {
  try {
    const { data } = await client.editPost(
      accession,
      threadId,
      post.id,
      body,
      post.etag,
      reason
    );
    return { kind: 'saved', post: data };
  } catch (error) {
    if (
      error instanceof RequestError &&
      error.status === 412 &&
      error.current
    ) {
      return {
        kind: 'conflict',
        current: error.current as IPost,
        mine: body,
        message: error.message
      };
    }
    throw error;
  }
}
