/**
 * Provenance as the dataset page shows it, kept apart from the widgets so it can be tested
 * without a browser: the runs that read a dataset (filtered by version and status, loaded
 * page by page, stale answers dropped), the runs it was produced by, its lineage as a
 * tree (what it came from, what came from it), and the commands and file names the
 * Provenance tab offers.
 *
 * Everything here is what the service lets the user see: a run that read a dataset the
 * user may not see is not in any list or lineage the service answers (DESIGN.md
 * invariant 5), so nothing is filtered (or could leak) in the browser.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  ILineage,
  ILineageEdge,
  ILineageNode,
  INotebookContent,
  IRun,
  IRunInput,
  IRunOutput,
  LineageRelation,
  RepositoryClient,
  RunStatus
} from './api';
import { reference } from './models';

/** The first 12 hex digits of a run id: unique enough for people and the CLI. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

/** The command that repeats a run (same notebook, parameters and input versions). */
export function rerunCommand(id: string): string {
  return `nanorepo rerun ${id}`;
}

/** The command that runs a notebook on a dataset version, recording its provenance. */
export function runCommand(accession: string, version: number | null): string {
  const ref = version ? reference(accession, version) : accession;
  return `nanorepo run NOTEBOOK.ipynb -p accession ${ref}`;
}

/** `2026-05-01 10:00:03` from an ISO 8601 time (UTC as the service records it). */
export function formatTime(iso: string | null): string {
  return iso ? iso.replace('T', ' ').slice(0, 19) : '—';
}

/** How long a run took (`850 ms`, `42 s`, `3 min 05 s`, `2 h 04 min`), or `null`. */
export function formatDuration(
  started: string,
  ended: string | null
): string | null {
  if (!ended) {
    return null;
  }
  const ms = Date.parse(ended) - Date.parse(started);
  if (!Number.isFinite(ms) || ms < 0) {
    return null;
  }
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  const s = Math.round(ms / 1000);
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  }
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** A parameter or recorded value as one line of text (JSON for anything not a string). */
export function formatParameter(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text;
}

/** The dataset versions a run read, once each, as `ACC@vN`, in the order first read. */
export function inputDatasets(
  run: IRun
): Array<{ accession: string; version: number; ref: string }> {
  const seen = new Map<
    string,
    { accession: string; version: number; ref: string }
  >();
  for (const i of run.inputs) {
    const ref = reference(i.accession, i.version);
    if (!seen.has(ref)) {
      seen.set(ref, { accession: i.accession, version: i.version, ref });
    }
  }
  return [...seen.values()];
}

/** The images and files a run read inside one dataset version. */
export function inputParts(
  run: IRun,
  accession: string,
  version: number
): IRunInput[] {
  return run.inputs.filter(
    i =>
      i.accession === accession && i.version === version && i.kind !== 'dataset'
  );
}

/** The run's executed notebook (papermill's output), if it kept one. */
export function executedNotebook(run: IRun): IRunOutput | null {
  return run.outputs.find(o => o.role === 'executed-notebook') ?? null;
}

/**
 * Where "Open notebook" saves a run's notebook in the user's home:
 * `nanorepo-runs/<id12>-<stem>.ipynb` (as run) or `...-<stem>-executed.ipynb`, with
 * `-2`, `-3`, … appended by the caller when the name is taken (a copy the user edited
 * is never overwritten).
 */
export function localNotebookPath(
  run: IRun,
  executed: boolean,
  attempt = 1
): string {
  const base = (
    executed
      ? (executedNotebook(run)?.name ?? run.notebook.name)
      : run.notebook.name
  )
    .split('/')
    .pop() as string;
  const stem =
    base.replace(/\.ipynb$/i, '').replace(/[^A-Za-z0-9._-]+/g, '_') ||
    'notebook';
  const suffix =
    (executed ? '-executed' : '') + (attempt > 1 ? `-${attempt}` : '');
  return `${LOCAL_RUNS_DIR}/${shortId(run.id)}-${stem}${suffix}.ipynb`;
}

/** The folder of the user's home where run notebooks are saved to be opened. */
export const LOCAL_RUNS_DIR = 'nanorepo-runs';

/**
 * A copy of a notebook that JupyterLab will not trust: every cell's `trusted` flag is
 * removed. The Jupyter server signs a saved notebook whose code cells all say `trusted`,
 * which would let HTML and JavaScript outputs written by whoever made the run execute in
 * the user's page; saved without the flags, Lab shows it as untrusted (outputs sanitised)
 * until the user trusts it.
 */
export function untrusted(notebook: INotebookContent): INotebookContent {
  if (
    !notebook ||
    typeof notebook !== 'object' ||
    !Array.isArray(notebook.cells)
  ) {
    throw new Error(
      'the service sent something that is not a notebook (no list of cells)'
    );
  }
  const cells = notebook.cells.map(cell => {
    const metadata = cell.metadata;
    if (
      metadata &&
      typeof metadata === 'object' &&
      !Array.isArray(metadata) &&
      'trusted' in metadata
    ) {
      const { trusted: _dropped, ...rest } = metadata as {
        [key: string]: unknown;
      };
      void _dropped;
      return { ...cell, metadata: rest };
    }
    return cell;
  });
  const { signature: _signature, ...metadata } = notebook.metadata ?? {};
  void _signature;
  return { ...notebook, cells, metadata };
}

// -- lineage ---------------------------------------------------------------------------

/** One line of the lineage tree: a node, how it relates to its parent, what follows. */
export interface ILineageItem {
  node: ILineageNode;
  /** the relation to the parent, for people (`derived from`, `used by`, …) */
  relation: string;
  /** already shown elsewhere in the tree (shared ancestry): not expanded again */
  repeated: boolean;
  children: ILineageItem[];
}

/** A dataset's lineage for people: per version in the graph, upstream and downstream. */
export interface ILineageTree {
  roots: Array<{
    node: ILineageNode;
    upstream: ILineageItem[];
    downstream: ILineageItem[];
  }>;
  /** number of runs in the graph (the service stops at 500) */
  runs: number;
}

const UP: { [R in LineageRelation]: string } = {
  used: 'used',
  wasGeneratedBy: 'generated by',
  wasDerivedFrom: 'derived from',
  wasStartedBy: 'started by'
};
const DOWN: { [R in LineageRelation]: string } = {
  used: 'used by',
  wasGeneratedBy: 'generated',
  wasDerivedFrom: 'source of',
  wasStartedBy: 'started'
};

const DATASET_NODE = /^(.+)@v(\d+)$/;

/**
 * The lineage of `accession` as a tree: one root per version of it in the graph (or the
 * service's focus when no run touched it), each with what it came from (edges followed
 * forwards, PROV's direction) and what came from it (followed backwards). A node reached
 * twice is expanded once, where it is nearest the root, and marked `repeated` elsewhere,
 * so a diamond never loops.
 */
export function lineageTree(
  lineage: ILineage,
  accession: string
): ILineageTree {
  const nodes = new Map(lineage.nodes.map(n => [n.id, n]));
  const out = new Map<string, ILineageEdge[]>();
  const into = new Map<string, ILineageEdge[]>();
  for (const e of lineage.edges) {
    if (!nodes.has(e.source) || !nodes.has(e.target)) {
      continue; // the service never sends these; a dangling edge must not break the page
    }
    out.set(e.source, [...(out.get(e.source) ?? []), e]);
    into.set(e.target, [...(into.get(e.target) ?? []), e]);
  }
  const versions = lineage.nodes
    .filter(
      n => n.kind === 'dataset' && DATASET_NODE.exec(n.id)?.[1] === accession
    )
    .sort(
      (a, b) =>
        Number(DATASET_NODE.exec(a.id)?.[2]) -
        Number(DATASET_NODE.exec(b.id)?.[2])
    );
  const focus = nodes.get(lineage.focus);
  const starts = versions.length ? versions : focus ? [focus] : [];
  const grow = (
    start: string,
    upstream: boolean,
    seen: Set<string>
  ): ILineageItem[] => {
    const edges = (upstream ? out : into).get(start) ?? [];
    const names = upstream ? UP : DOWN;
    // a node is expanded where it is nearest the root: claim this level's nodes first
    const items = edges.map(e => {
      const next = upstream ? e.target : e.source;
      const item: ILineageItem = {
        node: nodes.get(next) as ILineageNode,
        relation: names[e.relation],
        repeated: seen.has(next),
        children: []
      };
      seen.add(next);
      return item;
    });
    for (const item of items) {
      if (!item.repeated) {
        item.children = grow(item.node.id, upstream, seen);
      }
    }
    return items;
  };
  return {
    roots: starts.map(node => ({
      node,
      upstream: grow(node.id, true, new Set([node.id])),
      downstream: grow(node.id, false, new Set([node.id]))
    })),
    runs: lineage.nodes.filter(n => n.kind === 'run').length
  };
}

/** The run id of a lineage run node (`run:<id>`), else `null`. */
export function runIdOf(node: ILineageNode): string | null {
  return node.kind === 'run' && node.id.startsWith('run:')
    ? node.id.slice(4)
    : null;
}

/** The accession and version of a lineage dataset node (`S-NANO1@v2`), else `null`. */
export function datasetOf(
  node: ILineageNode
): { accession: string; version: number } | null {
  const m = node.kind === 'dataset' ? DATASET_NODE.exec(node.id) : null;
  return m ? { accession: m[1], version: Number(m[2]) } : null;
}

// -- the model of the Provenance tab -----------------------------------------------------

/**
 * The Provenance tab of one dataset: the runs that read it (newest first, a page at a
 * time, filtered by version and status in the service), the runs its files came from and
 * its lineage tree. Answers that arrive after a newer filter was chosen are dropped.
 */
export class ProvenanceModel {
  constructor(client: RepositoryClient, accession: string, pageSize = 20) {
    this._client = client;
    this.accession = accession;
    this.pageSize = pageSize;
  }

  readonly accession: string;
  readonly pageSize: number;
  /** only runs that read this version (`null`: any version) */
  version: number | null = null;
  /** only runs that ended so (`null`: any status) */
  status: RunStatus | null = null;
  /** runs that read the dataset, loaded so far */
  runs: IRun[] = [];
  loading = false;
  /** the dataset's lineage (`null` until loaded) */
  lineage: ILineage | null = null;
  tree: ILineageTree | null = null;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** More runs can be loaded. */
  get hasMore(): boolean {
    return this._next !== null;
  }

  /**
   * The runs this dataset came from: it was deposited from their outputs
   * (`nanorepo deposit --derived-from RUN`).
   */
  get producers(): IRun[] {
    return (this.lineage?.runs ?? []).filter(r =>
      r.derived.includes(this.accession)
    );
  }

  /** Load the first page of runs and the lineage, at the same time. */
  async load(): Promise<void> {
    await Promise.all([this.reloadRuns(), this.reloadLineage()]);
  }

  /** Choose the version and status filters and load the first page again. */
  setFilter(change: {
    version?: number | null;
    status?: RunStatus | null;
  }): Promise<void> {
    if (change.version !== undefined) {
      this.version = change.version;
    }
    if (change.status !== undefined) {
      this.status = change.status;
    }
    return this.reloadRuns();
  }

  /** The first page of runs for the current filters (dropping what was loaded). */
  async reloadRuns(): Promise<void> {
    this.runs = [];
    this._next = null;
    await this._page(++this._generation, null);
  }

  /** The next page of runs (no-op after the last). */
  async more(): Promise<void> {
    if (this._next !== null && !this.loading) {
      await this._page(this._generation, this._next);
    }
  }

  /** Read the lineage again. */
  async reloadLineage(): Promise<void> {
    const lineage = await this._client.datasetLineage(this.accession);
    this.lineage = lineage;
    this.tree = lineageTree(lineage, this.accession);
    this._changed.emit();
  }

  /** A run's record: from what is loaded, or asked of the service. */
  async run(id: string): Promise<IRun> {
    const known = [...this.runs, ...(this.lineage?.runs ?? [])].find(
      r => r.id === id
    );
    return known ?? this._client.run(id);
  }

  private async _page(
    generation: number,
    cursor: string | null
  ): Promise<void> {
    this.loading = true;
    this._changed.emit();
    const dataset = this.version
      ? reference(this.accession, this.version)
      : this.accession;
    try {
      const page = await this._client.runs(
        { dataset, status: this.status },
        cursor,
        this.pageSize
      );
      if (generation !== this._generation) {
        return;
      }
      this.runs = [...this.runs, ...page.items];
      this._next = page.next;
    } finally {
      if (generation === this._generation) {
        this.loading = false;
        this._changed.emit();
      }
    }
  }

  private _client: RepositoryClient;
  private _next: string | null = null;
  private _generation = 0;
  private _changed = new Signal<this, void>(this);
}
