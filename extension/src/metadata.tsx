/**
 * The sealed (immutable) metadata of a version, rendered for people: the study's authors
 * first, as names with their ORCID links; then the REMBI sections in REMBI order (study,
 * biosample, specimen, image acquisition, image correlation, analysed data) and any other
 * section after them; empty sections are left out and a section that holds one value is
 * shown as that value under its heading, never under a "value" label. Also the image
 * table's per-image facts: pixel size per axis and channels with their colours.
 */
import * as React from 'react';

import { IImageInfo, ISealedMetadata } from './api';
import { formatValue } from './models';

/** The REMBI sections, in REMBI's order. */
export const REMBI_ORDER = [
  'study',
  'biosample',
  'specimen',
  'image_acquisition',
  'image_correlation',
  'analysed_data'
];

/** Sections of the sealed record that are not shown as sections (per-image records
 * are the image table's; the schema name is not for people). */
const NOT_SECTIONS = new Set(['images', 'schema']);

export interface IAuthor {
  name: string;
  orcid: string | null;
  affiliation: string | null;
}

const ORCID_RE = /^(?:https?:\/\/orcid\.org\/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$/;

/** The ORCID iD in `value` (bare or as its URL), or null. */
export function orcidId(value: unknown): string | null {
  const m = typeof value === 'string' ? ORCID_RE.exec(value.trim()) : null;
  return m ? m[1] : null;
}

/** The study's authors (names, ORCID iDs, affiliations) in their order. */
export function authorsOf(
  metadata: { [section: string]: unknown } | null
): IAuthor[] {
  const study = metadata?.study;
  const list =
    study && typeof study === 'object'
      ? (study as { authors?: unknown }).authors
      : null;
  if (!Array.isArray(list)) {
    return [];
  }
  return list
    .map(a => {
      if (typeof a === 'string') {
        return { name: a, orcid: null, affiliation: null };
      }
      const o = (a ?? {}) as { [key: string]: unknown };
      const name = typeof o.name === 'string' ? o.name : '';
      const affiliation =
        typeof o.affiliation === 'string' ? o.affiliation : null;
      return { name, orcid: orcidId(o.orcid), affiliation };
    })
    .filter(a => a.name.length > 0);
}

/** Whether `value` says nothing (null, empty text, list or object). */
export function isEmpty(value: unknown): boolean {
  if (value === null || value === undefined) {
    return true;
  }
  if (typeof value === 'string') {
    return value.trim() === '';
  }
  if (Array.isArray(value)) {
    return value.every(isEmpty);
  }
  if (typeof value === 'object') {
    return Object.values(value as { [key: string]: unknown }).every(isEmpty);
  }
  return false;
}

/** The sections to show, in REMBI order then the others by name; empty ones left out;
 * the study without its authors (shown first on their own). */
export function orderedSections(metadata: {
  [section: string]: unknown;
}): Array<[string, unknown]> {
  const keys = Object.keys(metadata).filter(k => !NOT_SECTIONS.has(k));
  const rank = (k: string) => {
    const i = REMBI_ORDER.indexOf(k);
    return i < 0 ? REMBI_ORDER.length : i;
  };
  keys.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const out: Array<[string, unknown]> = [];
  for (const k of keys) {
    let value = metadata[k];
    if (
      k === 'study' &&
      value &&
      typeof value === 'object' &&
      !Array.isArray(value)
    ) {
      const { authors: _authors, ...rest } = value as {
        [key: string]: unknown;
      };
      value = rest;
    }
    if (!isEmpty(value)) {
      out.push([k, value]);
    }
  }
  return out;
}

/** `snake_case` as words. */
export function label(key: string): string {
  return key.replace(/_/g, ' ');
}

/** Pixel size per spatial axis in nm, in the image's axis order: `z 125 · y 40 · x 40`. */
export function pixelSizes(
  image: Pick<IImageInfo, 'dims' | 'pixel_sizes'>
): string {
  const parts = image.dims
    .filter(
      d =>
        typeof image.pixel_sizes[d] === 'number' && ['x', 'y', 'z'].includes(d)
    )
    .map(d => `${d} ${Number(image.pixel_sizes[d].toPrecision(4))}`);
  return parts.length ? parts.join(' · ') : '—';
}

export interface IChannel {
  name: string;
  /** CSS colour, `#RRGGBB` */
  color: string | null;
}

/** The image's channels: name and colour (`#RRGGBB` when stored as hex). */
export function channelsOf(image: Pick<IImageInfo, 'channels'>): IChannel[] {
  return image.channels.map((c, i) => {
    const name = typeof c.name === 'string' && c.name ? c.name : `channel ${i}`;
    const hex =
      typeof c.color === 'string' && /^[0-9A-Fa-f]{6}$/.test(c.color)
        ? `#${c.color.toUpperCase()}`
        : null;
    return { name, color: hex };
  });
}

function Value(props: { value: unknown }): JSX.Element {
  const { value } = props;
  if (Array.isArray(value) && value.some(v => v && typeof v === 'object')) {
    return (
      <ul className="nr-MetaList">
        {value.map((v, i) => (
          <li key={i}>{formatValue(v)}</li>
        ))}
      </ul>
    );
  }
  const orcid = orcidId(value);
  if (orcid) {
    return <OrcidLink id={orcid} />;
  }
  return <>{formatValue(value)}</>;
}

function OrcidLink(props: { id: string }): JSX.Element {
  return (
    <a
      className="nr-Orcid"
      href={`https://orcid.org/${props.id}`}
      target="_blank"
      rel="noopener noreferrer"
      title={`ORCID ${props.id}`}
    >
      ORCID {props.id}
    </a>
  );
}

/** The authors, first on the metadata tab. */
export function Authors(props: { authors: IAuthor[] }): JSX.Element | null {
  if (!props.authors.length) {
    return null;
  }
  return (
    <section className="nr-Authors" aria-label="Authors">
      <h4>Authors</h4>
      <ul>
        {props.authors.map((a, i) => (
          <li key={i}>
            <span className="nr-AuthorName">{a.name}</span>
            {a.orcid ? (
              <>
                {' '}
                <OrcidLink id={a.orcid} />
              </>
            ) : null}
            {a.affiliation ? (
              <span className="nr-Meta"> · {a.affiliation}</span>
            ) : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** One section: a list of fields, or its one value under its heading. */
export function Section(props: { title: string; value: unknown }): JSX.Element {
  const { value } = props;
  const fields =
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.entries(value as { [key: string]: unknown }).filter(
          ([, v]) => !isEmpty(v)
        )
      : null;
  return (
    <section
      className="nr-MetaSection"
      aria-label={label(props.title)}
      data-section={props.title}
    >
      <h4>{label(props.title)}</h4>
      {fields ? (
        <dl>
          {fields.map(([k, v]) => (
            <React.Fragment key={k}>
              <dt>{label(k)}</dt>
              <dd>
                <Value value={v} />
              </dd>
            </React.Fragment>
          ))}
        </dl>
      ) : (
        <div className="nr-MetaValue">
          <Value value={value} />
        </div>
      )}
    </section>
  );
}

/** The sealed record of a version: digest, authors, then the sections. */
export function Immutable(props: {
  metadata: ISealedMetadata | null;
}): JSX.Element {
  const { metadata } = props;
  if (!metadata) {
    return <div className="nr-Loading">Loading metadata…</div>;
  }
  return (
    <div className="nr-Immutable">
      <h3>
        Immutable metadata <span className="nr-Badge">sealed · read-only</span>
      </h3>
      <p
        className="nr-Digest"
        title="SHA-256 of the sealed metadata, checked by the service"
      >
        sha256:<code>{metadata.sha256}</code>
      </p>
      <Authors authors={authorsOf(metadata.metadata)} />
      {orderedSections(metadata.metadata).map(([k, v]) => (
        <Section key={k} title={k} value={v} />
      ))}
    </div>
  );
}
