/**
 * The typed request helper of the extension template, pointed at the nanorepo forwarder.
 *
 * Every call goes to `{baseUrl}nanorepo/api/...` on the user's own Jupyter server, which
 * forwards it to the nanorepo service with the user's token (`nanorepo/jupyter`). Going
 * through `ServerConnection.makeRequest` gives the Jupyter token or cookie and the `_xsrf`
 * header, exactly as every other JupyterLab request.
 *
 * The service answers errors as `application/problem+json` (RFC 9457); they become a
 * {@link RequestError} carrying the problem, so the UI can show the service's own message
 * and, for a 412, the newer state the service sent (`current`) with its ETag.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** Where the forwarder lives, below the server's base URL. */
export const API_NAMESPACE = 'nanorepo/api';

/** An error as the service describes it (RFC 9457 problem details). */
export interface IProblem {
  type: string;
  title: string;
  status: number;
  detail: string;
  hint?: string | null;
  errors?: Array<{ [key: string]: unknown }> | null;
  current?: unknown;
}

/** A successful answer with the headers that matter to a client. */
export interface IResponse<T> {
  data: T;
  status: number;
  etag: string | null;
}

/**
 * Why a request failed: the HTTP status (0 when the Jupyter server was not reached), the
 * service's problem (if it sent one) and the ETag of the current state (on a 412).
 */
export class RequestError extends Error {
  readonly status: number;
  readonly problem: IProblem | null;
  readonly etag: string | null;

  constructor(
    status: number,
    message: string,
    problem: IProblem | null = null,
    etag: string | null = null
  ) {
    super(message);
    this.name = 'RequestError';
    this.status = status;
    this.problem = problem;
    this.etag = etag;
  }

  /** Short title for a notification: the problem's title or the status. */
  get title(): string {
    if (this.problem?.title) {
      return this.problem.title;
    }
    return this.status ? `HTTP ${this.status}` : 'Network error';
  }

  /** On a 412 (somebody changed it first): the resource as it is now. */
  get current(): unknown {
    return this.problem?.current ?? null;
  }
}

/** The full URL of an API path (for `<img src>` and links), relative to the server. */
export function apiUrl(
  endPoint: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
}

function isProblem(value: unknown): value is IProblem {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as IProblem).status === 'number' &&
    typeof (value as IProblem).detail === 'string'
  );
}

/** The message a user reads: the service's `detail` and, if given, its `hint`. */
export function problemMessage(problem: IProblem): string {
  return problem.hint ? `${problem.detail} (${problem.hint})` : problem.detail;
}

/**
 * Call the service through the forwarder; the body (parsed JSON) with status and ETag.
 *
 * @param endPoint path below `nanorepo/api/`, with its query string
 * @param init fetch options (method, body, headers such as `If-Match`)
 * @param settings the Jupyter server connection (default: this page's)
 * @throws {RequestError} for any answer that is not 2xx/304, and when the server is unreachable
 */
export async function requestAPIWithMeta<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<IResponse<T>> {
  const url = apiUrl(endPoint, settings);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new RequestError(
      0,
      `The Jupyter server did not answer (${reason}); check that it is still running.`
    );
  }
  const text = await response.text();
  let body: unknown = null;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  const etag = response.headers.get('ETag');
  if (!response.ok && response.status !== 304) {
    if (isProblem(body)) {
      throw new RequestError(response.status, problemMessage(body), body, etag);
    }
    const reason =
      typeof body === 'string' && body.length > 0 && body.length < 300
        ? body
        : response.statusText || 'request failed';
    throw new RequestError(
      response.status,
      `${response.status}: ${reason}`,
      null,
      etag
    );
  }
  return { data: body as T, status: response.status, etag };
}

/**
 * Call the service through the forwarder; the body as JSON (the template's `requestAPI`).
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  return (await requestAPIWithMeta<T>(endPoint, init, settings)).data;
}

/** fetch options for a JSON body, with `If-Match` when an ETag is given. */
export function jsonInit(
  method: string,
  body: unknown,
  ifMatch?: string | null
): RequestInit {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json'
  };
  if (ifMatch) {
    headers['If-Match'] = ifMatch;
  }
  return { method, body: JSON.stringify(body), headers };
}
