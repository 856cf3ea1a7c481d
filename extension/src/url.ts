/**
 * The URL parameter that opens a dataset's page when Lab starts (the hub landing page's
 * "Open in Lab" links set it). A module of its own, so tests can use it without loading
 * the plugin and the image viewer's WebGL stack.
 */

/** The URL parameter that opens a dataset's page when Lab starts. */
export const DATASET_PARAM = 'nanorepo-dataset';

/** The accession asked for by `?nanorepo-dataset=ACC` in `url`, if it looks like one. */
export function datasetFromUrl(url: string): string | null {
  let value: string | null = null;
  try {
    value = new URL(url).searchParams.get(DATASET_PARAM);
  } catch {
    return null;
  }
  return value && /^[A-Za-z][A-Za-z0-9-]{0,31}$/.test(value) ? value : null;
}
