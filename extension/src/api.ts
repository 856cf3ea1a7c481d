/**
 * The service's resources as the panel reads them (mirroring the service's OpenAPI
 * document, `docs/api.md`) and one client method per route the panel uses.
 */
import { ServerConnection } from '@jupyterlab/services';

import {
  IResponse,
  apiUrl,
  jsonInit,
  requestAPI,
  requestAPIWithMeta
} from './request';

/** One page of a list: pass `next` back as `cursor`. */
export interface IPage<T> {
  items: T[];
  next: string | null;
  total: number | null;
}

export type Access = 'public' | 'embargoed';

export interface IDatasetSummary {
  accession: string;
  title: string;
  latest_version: number;
  access: Access;
  embargo_until: string | null;
  owner: string;
  created: string;
  license: string | null;
  ref: string;
  /** path of a representative thumbnail (first image of the latest version), if any */
  thumbnail?: string | null;
}

export interface IVersionInfo {
  version: number;
  ref: string;
  created: string;
  created_by: string;
  note: string;
  manifest_sha256: string;
  metadata_sha256: string;
  size_bytes: number;
}

export interface IDatasetDetail extends IDatasetSummary {
  versions: IVersionInfo[];
  mutable: { [key: string]: unknown };
  mutable_rev: number;
  can: string[];
}

export interface IFacetValue {
  value: string;
  display: string;
  count: number;
}

export type Facets = { [field: string]: IFacetValue[] };

export interface ISealedMetadata {
  accession: string;
  version: number;
  sha256: string;
  metadata: { [section: string]: unknown };
}

export interface IMutableMetadata {
  accession: string;
  rev: number;
  fields: { [key: string]: unknown };
  editable: { [key: string]: string };
}

export interface IRevision {
  rev: number;
  key: string;
  old: unknown;
  new: unknown;
  who: string;
  when: string;
  reason: string;
}

export interface IImageInfo {
  name: string;
  dims: string[];
  shape: number[];
  dtype: string;
  pixel_sizes: { [axis: string]: number };
  channels: Array<{ [key: string]: unknown }>;
  levels: number[][];
  key_values: { [key: string]: string };
  technique: string;
  size_bytes: number;
  manifest_sha256: string;
  zarr: string;
  thumbnail: string;
}

export interface IFileInfo {
  name: string;
  role: string;
  media_type: string;
  size_bytes: number;
  sha256: string;
  download: string;
}

export type ThreadStatus = 'open' | 'resolved';

export interface IPost {
  id: number;
  parent_id: number | null;
  author: string;
  motivation: string;
  body: string;
  /** the service's sanitised rendering: the only form ever put in the page */
  html: string;
  created: string;
  updated: string;
  rev: number;
  edited: boolean;
  state: string;
  /** send as `If-Match` to edit this post */
  etag: string;
}

export interface IThread {
  id: number;
  dataset: string;
  version: number;
  image: string | null;
  anchor: { [key: string]: unknown };
  title: string;
  motivation: string;
  tags: string[];
  status: ThreadStatus;
  created_by: string;
  created: string;
  updated: string;
  rev: number;
  post_count: number;
  posts: IPost[] | null;
}

export interface IThreadPage {
  items: IThread[];
  next: string | null;
  total: number;
  counts: { [status: string]: number };
}

export interface IPostRevision {
  rev: number;
  body: string;
  who: string;
  when: string;
  reason: string;
}

/** What the image table asks for: key/value filters, name substring, sort. */
export interface IImageQuery {
  filters: Array<[string, string]>;
  name: string;
  sort: string;
  order: 'asc' | 'desc';
}

/** What the user's Jupyter server says about itself (answered by the forwarder). */
export interface IServerConfig {
  service_url: string | null;
  service_url_set: boolean;
  token_set: boolean;
  user: string | null;
  storage: string;
  storage_mounted: boolean;
  version: string;
}

/** The answer of the napari launcher. */
export interface INapariLaunch {
  command: string;
  argv: string[];
  launched: boolean;
  reason: string;
}

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'interrupted';

/** Something a run opened through `nanorepo.open`: a dataset version, an image or a file. */
export interface IRunInput {
  kind: 'dataset' | 'image' | 'file';
  accession: string;
  version: number;
  /** version manifest (dataset), image manifest (image) or content (file) digest */
  sha256: string;
  /** image or file name; empty for a dataset */
  name: string;
  /** citable: `S-NANO1@v2`, `S-NANO1@v2/cell1` */
  ref: string;
}

/** A file a run wrote: the executed notebook or a file of its output directory. */
export interface IRunOutput {
  name: string;
  sha256: string;
  size: number;
  media_type: string;
  role: 'output' | 'executed-notebook';
}

/** Why a run failed, as the kernel reported it. */
export interface IRunError {
  ename: string;
  evalue: string;
  traceback: string[];
  /** index of the failing cell in the executed notebook */
  cell: number | null;
}

/** Where a run executed (interpreter, kernel, packages, container image). */
export interface IRunEnvironment {
  sha256: string;
  python: string;
  implementation: string;
  platform: string;
  kernel: { [key: string]: string };
  packages: { [name: string]: string };
  packages_sha256: string;
  image: string | null;
  host: string;
}

/** A run's provenance record (`GET /runs/{id}`, `docs/provenance.md`). */
export interface IRun {
  id: string;
  agent: string;
  status: RunStatus;
  started: string;
  ended: string | null;
  notebook: { name: string; sha256: string; size: number };
  parameters: { [name: string]: unknown };
  inputs: IRunInput[];
  outputs: IRunOutput[];
  values: { [name: string]: unknown };
  environment: IRunEnvironment | null;
  error: IRunError | null;
  batch: string | null;
  item: string | null;
  rerun_of: string | null;
  /** accessions of datasets deposited from this run's outputs */
  derived: string[];
}

export type LineageKind = 'dataset' | 'run' | 'batch' | 'output';
export type LineageRelation =
  'used' | 'wasGeneratedBy' | 'wasDerivedFrom' | 'wasStartedBy';

/**
 * A node of a lineage graph: `S-NANO1@v1` (dataset version), `run:<id>`, `batch:<id>`,
 * `output:<run id>/<name>`.
 */
export interface ILineageNode {
  id: string;
  kind: LineageKind;
  label: string;
  attrs: { [key: string]: unknown };
}

/** `source` → `target`, pointing from what was made to what it was made from (PROV). */
export interface ILineageEdge {
  source: string;
  target: string;
  relation: LineageRelation;
}

/** Upstream and downstream of `focus` as the caller may see them, with the run records. */
export interface ILineage {
  focus: string;
  nodes: ILineageNode[];
  edges: ILineageEdge[];
  runs: IRun[];
  batches: Array<{ [key: string]: unknown }>;
}

/** What the run list asks for: the dataset (or one version of it) read, a status. */
export interface IRunQuery {
  /** `ACCESSION` (any version) or `ACCESSION@vN` */
  dataset: string;
  status: RunStatus | null;
}

/** A notebook document as JSON (nbformat 4). */
export interface INotebookContent {
  cells: Array<{ [key: string]: unknown }>;
  metadata: { [key: string]: unknown };
  nbformat: number;
  nbformat_minor: number;
}

function enc(part: string): string {
  return encodeURIComponent(part);
}

function query(
  params: Array<[string, string | number | null | undefined]>
): string {
  const parts = params
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${enc(k)}=${enc(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** Path of a run's RO-Crate (a zip: record, notebook and outputs). */
export function runCratePath(id: string): string {
  return `runs/${enc(id)}/crate`;
}

/** Path of the notebook a run executed (as stored). */
export function runNotebookPath(id: string): string {
  return `runs/${enc(id)}/notebook`;
}

/** Path of a run output; `name` may hold `/` (a file in a subdirectory of the output dir). */
export function runOutputPath(id: string, name: string): string {
  return `runs/${enc(id)}/outputs/${name.split('/').map(enc).join('/')}`;
}

/** Path of a dataset's lineage in another format (`prov-json`, `provn`, `dot`, `svg`). */
export function lineageExportPath(
  accession: string,
  format: 'prov-json' | 'provn' | 'dot' | 'svg'
): string {
  return `datasets/${enc(accession)}/lineage${query([['format', format]])}`;
}

/** The service's routes the panel uses, typed. */
export class RepositoryClient {
  readonly settings: ServerConnection.ISettings;

  constructor(
    settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {
    this.settings = settings;
  }

  private get<T>(path: string, init: RequestInit = {}): Promise<T> {
    return requestAPI<T>(path, init, this.settings);
  }

  private meta<T>(path: string, init: RequestInit = {}): Promise<IResponse<T>> {
    return requestAPIWithMeta<T>(path, init, this.settings);
  }

  /** URL of an API path for the browser itself (thumbnails, downloads). */
  url(path: string): string {
    return apiUrl(path, this.settings);
  }

  config(): Promise<IServerConfig> {
    return this.get<IServerConfig>('_config');
  }

  /** The signed-in user's name (asked once; `null` if the server does not say). */
  whoami(): Promise<string | null> {
    if (this._whoami === null) {
      this._whoami = this.config().then(
        c => c.user,
        () => null
      );
    }
    return this._whoami;
  }

  private _whoami: Promise<string | null> | null = null;

  search(
    q: string,
    cursor: string | null = null,
    limit = 20
  ): Promise<IPage<IDatasetSummary>> {
    return this.get(
      `datasets${query([
        ['q', q],
        ['cursor', cursor],
        ['limit', limit]
      ])}`
    );
  }

  facets(q: string): Promise<Facets> {
    return this.get(`facets${query([['q', q]])}`);
  }

  dataset(accession: string): Promise<IResponse<IDatasetDetail>> {
    return this.meta(`datasets/${enc(accession)}`);
  }

  /** The sealed metadata of a version (`'latest'`: of the latest, without knowing it). */
  metadata(
    accession: string,
    version: number | 'latest'
  ): Promise<ISealedMetadata> {
    const v = version === 'latest' ? version : `v${version}`;
    return this.get(`datasets/${enc(accession)}/versions/${v}/metadata`);
  }

  mutable(accession: string): Promise<IResponse<IMutableMetadata>> {
    return this.meta(`datasets/${enc(accession)}/mutable`);
  }

  setMutable(
    accession: string,
    changes: { [key: string]: unknown },
    reason: string,
    etag: string
  ): Promise<IResponse<IMutableMetadata>> {
    return this.meta(
      `datasets/${enc(accession)}/mutable`,
      jsonInit('PATCH', { changes, reason }, etag)
    );
  }

  history(
    accession: string,
    cursor: string | null = null
  ): Promise<IPage<IRevision>> {
    return this.get(
      `datasets/${enc(accession)}/history${query([['cursor', cursor]])}`
    );
  }

  images(
    accession: string,
    version: number,
    q: IImageQuery,
    cursor: string | null = null,
    limit = 200
  ): Promise<IPage<IImageInfo>> {
    const params: Array<[string, string | number | null]> = q.filters.map(
      ([k, v]) => ['filter', `${k}:${v}`]
    );
    params.push(['q', q.name], ['sort', q.sort], ['order', q.order]);
    params.push(['cursor', cursor], ['limit', limit]);
    return this.get(
      `datasets/${enc(accession)}/versions/v${version}/images${query(params)}`
    );
  }

  files(
    accession: string,
    version: number,
    cursor: string | null = null
  ): Promise<IPage<IFileInfo>> {
    return this.get(
      `datasets/${enc(accession)}/versions/v${version}/files${query([['cursor', cursor]])}`
    );
  }

  threads(
    accession: string,
    options: {
      status?: ThreadStatus | null;
      image?: string | null;
      cursor?: string | null;
    } = {}
  ): Promise<IThreadPage> {
    const q = query([
      ['status', options.status],
      ['image', options.image],
      ['cursor', options.cursor]
    ]);
    return this.get(`datasets/${enc(accession)}/threads${q}`);
  }

  thread(accession: string, id: number): Promise<IResponse<IThread>> {
    return this.meta(`datasets/${enc(accession)}/threads/${id}`);
  }

  createThread(
    accession: string,
    title: string,
    body: string,
    image: string | null
  ): Promise<IResponse<IThread>> {
    const anchor = image ? { kind: 'image', image } : { kind: 'dataset' };
    return this.meta(
      `datasets/${enc(accession)}/threads`,
      jsonInit('POST', { title, body, anchor })
    );
  }

  setThreadStatus(
    accession: string,
    id: number,
    status: ThreadStatus,
    etag: string
  ): Promise<IResponse<IThread>> {
    return this.meta(
      `datasets/${enc(accession)}/threads/${id}`,
      jsonInit('PATCH', { status }, etag)
    );
  }

  reply(
    accession: string,
    id: number,
    body: string
  ): Promise<IResponse<IPost>> {
    return this.meta(
      `datasets/${enc(accession)}/threads/${id}/posts`,
      jsonInit('POST', { body })
    );
  }

  editPost(
    accession: string,
    threadId: number,
    postId: number,
    body: string,
    etag: string,
    reason = ''
  ): Promise<IResponse<IPost>> {
    return this.meta(
      `datasets/${enc(accession)}/threads/${threadId}/posts/${postId}`,
      jsonInit('PATCH', { body, reason }, etag)
    );
  }

  postHistory(
    accession: string,
    threadId: number,
    postId: number
  ): Promise<IPostRevision[]> {
    return this.get(
      `datasets/${enc(accession)}/threads/${threadId}/posts/${postId}/history`
    );
  }

  /** Runs the user may see that read `q.dataset`, newest first (a run reading any
   * dataset the user may not see is left out by the service). */
  runs(
    q: IRunQuery,
    cursor: string | null = null,
    limit = 20
  ): Promise<IPage<IRun>> {
    const params = query([
      ['dataset', q.dataset],
      ['status', q.status],
      ['cursor', cursor],
      ['limit', limit]
    ]);
    return this.get(`runs${params}`);
  }

  run(id: string): Promise<IRun> {
    return this.get(`runs/${enc(id)}`);
  }

  /** Upstream and downstream of a dataset (`ACCESSION` or `ACCESSION@vN`). */
  datasetLineage(accession: string): Promise<ILineage> {
    return this.get(`datasets/${enc(accession)}/lineage`);
  }

  /** Upstream and downstream of a run. */
  runLineage(id: string): Promise<ILineage> {
    return this.get(`runs/${enc(id)}/lineage`);
  }

  /** The notebook a run executed, exactly as stored (its plan). */
  runNotebook(id: string): Promise<INotebookContent> {
    return this.get(`runs/${enc(id)}/notebook`);
  }

  /** An output of a run, read as JSON (the executed notebook). */
  runOutputJSON<T>(id: string, name: string): Promise<T> {
    return this.get(runOutputPath(id, name));
  }

  napari(
    accession: string,
    version: number,
    image: string | null,
    launch: boolean
  ): Promise<INapariLaunch> {
    return this.get(
      '_napari',
      jsonInit('POST', { accession, version, image, launch })
    );
  }
}
