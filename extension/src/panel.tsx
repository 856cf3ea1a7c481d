/**
 * The Repository panel (left sidebar): a search box, facets and one page of results.
 */
import {
  Button,
  InputGroup,
  ReactWidget,
  UseSignal
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { IDatasetSummary, RepositoryClient } from './api';
import { notifyError } from './actions';
import { repositoryIcon } from './icons';
import { FACET_FIELDS, SearchModel } from './models';

/** How long typing may pause before the search runs (Enter searches at once). */
const TYPING_DELAY_MS = 100;

export interface IRepositoryPanelOptions {
  client: RepositoryClient;
  /** open a dataset's page */
  open: (accession: string) => void;
  pageSize: number;
}

function EmbargoBadge(props: { item: IDatasetSummary }): JSX.Element | null {
  if (props.item.access !== 'embargoed') {
    return null;
  }
  const until = props.item.embargo_until
    ? ` until ${props.item.embargo_until}`
    : '';
  return (
    <span className="nr-Badge nr-Badge-embargo" title={`Under embargo${until}`}>
      Embargoed{until}
    </span>
  );
}

function ResultItem(props: {
  item: IDatasetSummary;
  client: RepositoryClient;
  open: (accession: string) => void;
}): JSX.Element {
  const { item, client, open } = props;
  const onKey = (event: React.KeyboardEvent) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      open(item.accession);
    }
  };
  return (
    <li
      className="nr-Result"
      role="button"
      tabIndex={0}
      data-accession={item.accession}
      aria-label={`${item.accession} ${item.title}`}
      onClick={() => open(item.accession)}
      onKeyDown={onKey}
    >
      <div className="nr-Result-thumb">
        {item.thumbnail ? (
          <img
            src={client.url(`${item.thumbnail}?size=64`)}
            alt=""
            loading="lazy"
          />
        ) : (
          <repositoryIcon.react tag="span" />
        )}
      </div>
      <div className="nr-Result-text">
        <div className="nr-Result-head">
          <span className="nr-Result-accession">{item.accession}</span>
          <span className="nr-Result-version">v{item.latest_version}</span>
          <EmbargoBadge item={item} />
        </div>
        <div className="nr-Result-title">{item.title}</div>
      </div>
    </li>
  );
}

function Facets(props: { model: SearchModel }): JSX.Element {
  const { model } = props;
  const toggle = (field: string, value: string) => {
    model
      .toggleFacet(field, value)
      .catch(error => notifyError('Search', error));
  };
  return (
    <div className="nr-Facets" aria-label="Facets">
      {FACET_FIELDS.map(([field, label]) => {
        const values = model.facets[field] ?? [];
        const chosen = model.selected[field];
        if (values.length === 0 && !chosen) {
          return null;
        }
        return (
          <fieldset className="nr-Facet" key={field} data-facet={field}>
            <legend>{label}</legend>
            {values.map(v => (
              <button
                key={v.value}
                type="button"
                className="nr-FacetValue"
                aria-pressed={chosen === v.value}
                data-value={v.value}
                onClick={() => toggle(field, v.value)}
              >
                <span className="nr-FacetValue-label">
                  {field === 'access' && v.value === 'embargoed'
                    ? 'embargoed (granted)'
                    : v.display}
                </span>
                <span className="nr-FacetValue-count">{v.count}</span>
              </button>
            ))}
          </fieldset>
        );
      })}
    </div>
  );
}

function SearchView(props: {
  model: SearchModel;
  client: RepositoryClient;
  open: (accession: string) => void;
}): JSX.Element {
  const { model, client, open } = props;
  const [text, setText] = React.useState(model.text);
  const timer = React.useRef<number | null>(null);
  const run = (value: string) => {
    if (timer.current !== null) {
      window.clearTimeout(timer.current);
      timer.current = null;
    }
    model.setText(value).catch(error => notifyError('Search', error));
  };
  const onChange = (event: React.ChangeEvent<HTMLInputElement>) => {
    const value = event.target.value;
    setText(value);
    if (timer.current !== null) {
      window.clearTimeout(timer.current);
    }
    timer.current = window.setTimeout(() => run(value), TYPING_DELAY_MS);
  };
  const page = (fn: () => Promise<void>) => {
    fn().catch(error => notifyError('Search', error));
  };
  const first = model.page * model.pageSize + 1;
  const last = model.page * model.pageSize + model.results.length;
  return (
    <div className="nr-Search">
      <div className="nr-SearchBox">
        <InputGroup
          type="search"
          placeholder="Search: words, technique:STED …"
          aria-label="Search datasets"
          title="Words match title, metadata, image names and threads; field:value filters (technique, organism, fluorophore, license, access, author, keyword, target, cell_line, instrument)"
          value={text}
          onChange={onChange}
          onKeyDown={event => {
            // Enter searches at once; not again if the typing pause already did (a failed
            // search is repeated by changing the text, or with Enter once it has changed)
            const pending = timer.current !== null;
            if (event.key === 'Enter' && (pending || text !== model.text)) {
              run(text);
            }
          }}
          rightIcon="ui-components:search"
        />
      </div>
      <Facets model={model} />
      <div className="nr-ResultsHeader" role="status" aria-live="polite">
        {model.loading
          ? 'Searching…'
          : model.total === 0
            ? 'No datasets match'
            : `${first}–${last} of ${model.total.toLocaleString()} datasets`}
      </div>
      <ul
        className="nr-Results"
        aria-label="Datasets"
        aria-busy={model.loading}
      >
        {model.results.map(item => (
          <ResultItem
            key={item.accession}
            item={item}
            client={client}
            open={open}
          />
        ))}
      </ul>
      <div className="nr-Pager">
        <Button
          small
          minimal
          disabled={!model.hasPrevious || model.loading}
          onClick={() => page(() => model.previousPage())}
          aria-label="Previous page"
        >
          ‹ Previous
        </Button>
        <span className="nr-Pager-page">page {model.page + 1}</span>
        <Button
          small
          minimal
          disabled={!model.hasNext || model.loading}
          onClick={() => page(() => model.nextPage())}
          aria-label="Next page"
        >
          Next ›
        </Button>
      </div>
    </div>
  );
}

/** The sidebar widget. */
export class RepositoryPanel extends ReactWidget {
  constructor(options: IRepositoryPanelOptions) {
    super();
    this._options = options;
    this.model = new SearchModel(options.client, options.pageSize);
    this.id = 'nanorepo-repository';
    this.addClass('nr-RepositoryPanel');
    this.title.icon = repositoryIcon;
    this.title.caption = 'Repository: search and open datasets';
  }

  readonly model: SearchModel;

  /** Run the first search (all datasets the user may see). */
  start(): void {
    this.model.search().catch(error => notifyError('Search', error));
  }

  /** Put the keyboard focus in the search box. */
  focusSearch(): void {
    this.node.querySelector<HTMLInputElement>('input[type="search"]')?.focus();
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => (
          <SearchView
            model={this.model}
            client={this._options.client}
            open={this._options.open}
          />
        )}
      </UseSignal>
    );
  }

  private _options: IRepositoryPanelOptions;
}
