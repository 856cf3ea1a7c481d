/**
 * Shareable view links: `ACC@vN/image?x=x0,x1&y=y0,y1&z=Z&t=T&c=0,2`.
 *
 * The region is in nanometres from the image's origin (the outer corner of its first
 * pixel), as thread anchors are (`nanorepo/annotations/_anchor.py`), so a link means the
 * same view at every pyramid level and in napari (`nanorepo view LINK`). `z` and `t` are
 * plane indices, `c` the visible channels. Everything after the image name is optional.
 */

/** A view of one image of a dataset version. */
export interface IViewLink {
  accession: string;
  version: number;
  image: string;
  /** [x0, x1] and [y0, y1] in nanometres, or null for "the whole image". */
  x: [number, number] | null;
  y: [number, number] | null;
  z: number;
  t: number;
  /** Visible channels, or null for the stored defaults. */
  c: number[] | null;
}

const LINK = /^([A-Za-z][A-Za-z0-9_-]*)@v(\d+)\/([A-Za-z0-9._-]+)(?:\?(.*))?$/;

function pair(field: string, value: string): [number, number] {
  const parts = value.split(',').map(Number);
  if (
    parts.length !== 2 ||
    !parts.every(Number.isFinite) ||
    parts[0] >= parts[1]
  ) {
    throw new Error(
      `${field}=${value} is not a range: write ${field}=start,end in nanometres with start < end`
    );
  }
  return [parts[0], parts[1]];
}

function index(field: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) {
    throw new Error(
      `${field}=${value} is not a plane index: write a whole number ≥ 0`
    );
  }
  return Number(value);
}

/** Read a view link; throws an Error saying what is wrong and how to write it. */
export function parseViewLink(text: string): IViewLink {
  const m = LINK.exec(text.trim());
  if (!m) {
    throw new Error(
      `"${text}" is not a view link: write ACCESSION@vN/IMAGE, e.g. S-NANO1@v2/npc_sted?x=0,2000&y=0,2000`
    );
  }
  const link: IViewLink = {
    accession: m[1],
    version: Number(m[2]),
    image: m[3],
    x: null,
    y: null,
    z: 0,
    t: 0,
    c: null
  };
  for (const part of (m[4] ?? '').split('&').filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    switch (key) {
      case 'x':
        link.x = pair('x', value);
        break;
      case 'y':
        link.y = pair('y', value);
        break;
      case 'z':
        link.z = index('z', value);
        break;
      case 't':
        link.t = index('t', value);
        break;
      case 'c':
        link.c = value === '' ? [] : value.split(',').map(v => index('c', v));
        break;
      default:
        throw new Error(
          `unknown part "${key}" in the view link: it may hold x, y (nanometres), z, t and c`
        );
    }
  }
  return link;
}

function nm(v: number): string {
  return String(Math.round(v * 10) / 10);
}

/** Write a view link (the inverse of {@link parseViewLink}). */
export function formatViewLink(link: IViewLink): string {
  const parts: string[] = [];
  if (link.x) {
    parts.push(`x=${nm(link.x[0])},${nm(link.x[1])}`);
  }
  if (link.y) {
    parts.push(`y=${nm(link.y[0])},${nm(link.y[1])}`);
  }
  if (link.z) {
    parts.push(`z=${link.z}`);
  }
  if (link.t) {
    parts.push(`t=${link.t}`);
  }
  if (link.c) {
    parts.push(`c=${link.c.join(',')}`);
  }
  const base = `${link.accession}@v${link.version}/${link.image}`;
  return parts.length ? `${base}?${parts.join('&')}` : base;
}
