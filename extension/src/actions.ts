/**
 * What the panel does outside itself: notifications, the code cell, the clipboard,
 * napari, a run's notebook opened in Lab. Every error from the service is shown as a JupyterLab notification carrying the
 * service's own message (the full text, with the hint, one click away).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Clipboard,
  Notification,
  showErrorMessage
} from '@jupyterlab/apputils';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';

import { ServerConnection } from '@jupyterlab/services';

import { INotebookContent, IRun, RepositoryClient } from './api';
import { notebookCode, reference } from './models';
import { RequestError } from './request';
import {
  LOCAL_RUNS_DIR,
  executedNotebook,
  localNotebookPath,
  shortId,
  untrusted
} from './runs';

/** Show an error as a notification; `what` says what was being done. */
export function notifyError(what: string, error: unknown): void {
  let title = 'Error';
  let detail = error instanceof Error ? error.message : String(error);
  if (error instanceof RequestError) {
    title = error.title;
    detail = error.message;
  }
  Notification.error(`${what}: ${detail}`, {
    autoClose: 10000,
    actions: [
      {
        label: 'Details',
        caption: 'Show the whole message',
        callback: () => {
          void showErrorMessage(`${what}: ${title}`, detail);
        }
      }
    ]
  });
}

/** Where "Open in notebook" puts the code: the notebook in the active tab, or a new
 * notebook when the active tab is something else (a dataset page, a terminal): code never
 * lands in a notebook the user is not looking at. */
async function targetNotebook(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null
): Promise<NotebookPanel> {
  const current = tracker?.currentWidget;
  if (current && !current.isDisposed && app.shell.currentWidget === current) {
    return current;
  }
  const created = (await app.commands.execute('notebook:create-new', {
    kernelName: 'python3'
  })) as NotebookPanel;
  return created;
}

/**
 * Insert the cell that opens `accession@vN` (and `image`) with `nanorepo.open` below the
 * active cell of the current notebook (or into a new notebook). Nothing is run.
 */
export async function insertOpenCell(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  accession: string,
  version: number,
  image: string | null
): Promise<NotebookPanel> {
  const code = notebookCode(accession, version, image);
  const panel = await targetNotebook(app, tracker);
  await panel.context.ready;
  const notebook = panel.content;
  const active = notebook.activeCell;
  const reuse =
    active !== null &&
    active !== undefined &&
    active.model.type === 'code' &&
    active.model.sharedModel.getSource().trim() === '' &&
    notebook.widgets.length === 1;
  if (!reuse) {
    NotebookActions.insertBelow(notebook);
    NotebookActions.changeCellType(notebook, 'code');
  }
  const cell = notebook.activeCell;
  if (!cell) {
    throw new Error('the notebook has no active cell to write into');
  }
  cell.model.sharedModel.setSource(code);
  app.shell.activateById(panel.id);
  notebook.mode = 'command';
  Notification.success(
    `Inserted code opening ${reference(accession, version)}`,
    {
      autoClose: 3000
    }
  );
  return panel;
}

/** Copy `accession@vN` to the clipboard. */
export function copyReference(accession: string, version: number): void {
  const ref = reference(accession, version);
  Clipboard.copyToSystem(ref);
  Notification.success(`Copied ${ref}`, { autoClose: 2500 });
}

/**
 * "View in napari": start the viewer on the server's desktop when it has one, otherwise
 * show the command (with a button to copy it).
 */
export async function viewInNapari(
  client: RepositoryClient,
  accession: string,
  version: number,
  image: string | null
): Promise<void> {
  const answer = await client.napari(accession, version, image, true);
  if (answer.launched) {
    Notification.success(answer.reason, { autoClose: 5000 });
    return;
  }
  Notification.info(`Run in a terminal with a desktop: ${answer.command}`, {
    autoClose: false,
    actions: [
      {
        label: 'Copy command',
        callback: () => {
          Clipboard.copyToSystem(answer.command);
        }
      },
      {
        label: 'Why?',
        displayType: 'link',
        callback: () => {
          void showErrorMessage('View in napari', answer.reason);
        }
      }
    ]
  });
}

/** Copy a command (e.g. `nanorepo rerun RUN`) to the clipboard. */
export function copyCommand(command: string): void {
  Clipboard.copyToSystem(command);
  Notification.success(`Copied: ${command}`, { autoClose: 2500 });
}

type Contents = JupyterFrontEnd['serviceManager']['contents'];

async function exists(contents: Contents, path: string): Promise<boolean> {
  try {
    await contents.get(path, { content: false });
    return true;
  } catch (error) {
    if (
      error instanceof ServerConnection.ResponseError &&
      error.response.status === 404
    ) {
      return false;
    }
    throw error;
  }
}

/**
 * Open a run's notebook in JupyterLab: the executed one (with the outputs the run
 * produced) or the notebook as it was run. It is fetched from the service, saved without
 * trust marks (see {@link untrusted}) under `nanorepo-runs/` in the user's home, never
 * over an existing file, and opened. Returns the path.
 */
export async function openRunNotebook(
  app: JupyterFrontEnd,
  client: RepositoryClient,
  run: IRun,
  executed: boolean
): Promise<string> {
  const output = executed ? executedNotebook(run) : null;
  if (executed && !output) {
    throw new Error(
      `run ${shortId(run.id)} kept no executed notebook; open the notebook as run instead`
    );
  }
  const content = output
    ? await client.runOutputJSON<INotebookContent>(run.id, output.name)
    : await client.runNotebook(run.id);
  const notebook = untrusted(content);
  const contents = app.serviceManager.contents;
  if (!(await exists(contents, LOCAL_RUNS_DIR))) {
    await contents.save(LOCAL_RUNS_DIR, { type: 'directory' });
  }
  let path = localNotebookPath(run, executed);
  for (let attempt = 2; await exists(contents, path); attempt++) {
    if (attempt > 100) {
      throw new Error(
        `too many copies of this notebook in ${LOCAL_RUNS_DIR}/: remove some and try again`
      );
    }
    path = localNotebookPath(run, executed, attempt);
  }
  await contents.save(path, {
    type: 'notebook',
    format: 'json',
    content: notebook
  });
  await app.commands.execute('docmanager:open', { path });
  Notification.success(
    `Saved the ${executed ? 'executed ' : ''}notebook of run ${shortId(run.id)} as ${path}`,
    {
      autoClose: 4000
    }
  );
  return path;
}
