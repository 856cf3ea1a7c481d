/**
 * The request layer against a real Jupyter server and nanorepo service: answers with
 * their ETags, the service's problem+json errors (404 for an embargoed dataset exactly as
 * for a missing one, 412 with the newer state, 428), the server's own refusals and an
 * unreachable server.
 */
import { ServerConnection } from '@jupyterlab/services';

import {
  IDatasetDetail,
  IPage,
  IDatasetSummary,
  RepositoryClient
} from '../api';
import {
  RequestError,
  apiUrl,
  jsonInit,
  problemMessage,
  requestAPI,
  requestAPIWithMeta
} from '../request';
import { live } from './live';

const L = live();

/** The RequestError a call fails with (the test fails if it succeeds or fails otherwise). */
async function rejected(call: Promise<unknown>): Promise<RequestError> {
  const error = await call.then(
    () => new Error('the call succeeded'),
    (e: unknown) => e
  );
  expect(error).toBeInstanceOf(RequestError);
  return error as RequestError;
}
const client = new RepositoryClient(L.settings);

describe('requestAPI', () => {
  it('reads JSON from the service through the forwarder', async () => {
    const page = await requestAPI<IPage<IDatasetSummary>>(
      'datasets?limit=50',
      {},
      L.settings
    );
    const accessions = page.items.map(d => d.accession);
    expect(accessions).toEqual(
      expect.arrayContaining([L.seed.public, L.seed.images, L.seed.hidden])
    );
    expect(page.total).toBe(page.items.length);
    const pub = page.items.find(d => d.accession === L.seed.public);
    expect(pub?.ref).toBe(`${L.seed.public}@v1`);
    expect(pub?.thumbnail).toMatch(
      /^datasets\/S-NANO\d+\/versions\/v1\/images\/[^/]+\/thumbnail\.png$/
    );
  });

  it('returns the ETag with the body', async () => {
    const r = await requestAPIWithMeta<IDatasetDetail>(
      `datasets/${L.seed.public}`,
      {},
      L.settings
    );
    expect(r.status).toBe(200);
    expect(r.data.accession).toBe(L.seed.public);
    expect(r.etag).toMatch(/^"/);
    expect(r.data.can).toContain('edit'); // alice owns it
  });

  it('turns a problem+json answer into a RequestError with the service message', async () => {
    const missing = 'S-NANO99999';
    const error = await rejected(
      requestAPI(`datasets/${missing}`, {}, L.settings)
    );
    expect(error).toBeInstanceOf(RequestError);
    expect(error.status).toBe(404);
    expect(error.problem?.status).toBe(404);
    expect(error.message).toContain(missing);
    expect(error.message).toBe(problemMessage(error.problem!));
  });

  it('refuses an edit without If-Match (428) and with a stale one (412, newer state)', async () => {
    const acc = L.seed.public;
    const { etag } = await client.mutable(acc);
    expect(etag).not.toBeNull();
    const noMatch = await rejected(
      requestAPI(
        `datasets/${acc}/mutable`,
        jsonInit('PATCH', { changes: { keywords: 'a' }, reason: 'test' }),
        L.settings
      )
    );
    expect(noMatch).toBeInstanceOf(RequestError);
    expect(noMatch.status).toBe(428);
    expect(noMatch.message).toContain('If-Match');

    const first = await client.setMutable(
      acc,
      { keywords: 'pores, rings' },
      'jest: first',
      etag ?? ''
    );
    expect(first.data.fields.keywords).toEqual(['pores', 'rings']);
    const stale = await rejected(
      client.setMutable(acc, { keywords: 'lost' }, 'jest: stale', etag ?? '')
    );
    expect(stale).toBeInstanceOf(RequestError);
    expect(stale.status).toBe(412);
    expect(stale.etag).toBe(first.etag);
    expect(
      (stale.current as { fields: { keywords: string[] } }).fields.keywords
    ).toEqual(['pores', 'rings']);
    const history = await client.history(acc);
    const last = history.items[history.items.length - 1];
    expect(last.key).toBe('keywords');
    expect(last.reason).toBe('jest: first');
  });

  it('reports the server refusing a wrong token', async () => {
    const bad = ServerConnection.makeSettings({
      baseUrl: L.url,
      token: 'wrong',
      appendToken: false
    });
    const error = await rejected(requestAPI('_config', {}, bad));
    expect(error).toBeInstanceOf(RequestError);
    expect(error.status).toBe(403);
    expect(error.problem).toBeNull();
    expect(error.title).toBe('HTTP 403');
  });

  it('reports an unreachable server as status 0', async () => {
    const gone = ServerConnection.makeSettings({
      baseUrl: 'http://127.0.0.1:9/',
      token: 'x',
      appendToken: false
    });
    const error = await rejected(requestAPI('_config', {}, gone));
    expect(error).toBeInstanceOf(RequestError);
    expect(error.status).toBe(0);
    expect(error.title).toBe('Network error');
    expect(error.message).toContain('did not answer');
  });

  it('builds URLs below the forwarder', () => {
    expect(apiUrl('datasets/S-NANO1', L.settings)).toBe(
      `${L.url}nanorepo/api/datasets/S-NANO1`
    );
    expect(client.url('a/b.png')).toBe(`${L.url}nanorepo/api/a/b.png`);
  });
});

describe('RepositoryClient', () => {
  it('answers the server configuration from the forwarder without the token', async () => {
    const conf = await client.config();
    expect(conf.service_url_set).toBe(true);
    expect(conf.token_set).toBe(true);
    expect(JSON.stringify(conf)).not.toContain('nr_');
  });

  it('reads sealed metadata with its digest', async () => {
    const meta = await client.metadata(L.seed.images, 1);
    expect(meta.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(meta.metadata).toHaveProperty('biosample');
  });

  it('filters the image table in the service', async () => {
    const q = {
      filters: [['condition', 'treated']] as Array<[string, string]>,
      name: '',
      sort: 'name',
      order: 'asc' as const
    };
    const page = await client.images(L.seed.images, 1, q, null, 100);
    expect(page.total).toBe(L.seed.treated);
    expect(page.items.every(i => i.key_values.condition === 'treated')).toBe(
      true
    );
  });

  it('asks the server how to view in napari, and gets a clear error for a bad name', async () => {
    const answer = await client.napari(L.seed.images, 1, 'img00', false);
    expect(answer.launched).toBe(false);
    expect(answer.command).toBe(
      `nanorepo view ${L.seed.images}@v1 --image img00`
    );
    const error = await rejected(
      client.napari(L.seed.images, 1, '../etc', false)
    );
    expect(error).toBeInstanceOf(RequestError);
    expect(error.status).toBe(400);
    expect(error.message).toContain('not a valid image name');
  });
});
