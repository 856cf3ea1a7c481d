/**
 * A dataset's page in the main area: accession and version switcher, how to cite it,
 * licence and embargo, the actions, and five tabs: the metadata (immutable REMBI sections
 * with their digest; mutable metadata with its editor and history), the image table, the
 * threads, the files and the provenance (runs and lineage, `provenance.tsx`).
 */
import {
  Button,
  HTMLSelect,
  InputGroup,
  ReactWidget
} from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  IDatasetDetail,
  IFileInfo,
  IMutableMetadata,
  IRevision,
  ISealedMetadata,
  RepositoryClient
} from './api';
import { Immutable } from './metadata';
import { notifyError } from './actions';
import { ImageTable } from './imagetable';
import {
  ImageTableModel,
  citation,
  formatBytes,
  formatValue,
  reference
} from './models';
import { IProvenanceActions, Provenance } from './provenance';
import { RequestError } from './request';
import { Threads } from './threads';
import { IViewLink } from './viewer/link';

/** What the page's buttons do (provided by the plugin: notebook, clipboard, napari, and
 * the Provenance tab's: open a dataset, open a run's notebook, copy a command). */
export interface IDatasetActions extends IProvenanceActions {
  openInNotebook: (
    accession: string,
    version: number,
    image: string | null
  ) => void;
  copyReference: (accession: string, version: number) => void;
  viewInNapari: (
    accession: string,
    version: number,
    image: string | null
  ) => void;
  /** Open an image in the viewer (optionally at a view link's region). */
  viewImage: (link: IViewLink) => void;
}

type Tab = 'metadata' | 'images' | 'threads' | 'files' | 'provenance';

/** How many image names the new-thread form offers (the image table's Discuss reaches any). */
const MAX_ANCHOR_IMAGES = 200;

function History(props: { items: IRevision[] }): JSX.Element {
  return (
    <table className="nr-History" aria-label="Metadata history">
      <thead>
        <tr>
          <th>when</th>
          <th>who</th>
          <th>field</th>
          <th>old → new</th>
          <th>reason</th>
        </tr>
      </thead>
      <tbody>
        {props.items.map(r => (
          <tr key={`${r.rev}-${r.key}`}>
            <td>{r.when.replace('T', ' ').slice(0, 19)}</td>
            <td>{r.who}</td>
            <td>{r.key}</td>
            <td>
              {formatValue(r.old)} → {formatValue(r.new)}
            </td>
            <td>{r.reason}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Mutable(props: {
  client: RepositoryClient;
  accession: string;
  canEdit: boolean;
  onChanged: () => void;
}): JSX.Element {
  const { client, accession } = props;
  const [state, setState] = React.useState<{
    m: IMutableMetadata;
    etag: string | null;
  } | null>(null);
  const [edit, setEdit] = React.useState<{
    key: string;
    value: string;
    reason: string;
  } | null>(null);
  const [history, setHistory] = React.useState<IRevision[] | null>(null);
  const load = React.useCallback(async () => {
    try {
      const r = await client.mutable(accession);
      setState({ m: r.data, etag: r.etag });
    } catch (error) {
      notifyError('Metadata', error);
    }
  }, [client, accession]);
  React.useEffect(() => {
    void load();
  }, [load]);
  if (!state) {
    return <div className="nr-Loading">Loading…</div>;
  }
  const { m } = state;
  const keys = Object.keys(m.editable);
  const start = (key: string) =>
    setEdit({
      key,
      value: formatValue(m.fields[key] ?? '').replace(/^—$/, ''),
      reason: ''
    });
  const save = async (event: React.FormEvent) => {
    event.preventDefault();
    if (!edit) {
      return;
    }
    try {
      const r = await client.setMutable(
        accession,
        { [edit.key]: edit.value },
        edit.reason,
        state.etag ?? ''
      );
      setState({ m: r.data, etag: r.etag });
      setEdit(null);
      setHistory(null);
      props.onChanged();
    } catch (error) {
      notifyError('Save metadata', error);
      if (
        error instanceof RequestError &&
        error.status === 412 &&
        error.current
      ) {
        // somebody changed it first: show theirs, keep the edit open with what was typed
        setState({ m: error.current as IMutableMetadata, etag: error.etag });
      }
    }
  };
  const toggleHistory = async () => {
    if (history) {
      setHistory(null);
      return;
    }
    try {
      setHistory((await client.history(accession)).items);
    } catch (error) {
      notifyError('History', error);
    }
  };
  return (
    <div className="nr-Mutable">
      <h3>
        Mutable metadata <span className="nr-Badge">rev {m.rev}</span>
      </h3>
      <dl>
        {keys.map(k => (
          <React.Fragment key={k}>
            <dt title={m.editable[k]}>{k.replace(/_/g, ' ')}</dt>
            <dd>
              {formatValue(m.fields[k])}
              {props.canEdit ? (
                <Button
                  small
                  minimal
                  aria-label={`Edit ${k}`}
                  onClick={() => start(k)}
                >
                  Edit
                </Button>
              ) : null}
            </dd>
          </React.Fragment>
        ))}
      </dl>
      {edit ? (
        <form
          className="nr-EditField"
          onSubmit={save}
          aria-label={`Edit ${edit.key}`}
        >
          <label>
            {edit.key} <span className="nr-Meta">({m.editable[edit.key]})</span>
            <InputGroup
              value={edit.value}
              onChange={e => setEdit({ ...edit, value: e.target.value })}
              aria-label="New value"
            />
          </label>
          <label>
            Reason
            <InputGroup
              value={edit.reason}
              onChange={e => setEdit({ ...edit, reason: e.target.value })}
              aria-label="Reason"
              required
            />
          </label>
          <div className="nr-FormButtons">
            <Button type="submit" small disabled={!edit.reason.trim()}>
              Save
            </Button>
            <Button type="button" small minimal onClick={() => setEdit(null)}>
              Cancel
            </Button>
          </div>
        </form>
      ) : null}
      <Button small minimal onClick={toggleHistory}>
        {history ? 'Hide history' : 'History'}
      </Button>
      {history ? <History items={history} /> : null}
    </div>
  );
}

function Files(props: {
  client: RepositoryClient;
  accession: string;
  version: number;
}): JSX.Element {
  const { client, accession, version } = props;
  const [files, setFiles] = React.useState<IFileInfo[] | null>(null);
  React.useEffect(() => {
    client
      .files(accession, version)
      .then(p => setFiles(p.items))
      .catch(error => notifyError('Files', error));
  }, [client, accession, version]);
  if (!files) {
    return <div className="nr-Loading">Loading files…</div>;
  }
  return (
    <table className="nr-Files" aria-label="Files">
      <thead>
        <tr>
          <th>name</th>
          <th>role</th>
          <th>type</th>
          <th>size</th>
          <th>sha256</th>
        </tr>
      </thead>
      <tbody>
        {files.map(f => (
          <tr key={f.name}>
            <td>
              <a
                href={client.url(f.download)}
                download={f.name.split('/').pop()}
              >
                {f.name}
              </a>
            </td>
            <td>{f.role}</td>
            <td>{f.media_type}</td>
            <td>{formatBytes(f.size_bytes)}</td>
            <td>
              <code title={f.sha256}>{f.sha256.slice(0, 12)}…</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DatasetView(props: {
  client: RepositoryClient;
  accession: string;
  actions: IDatasetActions;
  onTitle: (title: string) => void;
}): JSX.Element {
  const { client, accession, actions, onTitle } = props;
  const [detail, setDetail] = React.useState<IDatasetDetail | null>(null);
  const [failed, setFailed] = React.useState<string | null>(null);
  const [version, setVersion] = React.useState(0);
  const [metadata, setMetadata] = React.useState<ISealedMetadata | null>(null);
  const [tab, setTab] = React.useState<Tab>('metadata');
  const [images, setImages] = React.useState<ImageTableModel | null>(null);
  const [imageNames, setImageNames] = React.useState<string[]>([]);
  const [counts, setCounts] = React.useState<{ [status: string]: number }>({});
  const [discuss, setDiscuss] = React.useState<string | null>(null);
  const [me, setMe] = React.useState<string | null>(null);
  React.useEffect(() => {
    void client.whoami().then(setMe);
  }, [client]);

  const shown = React.useRef<ISealedMetadata | null>(null);
  const showMetadata = (m: ISealedMetadata | null) => {
    shown.current = m;
    setMetadata(m);
  };

  const loadDetail = React.useCallback(async () => {
    try {
      const r = await client.dataset(accession);
      setDetail(r.data);
      onTitle(r.data.title);
      return r.data;
    } catch (error) {
      setFailed(error instanceof Error ? error.message : String(error));
      notifyError(`Open ${accession}`, error);
      return null;
    }
  }, [client, accession, onTitle]);
  React.useEffect(() => {
    // the summary and the latest version's sealed metadata at the same time: one round
    // trip to a rendered page, not two
    const latest = client.metadata(accession, 'latest');
    void Promise.all([loadDetail(), latest.catch(() => null)]).then(
      ([found, m]) => {
        if (found && m) {
          showMetadata(m);
        }
        if (found) {
          setVersion(m?.version ?? found.latest_version);
        }
      }
    );
  }, [loadDetail, client, accession]);
  React.useEffect(() => {
    if (!version) {
      return;
    }
    if (shown.current?.version !== version) {
      showMetadata(null);
      client
        .metadata(accession, version)
        .then(showMetadata)
        .catch(error => notifyError('Metadata', error));
    }
    const model = new ImageTableModel(client, accession, version);
    // image names offered as thread anchors: the first page's worth, not re-read (and the
    // whole page not re-rendered) every time the table loads another page while scrolling
    const names = () => {
      const n = Math.min(model.loaded, MAX_ANCHOR_IMAGES);
      setImageNames(current =>
        current.length === n
          ? current
          : Array.from({ length: n }, (_, i) => model.row(i)?.name ?? '')
      );
    };
    model.changed.connect(names);
    setImages(model);
    model.reload().catch(error => notifyError('Images', error));
    return () => {
      model.changed.disconnect(names);
    };
  }, [client, accession, version]);
  const onCounts = React.useCallback(
    (c: { [status: string]: number }) => setCounts(c),
    []
  );

  if (failed) {
    return (
      <div className="nr-Dataset nr-Dataset-failed" data-state="failed">
        <h2>{accession}</h2>
        <p role="alert">{failed}</p>
      </div>
    );
  }
  if (!detail || !version) {
    return (
      <div className="nr-Dataset" data-state="loading">
        <div className="nr-Loading">Loading {accession}…</div>
      </div>
    );
  }
  const info =
    detail.versions.find(v => v.version === version) ??
    detail.versions[detail.versions.length - 1];
  const ref = reference(accession, version);
  const cite = citation(
    detail.title,
    accession,
    version,
    info?.created ?? detail.created,
    metadata?.metadata ?? null
  );
  const openCount = counts.open ?? 0;
  const tabs: Array<[Tab, string]> = [
    ['metadata', 'Metadata'],
    ['images', `Images (${images ? images.total.toLocaleString() : '…'})`],
    ['threads', `Threads (${openCount} open)`],
    ['files', 'Files'],
    ['provenance', 'Provenance']
  ];
  const onTabKey = (event: React.KeyboardEvent, index: number) => {
    const delta =
      event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (delta) {
      const next = tabs[(index + delta + tabs.length) % tabs.length][0];
      setTab(next);
      (
        event.currentTarget.parentElement?.children[
          (index + delta + tabs.length) % tabs.length
        ] as HTMLElement
      )?.focus();
    }
  };
  return (
    <div
      className="nr-Dataset"
      data-state={metadata ? 'ready' : 'loading'}
      data-accession={accession}
    >
      <header className="nr-DatasetHead">
        <h2 className="nr-DatasetTitle">{detail.title}</h2>
        <div className="nr-DatasetFacts">
          <span className="nr-Ref">{ref}</span>
          <label className="nr-VersionSwitch">
            version{' '}
            <HTMLSelect
              aria-label="Version"
              value={version}
              onChange={e => setVersion(Number(e.target.value))}
              options={detail.versions.map(v => ({
                label: `v${v.version}${v.version === detail.latest_version ? ' (latest)' : ''}`,
                value: v.version
              }))}
            />
          </label>
          <span className="nr-Badge" title="Licence">
            {detail.license ?? 'no licence'}
          </span>
          {detail.access === 'embargoed' ? (
            <span className="nr-Badge nr-Badge-embargo">
              Embargoed
              {detail.embargo_until ? ` until ${detail.embargo_until}` : ''}
            </span>
          ) : (
            <span className="nr-Badge nr-Badge-public">Public</span>
          )}
          {info ? (
            <span className="nr-Meta">
              {formatBytes(info.size_bytes)} · {info.created.slice(0, 10)} ·{' '}
              {info.created_by}
            </span>
          ) : null}
        </div>
        <div className="nr-Actions" role="toolbar" aria-label="Dataset actions">
          <Button
            small
            onClick={() => actions.openInNotebook(accession, version, null)}
          >
            Open in notebook
          </Button>
          <Button
            small
            onClick={() => actions.copyReference(accession, version)}
          >
            Copy {ref}
          </Button>
          <Button
            small
            onClick={() => actions.viewInNapari(accession, version, null)}
          >
            View in napari
          </Button>
        </div>
        <div className="nr-Cite">
          <span className="nr-Meta">Cite as</span>{' '}
          <span className="nr-CiteText">{cite}</span>
          {info ? (
            <span
              className="nr-Meta"
              title="SHA-256 over the version's manifest"
            >
              {' '}
              manifest sha256:<code>{info.manifest_sha256.slice(0, 16)}…</code>
            </span>
          ) : null}
        </div>
      </header>
      {version < detail.latest_version ? (
        <div
          className="nr-NewerVersion"
          role="status"
          data-latest={detail.latest_version}
        >
          A newer version exists:{' '}
          <strong>{reference(accession, detail.latest_version)}</strong>. You
          are reading v{version}.{' '}
          <Button small onClick={() => setVersion(detail.latest_version)}>
            Show v{detail.latest_version}
          </Button>
        </div>
      ) : null}
      <div className="nr-Tabs" role="tablist" aria-label="Dataset sections">
        {tabs.map(([id, label], index) => (
          <button
            key={id}
            type="button"
            role="tab"
            className="nr-Tab"
            aria-selected={tab === id}
            tabIndex={tab === id ? 0 : -1}
            data-tab={id}
            onClick={() => setTab(id)}
            onKeyDown={e => onTabKey(e, index)}
          >
            {label}
          </button>
        ))}
      </div>
      <div className="nr-TabPanel" role="tabpanel">
        {tab === 'metadata' ? (
          <div className="nr-Metadata">
            <Immutable metadata={metadata} />
            <Mutable
              client={client}
              accession={accession}
              canEdit={detail.can.includes('edit')}
              onChanged={() => void loadDetail()}
            />
          </div>
        ) : null}
        {tab === 'images' && images ? (
          <ImageTable
            model={images}
            client={client}
            actions={{
              openInNotebook: name =>
                actions.openInNotebook(accession, version, name),
              viewInNapari: name =>
                actions.viewInNapari(accession, version, name),
              view: name =>
                actions.viewImage({
                  accession,
                  version,
                  image: name,
                  x: null,
                  y: null,
                  z: 0,
                  t: 0,
                  c: null
                }),
              discuss: name => {
                setDiscuss(name);
                setTab('threads');
              }
            }}
          />
        ) : null}
        {/* kept mounted so the open-thread count in the tab label stays current */}
        <div hidden={tab !== 'threads'}>
          <Threads
            client={client}
            accession={accession}
            version={version}
            images={imageNames}
            discussImage={discuss}
            canAnnotate={detail.can.includes('annotate')}
            me={me}
            can={detail.can}
            viewImage={actions.viewImage}
            onCounts={onCounts}
          />
        </div>
        {tab === 'files' ? (
          <Files client={client} accession={accession} version={version} />
        ) : null}
        {tab === 'provenance' ? (
          <Provenance
            client={client}
            accession={accession}
            versions={detail.versions.map(v => v.version)}
            actions={actions}
          />
        ) : null}
      </div>
    </div>
  );
}

/** The main-area widget of one dataset. */
export class DatasetPage extends ReactWidget {
  constructor(
    client: RepositoryClient,
    accession: string,
    actions: IDatasetActions
  ) {
    super();
    this.accession = accession;
    this._client = client;
    this._actions = actions;
    this.addClass('nr-DatasetPage');
    this.title.label = accession;
    this.title.caption = accession;
  }

  readonly accession: string;

  protected render(): JSX.Element {
    return (
      <DatasetView
        client={this._client}
        accession={this.accession}
        actions={this._actions}
        onTitle={this._onTitle}
      />
    );
  }

  private _onTitle = (title: string): void => {
    this.title.caption = `${this.accession}: ${title}`;
  };

  private _client: RepositoryClient;
  private _actions: IDatasetActions;
}
