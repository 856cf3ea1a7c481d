/**
 * The live Jupyter server the request and model tests talk to: a real Jupyter Server with
 * nanorepo's server extension, forwarding to a real nanorepo service over a seeded
 * repository. `tests/extension/test_jest.py` starts both and passes them here:
 *
 * - `NANOREPO_TEST_JUPYTER_URL`: the server's base URL (ends with `/`);
 * - `NANOREPO_TEST_JUPYTER_TOKEN`: its token (the server holds alice's service token);
 * - `NANOREPO_TEST_SEED`: JSON naming the seeded datasets.
 */
import { ServerConnection } from '@jupyterlab/services';

/** The runs recorded on `images` (tests/extension/_seed.py `record_provenance`). */
export interface IProvenanceSeed {
  /** a real `nanorepo.run` of intensity_statistics.ipynb (succeeded) */
  analysis: string;
  /** succeeded; its output was deposited as `derived` */
  smoothing: string;
  /** failed, with its error */
  failed: string;
  /** read `images` and the embargoed `hidden` */
  comparison: string;
  /** the dataset deposited from the smoothing run's output */
  derived: string;
  /** the smoothing run's output (in a subdirectory) */
  smoothed: string;
}

export interface ISeed {
  /** public dataset (one image, one thread) */
  public: string;
  /** embargoed, granted to bob */
  granted: string;
  /** embargoed, granted to nobody (alice owns it) */
  hidden: string;
  /** public dataset with many images and key/values */
  images: string;
  /** number of images in `images` */
  image_count: number;
  /** number of `images` images with condition=treated */
  treated: number;
  provenance: IProvenanceSeed;
}

export interface ILive {
  settings: ServerConnection.ISettings;
  seed: ISeed;
  url: string;
  token: string;
}

/** The live server, or an error saying how to run these tests. */
export function live(): ILive {
  const url = process.env.NANOREPO_TEST_JUPYTER_URL;
  const token = process.env.NANOREPO_TEST_JUPYTER_TOKEN;
  const seed = process.env.NANOREPO_TEST_SEED;
  if (!url || !token || !seed) {
    throw new Error(
      'these tests need a live Jupyter server and nanorepo service: run them with ' +
        '`pytest tests/extension/test_jest.py` (which starts both), not `npm test` alone'
    );
  }
  return {
    url,
    token,
    seed: JSON.parse(seed) as ISeed,
    settings: ServerConnection.makeSettings({
      baseUrl: url,
      token,
      appendToken: false
    })
  };
}
