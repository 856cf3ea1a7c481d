/**
 * The service's resources as the panel reads them (mirroring the service's OpenAPI
 * document, `docs/api.md`) and one client method per route the panel uses.
 */
import { ServerConnection } from '@jupyterlab/services';

import { IResponse, apiUrl, jsonInit, requestAPI, requestAPIWithMeta } from './request';

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

function enc(part: string): string {
  return encodeURIComponent(part);
}

function query(params: Array<[string, string | number | null | undefined]>): string {
  const parts = params
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${enc(k)}=${enc(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** The service's routes the panel uses, typed. */
export class RepositoryClient {
  readonly settings: ServerConnection.ISettings;

  constructor(settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {
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

  search(q: string, cursor: string | null = null, limit = 20): Promise<IPage<IDatasetSummary>> {
    return this.get(`datasets${query([['q', q], ['cursor', cursor], ['limit', limit]])}`);
  }

  facets(q: string): Promise<Facets> {
    return this.get(`facets${query([['q', q]])}`);
  }

  dataset(accession: string): Promise<IResponse<IDatasetDetail>> {
    return this.meta(`datasets/${enc(accession)}`);
  }

  /** The sealed metadata of a version (`'latest'`: of the latest, without knowing it). */
  metadata(accession: string, version: number | 'latest'): Promise<ISealedMetadata> {
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

  history(accession: string, cursor: string | null = null): Promise<IPage<IRevision>> {
    return this.get(`datasets/${enc(accession)}/history${query([['cursor', cursor]])}`);
  }

  images(
    accession: string,
    version: number,
    q: IImageQuery,
    cursor: string | null = null,
    limit = 200
  ): Promise<IPage<IImageInfo>> {
    const params: Array<[string, string | number | null]> = q.filters.map(([k, v]) => [
      'filter',
      `${k}:${v}`
    ]);
    params.push(['q', q.name], ['sort', q.sort], ['order', q.order]);
    params.push(['cursor', cursor], ['limit', limit]);
    return this.get(`datasets/${enc(accession)}/versions/v${version}/images${query(params)}`);
  }

  files(accession: string, version: number, cursor: string | null = null): Promise<IPage<IFileInfo>> {
    return this.get(
      `datasets/${enc(accession)}/versions/v${version}/files${query([['cursor', cursor]])}`
    );
  }

  threads(
    accession: string,
    options: { status?: ThreadStatus | null; image?: string | null; cursor?: string | null } = {}
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
    return this.meta(`datasets/${enc(accession)}/threads/${id}`, jsonInit('PATCH', { status }, etag));
  }

  reply(accession: string, id: number, body: string): Promise<IResponse<IPost>> {
    return this.meta(`datasets/${enc(accession)}/threads/${id}/posts`, jsonInit('POST', { body }));
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

  postHistory(accession: string, threadId: number, postId: number): Promise<IPostRevision[]> {
    return this.get(`datasets/${enc(accession)}/threads/${threadId}/posts/${postId}/history`);
  }

  napari(
    accession: string,
    version: number,
    image: string | null,
    launch: boolean
  ): Promise<INapariLaunch> {
    return this.get('_napari', jsonInit('POST', { accession, version, image, launch }));
  }
}
