/**
 * The Provenance tab of a dataset page: the runs that produced the dataset and the runs
 * that read it (status, when, who, notebook, parameters, inputs as `ACC@vN`, outputs with
 * sizes and digests, the error of a failed run), its lineage as a tree, and per run the
 * actions a user expects: download the RO-Crate, open the notebook (executed, or as run)
 * in JupyterLab, copy the `nanorepo rerun` command.
 *
 * It shows only what the service answers, which is only what the user may see: a run
 * that read a dataset under embargo the user is not granted is in no list or lineage.
 */
import { Button, HTMLSelect, UseSignal } from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  IRun,
  IRunOutput,
  RepositoryClient,
  RunStatus,
  lineageExportPath,
  runCratePath,
  runNotebookPath,
  runOutputPath
} from './api';
import { notifyError } from './actions';
import { formatBytes, reference } from './models';
import {
  ILineageItem,
  ProvenanceModel,
  datasetOf,
  executedNotebook,
  formatDuration,
  formatParameter,
  formatTime,
  inputDatasets,
  inputParts,
  rerunCommand,
  runCommand,
  runIdOf,
  shortId
} from './runs';

/** What the tab's buttons do outside the page (provided by the plugin). */
export interface IProvenanceActions {
  /** open a dataset's page */
  openDataset: (accession: string) => void;
  /** save the run's notebook (executed, or as it was run) in the home and open it */
  openRunNotebook: (run: IRun, executed: boolean) => void;
  /** put a command on the clipboard */
  copyCommand: (command: string) => void;
}

const STATUSES: RunStatus[] = ['succeeded', 'failed', 'interrupted', 'running'];

function Digest(props: { sha256: string; label?: string }): JSX.Element {
  return (
    <code
      className="nr-Sha"
      title={`${props.label ?? 'sha256'} ${props.sha256}`}
    >
      {props.sha256.slice(0, 12)}…
    </code>
  );
}

function StatusBadge(props: { status: string }): JSX.Element {
  return (
    <span className={`nr-Badge nr-RunStatus nr-RunStatus-${props.status}`}>
      {props.status}
    </span>
  );
}

function Inputs(props: {
  run: IRun;
  actions: IProvenanceActions;
}): JSX.Element {
  const { run, actions } = props;
  const datasets = inputDatasets(run);
  if (!datasets.length) {
    return (
      <p className="nr-Meta">No dataset was opened through nanorepo.open.</p>
    );
  }
  return (
    <ul className="nr-RunInputs" aria-label="Inputs">
      {datasets.map(d => {
        const version = run.inputs.find(
          i =>
            i.kind === 'dataset' && reference(i.accession, i.version) === d.ref
        );
        const parts = inputParts(run, d.accession, d.version);
        return (
          <li key={d.ref} data-input={d.ref}>
            <button
              type="button"
              className="nr-Link nr-Ref"
              title={`Open ${d.accession}`}
              onClick={() => actions.openDataset(d.accession)}
            >
              {d.ref}
            </button>
            {version ? (
              <span className="nr-Meta">
                {' '}
                manifest{' '}
                <Digest
                  sha256={version.sha256}
                  label="version manifest sha256"
                />
              </span>
            ) : null}
            {parts.length ? (
              <span className="nr-Meta">
                {' '}
                read{' '}
                {parts.map((p, n) => (
                  <React.Fragment key={`${p.kind}:${p.name}`}>
                    {n ? ', ' : ''}
                    <span title={`${p.kind} ${p.ref} sha256 ${p.sha256}`}>
                      {p.name}
                    </span>
                  </React.Fragment>
                ))}
              </span>
            ) : null}
          </li>
        );
      })}
    </ul>
  );
}

function Outputs(props: { run: IRun; client: RepositoryClient }): JSX.Element {
  const { run, client } = props;
  if (!run.outputs.length) {
    return <p className="nr-Meta">No outputs.</p>;
  }
  const row = (o: IRunOutput) => (
    <tr key={o.name} data-output={o.name}>
      <td>
        <a
          href={client.url(runOutputPath(run.id, o.name))}
          download={o.name.split('/').pop()}
        >
          {o.name}
        </a>
      </td>
      <td>
        {o.role === 'executed-notebook' ? 'executed notebook' : o.media_type}
      </td>
      <td className="nr-Num">{formatBytes(o.size)}</td>
      <td>
        <Digest sha256={o.sha256} />
      </td>
    </tr>
  );
  return (
    <table className="nr-RunOutputs" aria-label="Outputs">
      <thead>
        <tr>
          <th>output</th>
          <th>type</th>
          <th>size</th>
          <th>sha256</th>
        </tr>
      </thead>
      <tbody>{run.outputs.map(row)}</tbody>
    </table>
  );
}

function KeyValues(props: {
  label: string;
  values: { [key: string]: unknown };
}): JSX.Element | null {
  const entries = Object.entries(props.values);
  if (!entries.length) {
    return null;
  }
  return (
    <dl className="nr-RunValues" aria-label={props.label}>
      {entries.map(([k, v]) => (
        <React.Fragment key={k}>
          <dt>{k}</dt>
          <dd>
            <code>{formatParameter(v)}</code>
          </dd>
        </React.Fragment>
      ))}
    </dl>
  );
}

/** A run's whole record with its actions. */
export function RunDetails(props: {
  run: IRun;
  client: RepositoryClient;
  actions: IProvenanceActions;
}): JSX.Element {
  const { run, client, actions } = props;
  const executed = executedNotebook(run);
  const duration = formatDuration(run.started, run.ended);
  const env = run.environment;
  return (
    <div className="nr-RunDetails">
      <div
        className="nr-Actions"
        role="toolbar"
        aria-label={`Actions of run ${shortId(run.id)}`}
      >
        {executed ? (
          <Button small onClick={() => actions.openRunNotebook(run, true)}>
            Open executed notebook
          </Button>
        ) : null}
        <Button small onClick={() => actions.openRunNotebook(run, false)}>
          Open notebook as run
        </Button>
        <a
          className="nr-ButtonLink"
          href={client.url(runCratePath(run.id))}
          download={`run-${shortId(run.id)}.crate.zip`}
        >
          Download RO-Crate
        </a>
        <a
          className="nr-ButtonLink"
          href={client.url(runNotebookPath(run.id))}
          download={run.notebook.name}
        >
          Download notebook
        </a>
        <Button small onClick={() => actions.copyCommand(rerunCommand(run.id))}>
          Copy rerun command
        </Button>
      </div>
      {run.error ? (
        <div className="nr-RunError" role="alert">
          <strong>
            {run.error.ename}: {run.error.evalue}
          </strong>
          {run.error.cell !== null ? (
            <span className="nr-Meta"> (in cell {run.error.cell})</span>
          ) : null}
          {run.error.traceback.length ? (
            <details>
              <summary>Traceback</summary>
              <pre>{run.error.traceback.join('\n')}</pre>
            </details>
          ) : null}
        </div>
      ) : null}
      <dl className="nr-RunFacts">
        <dt>run</dt>
        <dd>
          <code>{run.id}</code>
        </dd>
        <dt>by</dt>
        <dd>{run.agent}</dd>
        <dt>started</dt>
        <dd>
          {formatTime(run.started)} UTC
          {run.ended ? ` · ended ${formatTime(run.ended)}` : ''}
          {duration ? ` · ${duration}` : ''}
        </dd>
        <dt>notebook</dt>
        <dd>
          {run.notebook.name} · {formatBytes(run.notebook.size)} ·{' '}
          <Digest sha256={run.notebook.sha256} />
        </dd>
        {env ? (
          <>
            <dt>environment</dt>
            <dd>
              {env.implementation} {env.python}
              {env.image ? ` · image ${env.image}` : ''} ·{' '}
              {Object.keys(env.packages).length} packages{' '}
              <Digest sha256={env.sha256} label="environment sha256" />
            </dd>
          </>
        ) : null}
        {run.rerun_of ? (
          <>
            <dt>rerun of</dt>
            <dd>
              <code title={run.rerun_of}>{shortId(run.rerun_of)}</code>
            </dd>
          </>
        ) : null}
        {run.batch ? (
          <>
            <dt>batch</dt>
            <dd>
              <code title={run.batch}>{shortId(run.batch)}</code>
              {run.item ? ` · item ${run.item}` : ''}
            </dd>
          </>
        ) : null}
      </dl>
      <h5>Parameters</h5>
      {Object.keys(run.parameters).length ? (
        <KeyValues label="Parameters" values={run.parameters} />
      ) : (
        <p className="nr-Meta">None.</p>
      )}
      <h5>Inputs</h5>
      <Inputs run={run} actions={actions} />
      <h5>Outputs</h5>
      <Outputs run={run} client={client} />
      {Object.keys(run.values).length ? (
        <>
          <h5>Recorded values</h5>
          <KeyValues label="Recorded values" values={run.values} />
        </>
      ) : null}
      {run.derived.length ? (
        <>
          <h5>Datasets deposited from its outputs</h5>
          <ul className="nr-RunDerived">
            {run.derived.map(acc => (
              <li key={acc}>
                <button
                  type="button"
                  className="nr-Link nr-Ref"
                  onClick={() => actions.openDataset(acc)}
                >
                  {acc}
                </button>
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </div>
  );
}

/** One run as a line that opens into its record. */
function RunCard(props: {
  run: IRun;
  client: RepositoryClient;
  actions: IProvenanceActions;
  initiallyOpen?: boolean;
}): JSX.Element {
  const { run } = props;
  const [open, setOpen] = React.useState(props.initiallyOpen ?? false);
  const inputs = inputDatasets(run)
    .map(d => d.ref)
    .join(', ');
  return (
    <li className="nr-Run" data-run={run.id} data-status={run.status}>
      <button
        type="button"
        className="nr-RunHead"
        aria-expanded={open}
        onClick={() => setOpen(!open)}
      >
        <StatusBadge status={run.status} />
        <span className="nr-RunNotebook">{run.notebook.name}</span>
        <span className="nr-Meta">
          {formatTime(run.started)} · {run.agent} · {inputs || 'no inputs'} ·{' '}
          {run.outputs.length} output
          {run.outputs.length === 1 ? '' : 's'}
        </span>
        <code className="nr-Meta">{shortId(run.id)}</code>
      </button>
      {!open && run.error ? (
        <div className="nr-RunErrorLine">
          {run.error.ename}: {run.error.evalue.split('\n')[0]}
        </div>
      ) : null}
      {open ? (
        <RunDetails run={run} client={props.client} actions={props.actions} />
      ) : null}
    </li>
  );
}

function LineageItems(props: {
  items: ILineageItem[];
  model: ProvenanceModel;
  client: RepositoryClient;
  actions: IProvenanceActions;
}): JSX.Element {
  return (
    <ul className="nr-LineageList">
      {props.items.map(item => (
        <LineageLine
          key={`${item.relation}:${item.node.id}`}
          {...props}
          item={item}
        />
      ))}
    </ul>
  );
}

function LineageLine(props: {
  item: ILineageItem;
  model: ProvenanceModel;
  client: RepositoryClient;
  actions: IProvenanceActions;
}): JSX.Element {
  const { item, model, client, actions } = props;
  const { node } = item;
  const [run, setRun] = React.useState<IRun | null>(null);
  const runId = runIdOf(node);
  const dataset = datasetOf(node);
  const toggleRun = async () => {
    if (run) {
      setRun(null);
      return;
    }
    try {
      setRun(await model.run(runId as string));
    } catch (error) {
      notifyError('Run', error);
    }
  };
  let label: JSX.Element;
  if (dataset) {
    const title =
      typeof node.attrs.title === 'string' ? ` ${node.attrs.title}` : '';
    label = (
      <>
        <button
          type="button"
          className="nr-Link nr-Ref"
          onClick={() => actions.openDataset(dataset.accession)}
        >
          {node.id}
        </button>
        <span className="nr-Meta">{title}</span>
      </>
    );
  } else if (runId) {
    const status = String(node.attrs.status ?? '');
    label = (
      <>
        <button
          type="button"
          className="nr-Link"
          aria-expanded={run !== null}
          onClick={() => void toggleRun()}
        >
          run {shortId(runId)}
        </button>{' '}
        <StatusBadge status={status} />{' '}
        <span className="nr-Meta">
          {String(node.attrs.notebook ?? '')} · {String(node.attrs.agent ?? '')}{' '}
          ·{' '}
          {formatTime(
            typeof node.attrs.started === 'string' ? node.attrs.started : null
          )}
        </span>
      </>
    );
  } else if (node.kind === 'output') {
    const size =
      typeof node.attrs.size === 'number' ? formatBytes(node.attrs.size) : '';
    const sha = typeof node.attrs.sha256 === 'string' ? node.attrs.sha256 : '';
    label = (
      <>
        <span className="nr-LineageOutput">{node.label}</span>{' '}
        <span className="nr-Meta">
          {size} {sha ? <Digest sha256={sha} /> : null}
        </span>
      </>
    );
  } else {
    label = <span>{node.label}</span>;
  }
  return (
    <li className="nr-LineageItem" data-node={node.id} data-kind={node.kind}>
      <span className="nr-LineageRelation">{item.relation}</span>{' '}
      <span className={`nr-LineageKind nr-LineageKind-${node.kind}`}>
        {node.kind}
      </span>{' '}
      {label}
      {item.repeated ? <span className="nr-Meta"> (shown above)</span> : null}
      {run ? <RunDetails run={run} client={client} actions={actions} /> : null}
      {item.children.length ? (
        <LineageItems
          items={item.children}
          model={model}
          client={client}
          actions={actions}
        />
      ) : null}
    </li>
  );
}

function Lineage(props: {
  model: ProvenanceModel;
  client: RepositoryClient;
  actions: IProvenanceActions;
}): JSX.Element {
  const { model, client, actions } = props;
  const tree = model.tree;
  if (!tree) {
    return <div className="nr-Loading">Loading the lineage…</div>;
  }
  const links = (
    <span className="nr-Meta">
      Export:{' '}
      <a
        href={client.url(lineageExportPath(model.accession, 'prov-json'))}
        download={`${model.accession}-lineage.prov.json`}
      >
        PROV-JSON
      </a>{' '}
      ·{' '}
      <a
        href={client.url(lineageExportPath(model.accession, 'provn'))}
        download={`${model.accession}-lineage.provn`}
      >
        PROV-N
      </a>
    </span>
  );
  if (tree.runs === 0) {
    return (
      <div className="nr-Lineage nr-Empty" data-empty="true">
        Nothing was derived from this dataset, nor it from a run, as far as you
        may see. {links}
      </div>
    );
  }
  return (
    <div className="nr-Lineage" aria-label="Lineage">
      <p className="nr-Meta">
        {tree.runs} run{tree.runs === 1 ? '' : 's'} connected. {links}
      </p>
      {tree.roots.map(root => (
        <div
          key={root.node.id}
          className="nr-LineageRoot"
          data-node={root.node.id}
        >
          <div className="nr-LineageFocus">
            <span className="nr-Ref">{root.node.id}</span>
          </div>
          <div className="nr-LineageBranch" data-branch="upstream">
            <div className="nr-LineageBranchTitle">what it came from</div>
            {root.upstream.length ? (
              <LineageItems
                items={root.upstream}
                model={model}
                client={client}
                actions={actions}
              />
            ) : (
              <div className="nr-Meta">
                deposited, not derived from a recorded run
              </div>
            )}
          </div>
          <div className="nr-LineageBranch" data-branch="downstream">
            <div className="nr-LineageBranchTitle">what came from it</div>
            {root.downstream.length ? (
              <LineageItems
                items={root.downstream}
                model={model}
                client={client}
                actions={actions}
              />
            ) : (
              <div className="nr-Meta">no recorded run read this version</div>
            )}
          </div>
        </div>
      ))}
    </div>
  );
}

function EmptyRuns(props: {
  accession: string;
  version: number | null;
  filtered: boolean;
}): JSX.Element {
  const command = runCommand(props.accession, props.version);
  return (
    <div className="nr-Empty nr-RunsEmpty" data-empty="true">
      <p>
        {props.filtered
          ? 'No run matches these filters.'
          : 'No recorded run has read this dataset yet.'}
      </p>
      <p>
        Run an analysis next to the data, from a terminal of this server; its
        inputs, parameters, environment and outputs are recorded and appear
        here:
      </p>
      <pre className="nr-Command">{command}</pre>
      <p className="nr-Meta">
        Templates are in <code>~/nanorepo-notebooks/analyses/</code> (their
        parameters cell names what <code>-p</code> sets).
      </p>
    </div>
  );
}

/** The Provenance tab of a dataset. */
export function Provenance(props: {
  client: RepositoryClient;
  accession: string;
  versions: number[];
  actions: IProvenanceActions;
}): JSX.Element {
  const { client, accession, actions } = props;
  const model = React.useMemo(
    () => new ProvenanceModel(client, accession),
    [client, accession]
  );
  React.useEffect(() => {
    model.load().catch(error => notifyError('Provenance', error));
  }, [model]);
  const fail = (error: unknown) => notifyError('Runs', error);
  return (
    <UseSignal signal={model.changed}>
      {() => {
        const producers = model.producers;
        const filtered = model.version !== null || model.status !== null;
        return (
          <div className="nr-Provenance" aria-busy={model.loading}>
            {producers.length ? (
              <section className="nr-ProvSection" aria-label="Produced by">
                <h3>Produced by</h3>
                <p className="nr-Meta">
                  This dataset was deposited from outputs of:
                </p>
                <ul className="nr-Runs" data-list="producers">
                  {producers.map(r => (
                    <RunCard
                      key={r.id}
                      run={r}
                      client={client}
                      actions={actions}
                      initiallyOpen
                    />
                  ))}
                </ul>
              </section>
            ) : null}
            <section
              className="nr-ProvSection"
              aria-label="Runs that read this dataset"
            >
              <h3>Runs that read this dataset</h3>
              <div className="nr-RunFilters">
                <HTMLSelect
                  aria-label="Runs of version"
                  value={model.version ?? 0}
                  onChange={e =>
                    model
                      .setFilter({ version: Number(e.target.value) || null })
                      .catch(fail)
                  }
                  options={[
                    { label: 'any version', value: 0 },
                    ...props.versions.map(v => ({ label: `v${v}`, value: v }))
                  ]}
                />
                <HTMLSelect
                  aria-label="Run status"
                  value={model.status ?? ''}
                  onChange={e =>
                    model
                      .setFilter({
                        status: (e.target.value || null) as RunStatus | null
                      })
                      .catch(fail)
                  }
                  options={[
                    { label: 'any status', value: '' },
                    ...STATUSES.map(s => ({ label: s, value: s }))
                  ]}
                />
                <Button small minimal onClick={() => model.load().catch(fail)}>
                  Refresh
                </Button>
              </div>
              {model.runs.length ? (
                <ul className="nr-Runs" data-list="readers">
                  {model.runs.map(r => (
                    <RunCard
                      key={r.id}
                      run={r}
                      client={client}
                      actions={actions}
                    />
                  ))}
                </ul>
              ) : model.loading ? (
                <div className="nr-Loading">Loading runs…</div>
              ) : (
                <EmptyRuns
                  accession={accession}
                  version={
                    model.version ??
                    (props.versions.length ? Math.max(...props.versions) : null)
                  }
                  filtered={filtered}
                />
              )}
              {model.hasMore ? (
                <Button
                  small
                  onClick={() => model.more().catch(fail)}
                  disabled={model.loading}
                >
                  More runs
                </Button>
              ) : null}
            </section>
            <section className="nr-ProvSection" aria-label="Lineage">
              <h3>Lineage</h3>
              <Lineage model={model} client={client} actions={actions} />
            </section>
          </div>
        );
      }}
    </UseSignal>
  );
}
