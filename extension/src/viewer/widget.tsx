/**
 * The image viewer: a JupyterLab main-area widget showing one image of a dataset version
 * with viv (deck.gl) — multiscale tiles on screen only, channels with their stored names,
 * colours and windows, z/t sliders, a scale bar, the cursor in nanometres with the pixel
 * values under it — and the image's region threads drawn where they are. "Draw region"
 * lets the user drag a box and post a region thread in nanometres; "Copy link" copies the
 * view as `ACC@vN/image?x=..&y=..`.
 */
import { Clipboard, Notification, ReactWidget } from '@jupyterlab/apputils';
import { PolygonLayer, TextLayer } from '@deck.gl/layers';
import { PictureInPictureViewer } from '@hms-dbmi/viv';
import * as React from 'react';

import { IImageInfo, IThread, RepositoryClient } from '../api';
import { notifyError } from '../actions';
import {
  IPyramid,
  createRegionThread,
  imageThreads,
  openPyramid,
  regionOf
} from './api';
import { IViewLink, formatViewLink } from './link';

const DETAIL = 'detail';
/** viv draws a layer only in the views whose id it carries as `-#id#`. */
const VIV_DETAIL = `-#${DETAIL}#`;

/** A region thread as drawn: its outline in level-0 pixels. */
interface IShape {
  th: IThread;
  polygon: [number, number][];
}

interface IViewState {
  target: [number, number, number];
  zoom: number;
  id: string;
}

function fitView(
  box: { x: [number, number]; y: [number, number] },
  size: { width: number; height: number }
): IViewState {
  const w = Math.max(1, box.x[1] - box.x[0]);
  const h = Math.max(1, box.y[1] - box.y[0]);
  const zoom = Math.log2(Math.min(size.width / w, size.height / h));
  return {
    target: [(box.x[0] + box.x[1]) / 2, (box.y[0] + box.y[1]) / 2, 0],
    zoom,
    id: DETAIL
  };
}

/** Whether point (x, y) lies inside the polygon (ray casting). */
function inside(x: number, y: number, polygon: [number, number][]): boolean {
  let hit = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i];
    const [xj, yj] = polygon[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) {
      hit = !hit;
    }
  }
  return hit;
}

function formatNm(v: number): string {
  return Math.abs(v) >= 1000
    ? `${(v / 1000).toFixed(2)} µm`
    : `${v.toFixed(0)} nm`;
}

/** The viewer's React body. */
export function ImageViewer(props: {
  client: RepositoryClient;
  image: IImageInfo;
  link: IViewLink;
}): JSX.Element {
  const { client, image, link } = props;
  const host = React.useRef<HTMLDivElement>(null);
  const [size, setSize] = React.useState({ width: 800, height: 600 });
  // the first view waits for the canvas's real size (a link's region must fit it exactly)
  const [measured, setMeasured] = React.useState(false);
  const [pyramid, setPyramid] = React.useState<IPyramid | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [visible, setVisible] = React.useState<boolean[]>([]);
  const [windows, setWindows] = React.useState<Array<[number, number]>>([]);
  const [z, setZ] = React.useState(link.z);
  const [t, setT] = React.useState(link.t);
  const [view, setView] = React.useState<IViewState | null>(null);
  // the cursor: where it is (nm) and the pixel values under it
  const [position, setPosition] = React.useState('');
  const [values, setValues] = React.useState('');
  const [threads, setThreads] = React.useState<IThread[]>([]);
  const [selected, setSelected] = React.useState<IThread | null>(null);
  const [drawing, setDrawing] = React.useState(false);
  const [drag, setDrag] = React.useState<
    [number, number, number, number] | null
  >(null);
  const [pending, setPending] = React.useState<
    [number, number, number, number] | null
  >(null);
  const [title, setTitle] = React.useState('');
  const [body, setBody] = React.useState('');
  // how many times the tiles on screen finished loading (tests and screenshots wait on it)
  const [loads, setLoads] = React.useState(0);
  const [pressed, setPressed] = React.useState<[number, number] | null>(null);

  React.useEffect(() => {
    const node = host.current;
    if (!node) {
      return;
    }
    const observer = new ResizeObserver(() => {
      const r = node.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) {
        setSize({ width: Math.floor(r.width), height: Math.floor(r.height) });
        setMeasured(true);
      }
    });
    observer.observe(node);
    return () => observer.disconnect();
  }, []);

  React.useEffect(() => {
    let live = true;
    openPyramid(client, image).then(
      p => {
        if (!live) {
          return;
        }
        setPyramid(p);
        setVisible(
          p.channels.map((c, i) => (link.c ? link.c.includes(i) : c.visible))
        );
        setWindows(p.channels.map(c => c.window));
      },
      e => live && setError(e instanceof Error ? e.message : String(e))
    );
    imageThreads(client, link.accession, image.name).then(
      ts => live && setThreads(ts),
      e => notifyError('Could not load the threads', e)
    );
    return () => {
      live = false;
    };
  }, [client, image, link]);

  // The first view: the link's region, else the whole image.
  React.useEffect(() => {
    if (!pyramid || view || !measured) {
      return;
    }
    const [h, w] = pyramid.levels[0].shape.slice(-2);
    const box = {
      x: (link.x
        ? [link.x[0] / pyramid.pixelNm.x, link.x[1] / pyramid.pixelNm.x]
        : [0, w]) as [number, number],
      y: (link.y
        ? [link.y[0] / pyramid.pixelNm.y, link.y[1] / pyramid.pixelNm.y]
        : [0, h]) as [number, number]
    };
    setView(fitView(box, size));
  }, [pyramid, size, view, link, measured]);

  if (error) {
    return (
      <div className="nr-Viewer-error" role="alert">
        {error}
      </div>
    );
  }

  /** Screen position (relative to the canvas) → level-0 pixel coordinates. */
  const toImage = (sx: number, sy: number): [number, number] => {
    const v = view ?? { target: [0, 0, 0], zoom: 0 };
    const s = 2 ** v.zoom;
    return [
      v.target[0] + (sx - size.width / 2) / s,
      v.target[1] + (sy - size.height / 2) / s
    ];
  };

  const currentLink = (): string => {
    const [x0, y0] = toImage(0, 0);
    const [x1, y1] = toImage(size.width, size.height);
    const px = pyramid?.pixelNm ?? { x: 1, y: 1 };
    return formatViewLink({
      ...link,
      image: image.name,
      x: [x0 * px.x, x1 * px.x],
      y: [y0 * px.y, y1 * px.y],
      z,
      t,
      c: visible.flatMap((v, i) => (v ? [i] : []))
    });
  };

  const layers: unknown[] = [];
  let shapes: IShape[] = [];
  if (pyramid) {
    const px = pyramid.pixelNm;
    const data = threads
      .map(th => ({ th, ring: regionOf(th) }))
      .filter(d => d.ring !== null)
      .map(d => ({
        th: d.th,
        polygon: d.ring!.map(
          ([x, y]) => [x / px.x, y / px.y] as [number, number]
        )
      }));
    shapes = data;
    layers.push(
      new PolygonLayer<IShape>({
        id: `nr-threads${VIV_DETAIL}`,
        data,
        pickable: false,
        stroked: true,
        filled: true,
        getPolygon: (d: IShape) => d.polygon,
        getFillColor: (d: IShape) =>
          d.th.status === 'open' ? [255, 200, 0, 40] : [160, 160, 160, 15],
        getLineColor: (d: IShape) =>
          d.th.status === 'open' ? [255, 200, 0, 255] : [160, 160, 160, 120],
        lineWidthUnits: 'pixels',
        getLineWidth: (d: IShape) => (d.th.status === 'open' ? 2 : 1)
      }),
      new TextLayer<IShape>({
        id: `nr-thread-titles${VIV_DETAIL}`,
        data,
        getPosition: (d: IShape) => d.polygon[0],
        getText: (d: IShape) => `#${d.th.id} ${d.th.title}`,
        getColor: (d: IShape) =>
          d.th.status === 'open' ? [255, 220, 80, 255] : [180, 180, 180, 160],
        getSize: 13,
        getTextAnchor: 'start',
        getAlignmentBaseline: 'bottom',
        characterSet: 'auto'
      })
    );
  }

  const selection = pyramid
    ? pyramid.channels.map((_, c) => {
        const sel: Record<string, number> = {};
        if (pyramid.labels.includes('c')) {
          sel.c = c;
        }
        if (pyramid.labels.includes('z')) {
          sel.z = z;
        }
        if (pyramid.labels.includes('t')) {
          sel.t = t;
        }
        return sel;
      })
    : [];

  const onDown = (e: React.MouseEvent): void => {
    const r = (e.currentTarget as HTMLElement).getBoundingClientRect();
    const p = toImage(e.clientX - r.left, e.clientY - r.top);
    setDrag([p[0], p[1], p[0], p[1]]);
  };
  const onMove = (e: React.MouseEvent): void => {
    if (!drag) {
      return;
    }
    const r = (e.currentTarget as HTMLElement).getBoundingClientRect();
    const p = toImage(e.clientX - r.left, e.clientY - r.top);
    setDrag([drag[0], drag[1], p[0], p[1]]);
  };
  const onUp = (): void => {
    if (
      drag &&
      Math.abs(drag[2] - drag[0]) > 1 &&
      Math.abs(drag[3] - drag[1]) > 1
    ) {
      setPending(drag);
      setDrawing(false);
    }
    setDrag(null);
  };

  const post = async (): Promise<void> => {
    if (!pyramid || !pending) {
      return;
    }
    const px = pyramid.pixelNm;
    const [h, w] = pyramid.levels[0].shape.slice(-2);
    const clamp = (v: number, hi: number): number =>
      Math.min(Math.max(v, 0), hi);
    const xs = [pending[0], pending[2]]
      .map(v => clamp(v, w) * px.x)
      .sort((a, b) => a - b);
    const ys = [pending[1], pending[3]]
      .map(v => clamp(v, h) * px.y)
      .sort((a, b) => a - b);
    const zNm =
      pyramid.sizes.z > 1 && image.pixel_sizes['z']
        ? z * image.pixel_sizes['z']
        : null;
    try {
      const answer = await createRegionThread(
        client,
        link.accession,
        image.name,
        { x: [xs[0], xs[1]], y: [ys[0], ys[1]] },
        title.trim(),
        body.trim(),
        { z, t, zNm }
      );
      setThreads([...threads, answer.data]);
      setPending(null);
      setTitle('');
      setBody('');
      Notification.success(`Posted thread #${answer.data.id}`, {
        autoClose: 3000
      });
    } catch (e) {
      notifyError('Could not post the region thread', e);
    }
  };

  const box = drag ?? pending;
  const boxStyle = (): React.CSSProperties | undefined => {
    if (!box || !view) {
      return undefined;
    }
    const s = 2 ** view.zoom;
    const sx = (x: number): number => (x - view.target[0]) * s + size.width / 2;
    const sy = (y: number): number =>
      (y - view.target[1]) * s + size.height / 2;
    return {
      left: Math.min(sx(box[0]), sx(box[2])),
      top: Math.min(sy(box[1]), sy(box[3])),
      width: Math.abs(sx(box[2]) - sx(box[0])),
      height: Math.abs(sy(box[3]) - sy(box[1]))
    };
  };

  return (
    <div
      className="nr-Viewer"
      data-image={image.name}
      data-state={loads > 0 ? 'ready' : 'loading'}
      data-loads={loads}
      data-view={
        view
          ? JSON.stringify({
              target: view.target,
              zoom: view.zoom,
              width: size.width,
              height: size.height,
              pixelNm: pyramid?.pixelNm
            })
          : ''
      }
      data-threads={threads.length}
    >
      <div className="nr-Viewer-bar">
        {pyramid?.channels.map((c, i) => (
          <span className="nr-Viewer-channel" key={i}>
            <label>
              <input
                type="checkbox"
                checked={visible[i] ?? false}
                aria-label={`show channel ${c.name}`}
                onChange={e => {
                  const next = [...visible];
                  next[i] = e.target.checked;
                  setVisible(next);
                }}
              />
              <span
                className="nr-Swatch"
                style={{ background: `rgb(${c.rgb.join(',')})` }}
              />
              {c.name}
            </label>
            <input
              type="range"
              aria-label={`contrast maximum of ${c.name}`}
              min={c.range[0]}
              max={c.range[1]}
              value={windows[i]?.[1] ?? c.window[1]}
              onChange={e => {
                const next = [...windows];
                next[i] = [
                  next[i][0],
                  Math.max(next[i][0] + 1, Number(e.target.value))
                ];
                setWindows(next);
              }}
            />
          </span>
        ))}
        {pyramid && pyramid.sizes.z > 1 && (
          <label className="nr-Viewer-plane">
            z {z}
            <input
              type="range"
              aria-label="z plane"
              min={0}
              max={pyramid.sizes.z - 1}
              value={z}
              onChange={e => setZ(Number(e.target.value))}
            />
          </label>
        )}
        {pyramid && pyramid.sizes.t > 1 && (
          <label className="nr-Viewer-plane">
            t {t}
            <input
              type="range"
              aria-label="time point"
              min={0}
              max={pyramid.sizes.t - 1}
              value={t}
              onChange={e => setT(Number(e.target.value))}
            />
          </label>
        )}
        <button
          type="button"
          className="nr-Viewer-button"
          aria-pressed={drawing}
          onClick={() => setDrawing(!drawing)}
        >
          Draw region
        </button>
        <button
          type="button"
          className="nr-Viewer-button"
          onClick={() => {
            const text = currentLink();
            Clipboard.copyToSystem(text);
            Notification.success(`Copied ${text}`, { autoClose: 2500 });
          }}
        >
          Copy link
        </button>
        <span className="nr-Viewer-cursor" aria-live="off">
          {position && `${position} · ${values}`}
        </span>
      </div>
      <div
        className="nr-Viewer-canvas"
        ref={host}
        onMouseDown={e => setPressed([e.clientX, e.clientY])}
        onClick={e => {
          // a click (not the end of a pan) on a region thread opens it
          if (
            drawing ||
            !pressed ||
            Math.abs(e.clientX - pressed[0]) +
              Math.abs(e.clientY - pressed[1]) >
              4
          ) {
            return;
          }
          const r = e.currentTarget.getBoundingClientRect();
          const [x, y] = toImage(e.clientX - r.left, e.clientY - r.top);
          const hit = shapes.filter(d => inside(x, y, d.polygon)).pop();
          if (hit) {
            setSelected(hit.th);
          }
        }}
      >
        {!pyramid && (
          <div className="nr-Viewer-loading">Loading {image.name}…</div>
        )}
        {pyramid && view && (
          <PictureInPictureViewer
            loader={pyramid.levels}
            contrastLimits={windows}
            colors={pyramid.channels.map(c => c.rgb)}
            channelsVisible={visible}
            selections={selection}
            height={size.height}
            width={size.width}
            overview={{}}
            overviewOn={false}
            clickCenter={false}
            snapScaleBar
            onViewportLoad={() => setLoads(n => n + 1)}
            viewStates={[view]}
            onViewStateChange={(change: { viewState: object }) => {
              const viewState = change.viewState as IViewState;
              setView({ ...viewState, id: DETAIL });
              return viewState;
            }}
            onHover={(info: { coordinate?: number[] }) => {
              const c = info.coordinate;
              setPosition(
                c
                  ? `x ${formatNm(c[0] * pyramid.pixelNm.x)}, y ${formatNm(c[1] * pyramid.pixelNm.y)}`
                  : ''
              );
            }}
            hoverHooks={{
              handleValue: (values: number[]) =>
                setValues(values.length ? `values ${values.join(', ')}` : ''),
              // viv 0.21 never calls it (it reads `handleCoordnate`): onHover gives the position
              handleCoordinate: () => undefined
            }}
            deckProps={{ layers, style: { position: 'absolute' } }}
          />
        )}
        {drawing && (
          <div
            className="nr-Viewer-draw"
            onMouseDown={onDown}
            onMouseMove={onMove}
            onMouseUp={onUp}
          />
        )}
        {box && <div className="nr-Viewer-box" style={boxStyle()} />}
        {pending && (
          <form
            className="nr-Viewer-comment"
            onSubmit={e => {
              e.preventDefault();
              void post();
            }}
          >
            <input
              aria-label="thread title"
              placeholder="Title"
              value={title}
              required
              onChange={e => setTitle(e.target.value)}
            />
            <textarea
              aria-label="comment"
              placeholder="Comment"
              value={body}
              required
              onChange={e => setBody(e.target.value)}
            />
            <button type="submit">Post</button>
            <button type="button" onClick={() => setPending(null)}>
              Cancel
            </button>
          </form>
        )}
        {selected && (
          <aside className="nr-Viewer-thread" aria-label="thread">
            <h3>
              #{selected.id} {selected.title} ({selected.status})
            </h3>
            <button type="button" onClick={() => setSelected(null)}>
              Close
            </button>
          </aside>
        )}
      </div>
    </div>
  );
}

/** The viewer as a main-area widget body. */
export class ViewerWidget extends ReactWidget {
  constructor(
    readonly client: RepositoryClient,
    readonly image: IImageInfo,
    readonly link: IViewLink
  ) {
    super();
    this.addClass('nr-ViewerWidget');
    this.title.label = `${link.accession}@v${link.version}/${image.name}`;
    this.key = formatViewLink(link);
  }

  /** The link this tab was opened with (one tab per link). */
  readonly key: string;

  protected render(): JSX.Element {
    return (
      <ImageViewer client={this.client} image={this.image} link={this.link} />
    );
  }
}
