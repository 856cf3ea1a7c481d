/**
 * The Provenance tab's model and helpers: the lineage tree (upstream, downstream, shared
 * ancestry shown once), commands, file names, notebooks saved untrusted; and, against the
 * real service through a real Jupyter server over the seeded runs (a real
 * `nanorepo.run` of intensity_statistics.ipynb, a smoothing run with a derived dataset, a
 * failed run, a comparison with an embargoed dataset): the runs that read a dataset with
 * their inputs and outputs, filters and pages, the run a derived dataset came from, the
 * notebooks, outputs and RO-Crate behind the tab's links.
 */
import { ServerConnection } from '@jupyterlab/services';

import {
  ILineage,
  INotebookContent,
  IRun,
  RepositoryClient,
  lineageExportPath,
  runCratePath,
  runNotebookPath,
  runOutputPath
} from '../api';
import { RequestError } from '../request';
import {
  ProvenanceModel,
  datasetOf,
  executedNotebook,
  formatDuration,
  formatParameter,
  inputDatasets,
  lineageTree,
  localNotebookPath,
  rerunCommand,
  runCommand,
  runIdOf,
  untrusted
} from '../runs';
import { live } from './live';

const RUN = 'a'.repeat(32);

function run(change: Partial<IRun> = {}): IRun {
  return {
    id: RUN,
    agent: 'alice',
    status: 'succeeded',
    started: '2026-05-01T10:00:00+00:00',
    ended: '2026-05-01T10:03:05+00:00',
    notebook: { name: 'npc rings.ipynb', sha256: 'b'.repeat(64), size: 100 },
    parameters: { accession: 'S-NANO1@v2' },
    inputs: [
      {
        kind: 'dataset',
        accession: 'S-NANO1',
        version: 2,
        sha256: 'c'.repeat(64),
        name: '',
        ref: 'S-NANO1@v2'
      },
      {
        kind: 'image',
        accession: 'S-NANO1',
        version: 2,
        sha256: 'd'.repeat(64),
        name: 'cell1',
        ref: 'S-NANO1@v2/cell1'
      },
      {
        kind: 'dataset',
        accession: 'S-NANO7',
        version: 1,
        sha256: 'e'.repeat(64),
        name: '',
        ref: 'S-NANO7@v1'
      }
    ],
    outputs: [
      {
        name: 'npc rings.ipynb',
        sha256: 'f'.repeat(64),
        size: 10,
        media_type: 'application/x-ipynb+json',
        role: 'executed-notebook'
      }
    ],
    values: {},
    environment: null,
    error: null,
    batch: null,
    item: null,
    rerun_of: null,
    derived: [],
    ...change
  };
}

describe('provenance helpers', () => {
  it('writes the commands a user copies', () => {
    expect(rerunCommand(RUN)).toBe(`nanorepo rerun ${RUN}`);
    expect(runCommand('S-NANO4', 2)).toBe(
      'nanorepo run NOTEBOOK.ipynb -p accession S-NANO4@v2'
    );
    expect(runCommand('S-NANO4', null)).toBe(
      'nanorepo run NOTEBOOK.ipynb -p accession S-NANO4'
    );
  });

  it('formats durations and parameters for people', () => {
    expect(
      formatDuration('2026-05-01T10:00:00Z', '2026-05-01T10:00:00.850Z')
    ).toBe('850 ms');
    expect(formatDuration('2026-05-01T10:00:00Z', '2026-05-01T10:00:42Z')).toBe(
      '42 s'
    );
    expect(formatDuration('2026-05-01T10:00:00Z', '2026-05-01T10:03:05Z')).toBe(
      '3 min 05 s'
    );
    expect(formatDuration('2026-05-01T10:00:00Z', '2026-05-01T12:04:00Z')).toBe(
      '2 h 04 min'
    );
    expect(formatDuration('2026-05-01T10:00:00Z', null)).toBeNull();
    expect(formatParameter('S-NANO1')).toBe('S-NANO1');
    expect(formatParameter(['img00', 'img01'])).toBe('["img00","img01"]');
    expect(formatParameter(null)).toBe('null');
  });

  it('lists the dataset versions a run read once each, and finds its executed notebook', () => {
    expect(inputDatasets(run()).map(d => d.ref)).toEqual([
      'S-NANO1@v2',
      'S-NANO7@v1'
    ]);
    expect(executedNotebook(run())?.role).toBe('executed-notebook');
    expect(executedNotebook(run({ outputs: [] }))).toBeNull();
  });

  it('names saved notebooks by run, never reusing a name', () => {
    expect(localNotebookPath(run(), false)).toBe(
      'nanorepo-runs/aaaaaaaaaaaa-npc_rings.ipynb'
    );
    expect(localNotebookPath(run(), true)).toBe(
      'nanorepo-runs/aaaaaaaaaaaa-npc_rings-executed.ipynb'
    );
    expect(localNotebookPath(run(), true, 3)).toBe(
      'nanorepo-runs/aaaaaaaaaaaa-npc_rings-executed-3.ipynb'
    );
  });

  it('saves notebooks without trust marks, so their outputs cannot run script', () => {
    const nb: INotebookContent = {
      cells: [
        {
          cell_type: 'code',
          metadata: { trusted: true, tags: ['x'] },
          source: '',
          outputs: []
        },
        { cell_type: 'markdown', metadata: {}, source: 'hi' }
      ],
      metadata: { signature: 'sha256:abc', kernelspec: { name: 'python3' } },
      nbformat: 4,
      nbformat_minor: 5
    };
    const clean = untrusted(nb);
    expect(clean.cells[0].metadata).toEqual({ tags: ['x'] });
    expect(clean.cells[1]).toBe(nb.cells[1]);
    expect(clean.metadata).toEqual({ kernelspec: { name: 'python3' } });
    expect(nb.cells[0].metadata).toEqual({ trusted: true, tags: ['x'] }); // not changed in place
    expect(() => untrusted({} as INotebookContent)).toThrow('not a notebook');
  });

  it('encodes output names segment by segment in URLs', () => {
    expect(runOutputPath(RUN, 'smoothed/a b.tif')).toBe(
      `runs/${RUN}/outputs/smoothed/a%20b.tif`
    );
    expect(runCratePath(RUN)).toBe(`runs/${RUN}/crate`);
    expect(lineageExportPath('S-NANO1', 'prov-json')).toBe(
      'datasets/S-NANO1/lineage?format=prov-json'
    );
  });

  it('grows the lineage tree both ways and shows shared ancestry once', () => {
    // S-NANO1@v1 <-used- run A -generated-> out -derived-> S-NANO2@v1; run B used both
    const lineage: ILineage = {
      focus: 'S-NANO1@v1',
      nodes: [
        { id: 'S-NANO1@v1', kind: 'dataset', label: 'S-NANO1@v1', attrs: {} },
        {
          id: 'run:A',
          kind: 'run',
          label: 'A',
          attrs: { status: 'succeeded' }
        },
        { id: 'output:A/x.tif', kind: 'output', label: 'x.tif', attrs: {} },
        { id: 'S-NANO2@v1', kind: 'dataset', label: 'S-NANO2@v1', attrs: {} },
        { id: 'run:B', kind: 'run', label: 'B', attrs: { status: 'failed' } }
      ],
      edges: [
        { source: 'run:A', target: 'S-NANO1@v1', relation: 'used' },
        {
          source: 'output:A/x.tif',
          target: 'run:A',
          relation: 'wasGeneratedBy'
        },
        {
          source: 'S-NANO2@v1',
          target: 'output:A/x.tif',
          relation: 'wasDerivedFrom'
        },
        { source: 'run:B', target: 'S-NANO1@v1', relation: 'used' },
        { source: 'run:B', target: 'S-NANO2@v1', relation: 'used' },
        { source: 'run:B', target: 'S-NANO9@v1', relation: 'used' } // dangling: ignored
      ],
      runs: [],
      batches: []
    };
    const down = lineageTree(lineage, 'S-NANO1');
    expect(down.runs).toBe(2);
    expect(down.roots.map(r => r.node.id)).toEqual(['S-NANO1@v1']);
    const root = down.roots[0];
    expect(root.upstream).toEqual([]);
    expect(
      root.downstream.map(i => [i.relation, i.node.id, i.repeated])
    ).toEqual([
      ['used by', 'run:A', false],
      ['used by', 'run:B', false]
    ]);
    const a = root.downstream[0];
    expect(a.children[0].relation).toBe('generated');
    expect(a.children[0].children[0].relation).toBe('source of');
    const derived = a.children[0].children[0];
    expect(derived.node.id).toBe('S-NANO2@v1');
    // run B also read S-NANO2: reached again from there, shown once
    expect(derived.children.map(i => [i.node.id, i.repeated])).toEqual([
      ['run:B', true]
    ]);

    const up = lineageTree(lineage, 'S-NANO2').roots[0];
    expect(up.upstream.map(i => i.relation)).toEqual(['derived from']);
    expect(up.upstream[0].children[0].children.map(i => i.node.id)).toEqual([
      'S-NANO1@v1'
    ]);
    expect(runIdOf(lineage.nodes[1])).toBe('A');
    expect(runIdOf(lineage.nodes[0])).toBeNull();
    expect(datasetOf(lineage.nodes[3])).toEqual({
      accession: 'S-NANO2',
      version: 1
    });
  });
});

describe('provenance against the service', () => {
  const L = live();
  const client = new RepositoryClient(L.settings);
  const P = L.seed.provenance;

  async function fetchBytes(
    path: string
  ): Promise<{ status: number; bytes: Uint8Array; type: string | null }> {
    const response = await ServerConnection.makeRequest(
      client.url(path),
      {},
      L.settings
    );
    return {
      status: response.status,
      bytes: new Uint8Array(await response.arrayBuffer()),
      type: response.headers.get('Content-Type')
    };
  }

  it('lists the runs that read a dataset, newest first, with inputs and outputs', async () => {
    const model = new ProvenanceModel(client, L.seed.images);
    await model.load();
    // alice owns the embargoed dataset the comparison read, so she sees every run
    expect(model.runs.map(r => r.id)).toEqual([
      P.analysis,
      P.comparison,
      P.failed,
      P.smoothing
    ]);
    expect(model.hasMore).toBe(false);
    expect(model.producers).toEqual([]);
    const analysis = model.runs[0];
    expect(analysis.status).toBe('succeeded');
    expect(analysis.agent).toBe('alice');
    expect(analysis.notebook.name).toBe('intensity_statistics.ipynb');
    expect(analysis.parameters.accession).toBe(`${L.seed.images}@v1`);
    // what the kernel actually opened, recorded by nanorepo.open's journal
    expect(inputDatasets(analysis).map(d => d.ref)).toEqual([
      `${L.seed.images}@v1`
    ]);
    expect(
      analysis.inputs
        .filter(i => i.kind === 'image')
        .map(i => i.name)
        .sort()
    ).toEqual(['img00', 'img01']);
    const names = analysis.outputs.map(o => o.name);
    expect(names).toEqual(
      expect.arrayContaining(['statistics.csv', 'intensity_statistics.ipynb'])
    );
    expect(executedNotebook(analysis)?.name).toBe('intensity_statistics.ipynb');
    expect(
      analysis.outputs.every(o => /^[0-9a-f]{64}$/.test(o.sha256) && o.size > 0)
    ).toBe(true);
    expect(analysis.environment?.python).toMatch(/^3\./);

    const failed = model.runs[2];
    expect(failed.status).toBe('failed');
    expect(failed.error?.ename).toBe('InvalidInput');
    expect(failed.error?.evalue).toContain('level 7 does not exist');
    expect(failed.error?.cell).toBe(2);

    const comparison = model.runs[1];
    expect(inputDatasets(comparison).map(d => d.ref)).toEqual([
      `${L.seed.images}@v1`,
      `${L.seed.hidden}@v1`
    ]);
  });

  it('filters runs by status and version in the service, a page at a time', async () => {
    const model = new ProvenanceModel(client, L.seed.images, 2);
    await model.reloadRuns();
    expect(model.runs).toHaveLength(2);
    expect(model.hasMore).toBe(true);
    await model.more();
    expect(model.runs.map(r => r.id)).toEqual([
      P.analysis,
      P.comparison,
      P.failed,
      P.smoothing
    ]);
    expect(model.hasMore).toBe(false);
    await model.setFilter({ status: 'failed' });
    expect(model.runs.map(r => r.id)).toEqual([P.failed]);
    await model.setFilter({ status: null, version: 1 });
    expect(model.runs).toHaveLength(2);
    await model.setFilter({ version: 2 }); // no such version was read: nothing
    expect(model.runs).toEqual([]);
    expect(model.loading).toBe(false);
  });

  it('drops an answer that arrives after a newer filter was chosen', async () => {
    const model = new ProvenanceModel(client, L.seed.images);
    const first = model.setFilter({ status: 'succeeded' });
    const second = model.setFilter({ status: 'failed' });
    await Promise.all([first, second]);
    expect(model.runs.map(r => r.id)).toEqual([P.failed]);
  });

  it('shows the lineage of the dataset and the run a derived dataset came from', async () => {
    const model = new ProvenanceModel(client, L.seed.images);
    await model.reloadLineage();
    const tree = model.tree!;
    expect(tree.roots.map(r => r.node.id)).toEqual([`${L.seed.images}@v1`]);
    const down = tree.roots[0].downstream;
    expect(
      down.every(i => i.relation === 'used by' && i.node.kind === 'run')
    ).toBe(true);
    expect(down.map(i => runIdOf(i.node)).sort()).toEqual(
      [P.analysis, P.comparison, P.failed, P.smoothing].sort()
    );
    const smoothing = down.find(i => runIdOf(i.node) === P.smoothing)!;
    const output = smoothing.children.find(i => i.node.kind === 'output')!;
    expect(output.relation).toBe('generated');
    expect(output.node.label).toBe(P.smoothed);
    expect(output.children.map(i => [i.relation, i.node.id])).toEqual([
      ['source of', `${P.derived}@v1`]
    ]);

    const derived = new ProvenanceModel(client, P.derived);
    await derived.load();
    expect(derived.runs).toEqual([]); // nothing read it yet: the empty state
    expect(derived.producers.map(r => r.id)).toEqual([P.smoothing]);
    expect(derived.producers[0].derived).toEqual([P.derived]);
    const up = derived.tree!.roots[0].upstream;
    expect(up.map(i => [i.relation, i.node.kind])).toEqual([
      ['derived from', 'output']
    ]);
    const run = up[0].children[0];
    expect([run.relation, runIdOf(run.node)]).toEqual([
      'generated by',
      P.smoothing
    ]);
    expect(run.children.map(i => [i.relation, i.node.id])).toEqual([
      ['used', `${L.seed.images}@v1`]
    ]);
    expect(await derived.run(P.smoothing)).toBe(derived.producers[0]); // no second request
  });

  it('serves the notebooks, outputs and RO-Crate behind the links', async () => {
    const analysis = await client.run(P.analysis);
    const plan = await client.runNotebook(P.analysis);
    expect(
      plan.cells.some(c => JSON.stringify(c.metadata).includes('parameters'))
    ).toBe(true);
    const executed = await client.runOutputJSON<INotebookContent>(
      P.analysis,
      'intensity_statistics.ipynb'
    );
    const outputs = executed.cells.flatMap(c =>
      Array.isArray(c.outputs) ? c.outputs : []
    );
    expect(outputs.length).toBeGreaterThan(0); // executed: it has what the kernel printed
    expect(untrusted(executed).cells).toHaveLength(executed.cells.length);

    const csv = analysis.outputs.find(o => o.name === 'statistics.csv')!;
    const got = await fetchBytes(runOutputPath(P.analysis, csv.name));
    expect(got.status).toBe(200);
    expect(got.bytes.length).toBe(csv.size);
    const smoothing = await client.run(P.smoothing);
    const tif = await fetchBytes(runOutputPath(P.smoothing, P.smoothed)); // a name with a '/'
    expect(tif.bytes.length).toBe(smoothing.outputs[0].size);

    const crate = await fetchBytes(runCratePath(P.analysis));
    expect(crate.status).toBe(200);
    expect(crate.type).toContain('application/zip');
    expect(String.fromCharCode(crate.bytes[0], crate.bytes[1])).toBe('PK');
    const nb = await fetchBytes(runNotebookPath(P.analysis));
    expect(nb.bytes.length).toBe(analysis.notebook.size);
    const prov = await fetchBytes(
      lineageExportPath(L.seed.images, 'prov-json')
    );
    expect(JSON.parse(new TextDecoder().decode(prov.bytes))).toHaveProperty(
      'activity'
    );
  });

  it('reports a run that does not exist as the service says', async () => {
    const error = await client.run('0'.repeat(32)).then(
      () => new Error('the call succeeded'),
      (e: unknown) => e
    );
    expect(error).toBeInstanceOf(RequestError);
    expect((error as RequestError).status).toBe(404);
    expect((error as RequestError).message).toContain('0'.repeat(8));
  });
});
