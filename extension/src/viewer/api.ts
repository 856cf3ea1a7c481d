/**
 * What the viewer reads: the image's OME-Zarr pyramid, streamed from the service's Zarr
 * endpoint through the forwarder of the user's own Jupyter server (no second login; the
 * service decides what the user may see, so an embargoed image answers 404 before any
 * chunk), and the region threads it draws.
 *
 * The pyramid is opened with zarrita (Zarr v2 and v3 with sharding: the NGFF 0.5 stored
 * here is v3 sharded) and handed to viv as one `ZarrPixelSource` per level; viv then asks
 * only for the tiles on screen at the level that fits the zoom.
 */
import { ServerConnection } from '@jupyterlab/services';
import { ZarrPixelSource, loadOmeZarrFromStore } from '@vivjs/loaders';
import * as zarr from 'zarrita';

import { IImageInfo, IThread, RepositoryClient } from '../api';
import { IResponse, requestAPIWithMeta } from '../request';

/** A channel as the viewer shows it. */
export interface IViewerChannel {
  name: string;
  /** [r, g, b] 0..255 */
  rgb: [number, number, number];
  /** The stored contrast window (start, end) and the range a slider may move in. */
  window: [number, number];
  range: [number, number];
  visible: boolean;
}

/** An opened image: one pixel source per level, its channels and its pixel size. */
export interface IPyramid {
  levels: ZarrPixelSource<string[]>[];
  labels: string[];
  channels: IViewerChannel[];
  /** Nanometres per pixel of level 0 along x and y. */
  pixelNm: { x: number; y: number };
  sizes: { z: number; t: number; c: number };
}

/** Colours for channels that store none (the colours napari and OMERO start with). */
const DEFAULT_COLOURS: Array<[number, number, number]> = [
  [0, 255, 0],
  [255, 0, 255],
  [0, 255, 255],
  [255, 0, 0],
  [0, 0, 255],
  [255, 255, 0]
];

function rgbOf(hex: unknown, i: number): [number, number, number] {
  if (typeof hex === 'string' && /^[0-9A-Fa-f]{6}$/.test(hex)) {
    const n = parseInt(hex, 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  return DEFAULT_COLOURS[i % DEFAULT_COLOURS.length];
}

function dtypeRange(dtype: string): [number, number] {
  const m = /^u?int(8|16|32)$/.exec(dtype);
  if (m) {
    const bits = Number(m[1]);
    return dtype.startsWith('u')
      ? [0, 2 ** bits - 1]
      : [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1];
  }
  return [0, 1];
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** What the viewer reads of the NGFF attributes beyond viv: OMERO's channels. */
interface IOmero {
  omero?: {
    channels?: Array<{
      label?: string;
      color?: string;
      active?: boolean;
      window?: { start?: number; end?: number; min?: number; max?: number };
    }>;
  };
}

/** The store of an image's Zarr through the forwarder, sent with the Jupyter token. */
export function zarrStore(
  client: RepositoryClient,
  image: Pick<IImageInfo, 'zarr'>
): zarr.FetchStore {
  const settings: ServerConnection.ISettings = client.settings;
  const headers: Record<string, string> = {};
  if (settings.token) {
    headers['Authorization'] = `token ${settings.token}`;
  }
  const url = client.url(image.zarr).replace(/\/+$/, '');
  return new zarr.FetchStore(new URL(url, window.location.href).href, {
    overrides: { headers, credentials: 'same-origin' },
    useSuffixRequest: true
  });
}

/** Open an image's pyramid for viv. */
export async function openPyramid(
  client: RepositoryClient,
  image: IImageInfo
): Promise<IPyramid> {
  // viv reads the NGFF multiscales (0.4 at the top of the attributes, 0.5 under `ome`)
  // and makes one pixel source per level, its tiles the size of the chunks
  const { data: levels, metadata } = await loadOmeZarrFromStore(
    zarrStore(client, image)
  );
  const ome = metadata as unknown as IOmero;
  const labels = levels[0].labels.map(a => String(a).toLowerCase());
  const shape = levels[0].shape;
  const size = (axis: string): number => {
    const i = labels.indexOf(axis);
    return i < 0 ? 1 : shape[i];
  };
  const range = dtypeRange(levels[0].dtype.toLowerCase());
  const stored = ome.omero?.channels ?? [];
  const infos = image.channels;
  const channels: IViewerChannel[] = [];
  for (let i = 0; i < size('c'); i++) {
    const s = stored[i] ?? {};
    const info = infos[i] ?? {};
    const w = s.window ?? {};
    const start = num(w.start) ?? range[0];
    const end = num(w.end) ?? range[1];
    channels.push({
      name: String(info.name ?? s.label ?? `channel ${i}`),
      rgb: rgbOf(info.color ?? s.color, i),
      window: [start, end > start ? end : start + 1],
      range: [
        Math.min(num(w.min) ?? range[0], start),
        Math.max(num(w.max) ?? range[1], end)
      ],
      visible: s.active !== false
    });
  }
  if (!channels.length) {
    channels.push({
      name: String(infos[0]?.name ?? 'intensity'),
      rgb: [255, 255, 255],
      window: range,
      range,
      visible: true
    });
  }
  return {
    levels,
    labels,
    channels,
    pixelNm: {
      x: image.pixel_sizes['x'] ?? 1,
      y: image.pixel_sizes['y'] ?? 1
    },
    sizes: { z: size('z'), t: size('t'), c: size('c') }
  };
}

/** All threads on one image (every page). */
export async function imageThreads(
  client: RepositoryClient,
  accession: string,
  image: string
): Promise<IThread[]> {
  const out: IThread[] = [];
  let cursor: string | null = null;
  do {
    const page = await client.threads(accession, { image, cursor });
    out.push(...page.items);
    cursor = page.next;
  } while (cursor);
  return out;
}

/** A box region in nanometres, as the API and napari anchor it. */
export interface IBoxNm {
  x: [number, number];
  y: [number, number];
}

/** Post a thread on a box of an image (a region anchor in nanometres). */
export function createRegionThread(
  client: RepositoryClient,
  accession: string,
  image: string,
  box: IBoxNm,
  title: string,
  body: string,
  plane: { z: number; t: number; zNm: number | null }
): Promise<IResponse<IThread>> {
  const anchor: Record<string, unknown> = {
    kind: 'region',
    image,
    unit: 'nanometer',
    shape: 'box',
    x: box.x,
    y: box.y
  };
  if (plane.zNm !== null) {
    anchor['z'] = [plane.zNm, plane.zNm];
  }
  return requestAPIWithMeta<IThread>(
    `datasets/${encodeURIComponent(accession)}/threads`,
    {
      method: 'POST',
      body: JSON.stringify({ title, body, anchor }),
      headers: { 'Content-Type': 'application/json' }
    },
    client.settings
  );
}

/** The box (nanometres) of a region thread's anchor, or null if it is not a region. */
export function regionOf(thread: IThread): [number, number][] | null {
  const a = thread.anchor as {
    kind?: string;
    shape?: string;
    x?: number[];
    y?: number[];
    points?: number[][];
  };
  if (a.kind !== 'region') {
    return null;
  }
  if (a.shape === 'box' && Array.isArray(a.x) && Array.isArray(a.y)) {
    const [x0, x1] = a.x as number[];
    const [y0, y1] = a.y as number[];
    return [
      [x0, y0],
      [x1, y0],
      [x1, y1],
      [x0, y1]
    ];
  }
  if (a.shape === 'polygon' && Array.isArray(a.points)) {
    return (a.points as number[][]).map(p => [p[0], p[1]] as [number, number]);
  }
  return null;
}
