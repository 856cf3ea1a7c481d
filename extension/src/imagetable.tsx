/**
 * The image table of a dataset version: thumbnails, axes, shape, pixel size per axis (nm),
 * channels with their colours, dtype, technique and the file-level
 * key/value columns; filters and sort run in the service. Only the rows in view (plus a
 * margin) are in the DOM, each of a fixed height, so 100,000 rows scroll like 100; the
 * rows' pages are fetched as the view nears them.
 */
import {
  Button,
  HTMLSelect,
  InputGroup,
  UseSignal
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { IImageInfo, RepositoryClient } from './api';
import { notifyError } from './actions';
import { channelsOf, pixelSizes } from './metadata';
import { ImageTableModel, formatBytes } from './models';

/** Height of one row in pixels (CSS `.nr-ImageRow` uses the same). */
export const ROW_HEIGHT = 44;
/** Rows rendered above and below the visible ones. */
const OVERSCAN = 8;

export interface IImageActions {
  openInNotebook: (image: string) => void;
  viewInNapari: (image: string) => void;
  discuss: (image: string) => void;
  /** Open the image in the viewer. */
  view: (image: string) => void;
}

function FilterBar(props: { model: ImageTableModel }): JSX.Element {
  const { model } = props;
  const [key, setKey] = React.useState('');
  const [value, setValue] = React.useState('');
  const [name, setName] = React.useState(model.query.name);
  const fail = (error: unknown) => notifyError('Images', error);
  const columns = model.columns;
  const add = () => {
    const k = key || columns[0];
    if (!k || !value.trim()) {
      return;
    }
    model
      .setQuery({ filters: [...model.query.filters, [k, value.trim()]] })
      .catch(fail);
    setValue('');
  };
  const remove = (index: number) => {
    const filters = model.query.filters.filter((_, i) => i !== index);
    model.setQuery({ filters }).catch(fail);
  };
  return (
    <div className="nr-ImageFilters" role="search" aria-label="Filter images">
      <InputGroup
        type="search"
        placeholder="Image name contains…"
        aria-label="Image name contains"
        value={name}
        onChange={e => setName(e.target.value)}
        onKeyDown={e => {
          if (e.key === 'Enter') {
            model.setQuery({ name }).catch(fail);
          }
        }}
      />
      <HTMLSelect
        aria-label="Filter key"
        value={key || columns[0] || ''}
        onChange={e => setKey(e.target.value)}
        options={
          columns.length ? columns : [{ label: '(no key/values)', value: '' }]
        }
      />
      <InputGroup
        placeholder="value"
        aria-label="Filter value"
        value={value}
        onChange={e => setValue(e.target.value)}
        onKeyDown={e => {
          if (e.key === 'Enter') {
            add();
          }
        }}
      />
      <Button small onClick={add} disabled={!columns.length}>
        Add filter
      </Button>
      <span className="nr-ImageFilters-sort">
        sort by
        <HTMLSelect
          aria-label="Sort by"
          value={model.query.sort}
          onChange={e => model.setQuery({ sort: e.target.value }).catch(fail)}
          options={['name', ...columns]}
        />
        <Button
          small
          minimal
          aria-label={`Order: ${model.query.order === 'asc' ? 'ascending' : 'descending'}`}
          onClick={() =>
            model
              .setQuery({ order: model.query.order === 'asc' ? 'desc' : 'asc' })
              .catch(fail)
          }
        >
          {model.query.order === 'asc' ? '▲' : '▼'}
        </Button>
      </span>
      <div className="nr-Chips">
        {model.query.filters.map(([k, v], i) => (
          <span className="nr-Chip" key={`${k}:${v}:${i}`}>
            {k}: {v}
            <button
              type="button"
              aria-label={`Remove filter ${k}: ${v}`}
              onClick={() => remove(i)}
            >
              ×
            </button>
          </span>
        ))}
      </div>
    </div>
  );
}

function Row(props: {
  image: IImageInfo | undefined;
  index: number;
  columns: string[];
  client: RepositoryClient;
  actions: IImageActions;
}): JSX.Element {
  const { image, index, columns, client, actions } = props;
  const style = { top: index * ROW_HEIGHT, height: ROW_HEIGHT };
  if (!image) {
    return (
      <div
        className="nr-ImageRow nr-ImageRow-pending"
        role="row"
        style={style}
        aria-rowindex={index + 2}
      >
        <span role="cell">…</span>
      </div>
    );
  }
  return (
    <div
      className="nr-ImageRow"
      role="row"
      style={style}
      aria-rowindex={index + 2}
      data-image={image.name}
    >
      <span role="cell" className="nr-Col-thumb">
        <button
          type="button"
          className="nr-Thumb"
          title={`View ${image.name}`}
          aria-label={`View ${image.name}`}
          onClick={() => actions.view(image.name)}
        >
          <img
            src={client.url(`${image.thumbnail}?size=64`)}
            alt=""
            loading="lazy"
          />
        </button>
      </span>
      <span role="cell" className="nr-Col-name" title={image.name}>
        {image.name}
      </span>
      <span role="cell" className="nr-Col-axes">
        {image.dims.join(' ')}
      </span>
      <span
        role="cell"
        className="nr-Col-shape"
        title={image.dims.map((d, i) => `${d} ${image.shape[i]}`).join(', ')}
      >
        {image.shape.join(' × ')}
      </span>
      <span
        role="cell"
        className="nr-Col-pixel"
        title="pixel size per axis in nanometres"
      >
        {pixelSizes(image)}
      </span>
      <span role="cell" className="nr-Col-channels">
        {channelsOf(image).map((c, i) => (
          <span
            className="nr-Channel"
            key={i}
            title={c.color ? `${c.name} (${c.color})` : c.name}
          >
            <span
              className="nr-Swatch"
              style={{ background: c.color ?? 'transparent' }}
              aria-hidden="true"
            />
            {c.name}
          </span>
        ))}
      </span>
      <span role="cell" className="nr-Col-dtype">
        {image.dtype}
      </span>
      <span role="cell" className="nr-Col-technique">
        {image.technique}
      </span>
      <span role="cell" className="nr-Col-size">
        {formatBytes(image.size_bytes)}
      </span>
      {columns.map(c => (
        <span
          role="cell"
          className="nr-Col-kv"
          key={c}
          title={image.key_values[c] ?? ''}
        >
          {image.key_values[c] ?? ''}
        </span>
      ))}
      <span role="cell" className="nr-Col-actions">
        <Button
          small
          minimal
          title="Open this image in the viewer"
          onClick={() => actions.view(image.name)}
        >
          View
        </Button>
        <Button
          small
          minimal
          title="Insert a cell opening this image"
          onClick={() => actions.openInNotebook(image.name)}
        >
          Notebook
        </Button>
        <Button
          small
          minimal
          title="View in napari"
          onClick={() => actions.viewInNapari(image.name)}
        >
          napari
        </Button>
        <Button
          small
          minimal
          title="Start a thread on this image"
          onClick={() => actions.discuss(image.name)}
        >
          Discuss
        </Button>
      </span>
    </div>
  );
}

function Table(props: {
  model: ImageTableModel;
  client: RepositoryClient;
  actions: IImageActions;
}): JSX.Element {
  const { model, client, actions } = props;
  const scroller = React.useRef<HTMLDivElement>(null);
  const [range, setRange] = React.useState<[number, number]>([0, 30]);
  const update = React.useCallback(() => {
    const node = scroller.current;
    if (!node) {
      return;
    }
    const first = Math.max(
      0,
      Math.floor(node.scrollTop / ROW_HEIGHT) - OVERSCAN
    );
    const count =
      Math.ceil((node.clientHeight || 600) / ROW_HEIGHT) + 2 * OVERSCAN;
    setRange([first, first + count]);
    model
      .ensureLoaded(first + count)
      .catch(error => notifyError('Images', error));
  }, [model]);
  React.useEffect(() => {
    update();
  }, [update, model.total]);
  const columns = model.columns;
  const total = Math.max(model.total, model.loaded);
  const rows: JSX.Element[] = [];
  for (let i = range[0]; i < Math.min(range[1], total); i++) {
    rows.push(
      <Row
        key={i}
        image={model.row(i)}
        index={i}
        columns={columns}
        client={client}
        actions={actions}
      />
    );
  }
  const template = `64px minmax(6em, 1fr) 4em minmax(7em, 1fr) 8.5em minmax(12em, 2fr) 4.5em 5.5em 5em ${columns
    .map(() => 'minmax(6em, 1fr)')
    .join(' ')} 20em`; // actions: View, Notebook, napari, Discuss
  return (
    <div
      className="nr-ImageTable"
      role="table"
      aria-label="Images"
      aria-rowcount={total + 1}
      style={{ ['--nr-columns' as string]: template }}
    >
      <div className="nr-ImageRow nr-ImageHeader" role="row" aria-rowindex={1}>
        <span role="columnheader" />
        <span role="columnheader">name</span>
        <span role="columnheader">axes</span>
        <span role="columnheader">shape</span>
        <span role="columnheader">pixel size (nm)</span>
        <span role="columnheader">channels</span>
        <span role="columnheader">dtype</span>
        <span role="columnheader">technique</span>
        <span role="columnheader">size</span>
        {columns.map(c => (
          <span role="columnheader" key={c}>
            {c}
          </span>
        ))}
        <span role="columnheader">actions</span>
      </div>
      <div
        className="nr-ImageScroller"
        ref={scroller}
        onScroll={update}
        tabIndex={0}
      >
        <div className="nr-ImageCanvas" style={{ height: total * ROW_HEIGHT }}>
          {rows}
        </div>
      </div>
    </div>
  );
}

/** Filters, a status line and the virtualised table. */
export function ImageTable(props: {
  model: ImageTableModel;
  client: RepositoryClient;
  actions: IImageActions;
}): JSX.Element {
  const { model } = props;
  return (
    <UseSignal signal={model.changed}>
      {() => (
        <div className="nr-Images">
          <FilterBar model={model} />
          <div className="nr-ImagesStatus" role="status" aria-live="polite">
            {model.loading && model.loaded === 0
              ? 'Loading images…'
              : `${model.total.toLocaleString()} images${model.query.filters.length || model.query.name ? ' match' : ''}`}
          </div>
          <Table {...props} />
        </div>
      )}
    </UseSignal>
  );
}
