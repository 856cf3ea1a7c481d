/**
 * nanorepo's JupyterLab extension: the Repository panel and dataset pages.
 *
 * One plugin, `nanorepo:repository`, adds the panel to the left sidebar, the dataset
 * pages to the main area (restored with the workspace) and the commands:
 *
 * - `nanorepo:open-dataset` (`accession`): open a dataset's page;
 * - `nanorepo:search`: show the panel with the focus in its search box;
 * - `nanorepo:insert-code` (`accession`, `version`, `image`): insert the code cell
 *   opening a dataset (image) into the current notebook, or a new one;
 * - `nanorepo:copy-reference` (`accession`, `version`): copy `ACCESSION@vN`;
 * - `nanorepo:view-in-napari` (`accession`, `version`, `image`);
 * - `nanorepo:open-run-notebook` (`run`, `executed`): save a run's notebook (executed, or
 *   as it was run) under `nanorepo-runs/` in the home and open it;
 * - `nanorepo:copy-rerun` (`run`): copy `nanorepo rerun RUN`;
 * - `nanorepo:open-training`: show `~/nanorepo-notebooks/training` and open the first
 *   training notebook.
 *
 * The launcher has a "nanorepo" section with cards for the Repository panel and the
 * training notebooks.
 *
 * Lab opened as `lab?nanorepo-dataset=ACC` shows the panel and opens that dataset's page.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { RepositoryClient } from './api';
import {
  copyCommand,
  copyReference,
  insertOpenCell,
  notifyError,
  openRunNotebook,
  viewInNapari
} from './actions';
import { DatasetPage, IDatasetActions } from './dataset';
import { repositoryIcon } from './icons';
import { RepositoryPanel } from './panel';
import { rerunCommand } from './runs';
import { OPEN_VIEW_LINK, registerViewer } from './viewer';
import { datasetFromUrl } from './url';

export { RepositoryClient } from './api';
export { requestAPI, requestAPIWithMeta, RequestError } from './request';

/** Command ids. */
export namespace CommandIDs {
  export const openDataset = 'nanorepo:open-dataset';
  export const search = 'nanorepo:search';
  export const insertCode = 'nanorepo:insert-code';
  export const copyReference = 'nanorepo:copy-reference';
  export const viewInNapari = 'nanorepo:view-in-napari';
  export const openRunNotebook = 'nanorepo:open-run-notebook';
  export const copyRerun = 'nanorepo:copy-rerun';
  export const openTraining = 'nanorepo:open-training';
}

/** Where the hub keeps each user's copy of the training notebooks (server-relative). */
export const TRAINING_DIR = 'nanorepo-notebooks/training';
const FIRST_TRAINING = `${TRAINING_DIR}/01_finding_and_opening.ipynb`;

const PLUGIN_ID = 'nanorepo:repository';

export { DATASET_PARAM, datasetFromUrl } from './url';

interface ISettings {
  pageSize: number;
}

function readSettings(settings: ISettingRegistry.ISettings | null): ISettings {
  const pageSize = settings?.get('pageSize').composite;
  return { pageSize: typeof pageSize === 'number' ? pageSize : 20 };
}

function str(args: { [key: string]: unknown }, key: string): string | null {
  const value = args[key];
  return typeof value === 'string' && value.length > 0 ? value : null;
}

function num(args: { [key: string]: unknown }, key: string): number | null {
  const value = args[key];
  return typeof value === 'number' && Number.isInteger(value) && value > 0
    ? value
    : null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Search, read, discuss and open nanorepo datasets from the Repository panel.',
  autoStart: true,
  optional: [
    ILayoutRestorer,
    INotebookTracker,
    ISettingRegistry,
    ICommandPalette,
    ILauncher
  ],
  activate: async (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    notebooks: INotebookTracker | null,
    registry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    launcher: ILauncher | null
  ): Promise<void> => {
    let settings: ISettingRegistry.ISettings | null = null;
    if (registry) {
      try {
        settings = await registry.load(PLUGIN_ID);
      } catch (error) {
        notifyError('nanorepo settings', error);
      }
    }
    const { pageSize } = readSettings(settings);
    const client = new RepositoryClient();
    const tracker = new WidgetTracker<MainAreaWidget<DatasetPage>>({
      namespace: 'nanorepo-dataset'
    });

    const viewImage = registerViewer(app, client);
    const actions: IDatasetActions = {
      viewImage,
      openInNotebook: (accession, version, image) => {
        void app.commands.execute(CommandIDs.insertCode, {
          accession,
          version,
          image: image ?? ''
        });
      },
      copyReference: (accession, version) => {
        void app.commands.execute(CommandIDs.copyReference, {
          accession,
          version
        });
      },
      viewInNapari: (accession, version, image) => {
        void app.commands.execute(CommandIDs.viewInNapari, {
          accession,
          version,
          image: image ?? ''
        });
      },
      openDataset: accession => {
        void app.commands.execute(CommandIDs.openDataset, { accession });
      },
      openRunNotebook: (run, executed) => {
        openRunNotebook(app, client, run, executed).catch(error =>
          notifyError('Open notebook', error)
        );
      },
      copyCommand
    };

    app.commands.addCommand(CommandIDs.openDataset, {
      label: args =>
        str(args, 'accession')
          ? `Open ${str(args, 'accession')}`
          : 'Open Dataset',
      caption: 'Open a dataset page',
      icon: repositoryIcon,
      execute: args => {
        const accession = str(args, 'accession');
        if (!accession) {
          return;
        }
        const existing = tracker.find(w => w.content.accession === accession);
        if (existing) {
          app.shell.activateById(existing.id);
          return existing;
        }
        const content = new DatasetPage(client, accession, actions);
        const widget = new MainAreaWidget({ content });
        widget.id = `nanorepo-dataset-${accession}`;
        widget.title.icon = repositoryIcon;
        widget.title.closable = true;
        void tracker.add(widget);
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    const panel = new RepositoryPanel({
      client,
      pageSize,
      open: accession => {
        void app.commands.execute(CommandIDs.openDataset, { accession });
      }
    });
    app.shell.add(panel, 'left', { rank: 850 });
    panel.start();

    app.commands.addCommand(CommandIDs.search, {
      label: 'Search the Repository',
      icon: repositoryIcon,
      execute: () => {
        app.shell.activateById(panel.id);
        panel.focusSearch();
      }
    });

    app.commands.addCommand(CommandIDs.insertCode, {
      label: 'Open Dataset in Notebook',
      caption:
        'Insert a code cell that opens the dataset (or image) with nanorepo.open',
      execute: async args => {
        const accession = str(args, 'accession');
        const version = num(args, 'version');
        if (!accession || !version) {
          return;
        }
        try {
          await insertOpenCell(
            app,
            notebooks,
            accession,
            version,
            str(args, 'image')
          );
        } catch (error) {
          notifyError('Open in notebook', error);
        }
      }
    });

    app.commands.addCommand(CommandIDs.copyReference, {
      label: 'Copy Dataset Reference',
      execute: args => {
        const accession = str(args, 'accession');
        const version = num(args, 'version');
        if (accession && version) {
          copyReference(accession, version);
        }
      }
    });

    app.commands.addCommand(CommandIDs.viewInNapari, {
      label: 'View Dataset in napari',
      execute: async args => {
        const accession = str(args, 'accession');
        const version = num(args, 'version');
        if (!accession || !version) {
          return;
        }
        try {
          await viewInNapari(client, accession, version, str(args, 'image'));
        } catch (error) {
          notifyError('View in napari', error);
        }
      }
    });

    app.commands.addCommand(CommandIDs.openRunNotebook, {
      label: args =>
        args.executed === true
          ? 'Open Executed Notebook of Run'
          : 'Open Notebook of Run',
      caption:
        "Save a run's notebook under nanorepo-runs/ in your home and open it",
      execute: async args => {
        const id = str(args, 'run');
        if (!id) {
          return;
        }
        try {
          const run = await client.run(id);
          return await openRunNotebook(
            app,
            client,
            run,
            args.executed === true
          );
        } catch (error) {
          notifyError('Open notebook', error);
        }
      }
    });

    app.commands.addCommand(CommandIDs.copyRerun, {
      label: 'Copy Rerun Command',
      caption:
        'Copy `nanorepo rerun RUN` (same notebook, parameters and input versions)',
      execute: args => {
        const id = str(args, 'run');
        if (id) {
          copyCommand(rerunCommand(id));
        }
      }
    });

    app.commands.addCommand(CommandIDs.openTraining, {
      label: 'Training Notebooks',
      caption: `Show the training notebooks (~/${TRAINING_DIR}) and open the first`,
      icon: repositoryIcon,
      execute: async () => {
        try {
          if (app.commands.hasCommand('filebrowser:go-to-path')) {
            await app.commands.execute('filebrowser:go-to-path', {
              path: TRAINING_DIR
            });
          }
          return await app.commands.execute('docmanager:open', {
            path: FIRST_TRAINING
          });
        } catch (error) {
          notifyError('Training notebooks', error);
        }
      }
    });

    // Launcher cards: where a new user looks first on a fresh server
    launcher?.add({
      command: CommandIDs.search,
      category: 'nanorepo',
      rank: 0
    });
    launcher?.add({
      command: CommandIDs.openTraining,
      category: 'nanorepo',
      rank: 1
    });

    palette?.addItem({ command: CommandIDs.search, category: 'nanorepo' });
    palette?.addItem({ command: OPEN_VIEW_LINK, category: 'nanorepo' });
    palette?.addItem({
      command: CommandIDs.openTraining,
      category: 'nanorepo'
    });

    // `lab?nanorepo-dataset=ACC` (the service's landing page links there through
    // /hub/user-redirect/): show the panel and open the dataset's page
    const requested = datasetFromUrl(window.location.href);
    if (requested) {
      void app.restored.then(() => {
        app.shell.activateById(panel.id);
        void app.commands.execute(CommandIDs.openDataset, {
          accession: requested
        });
      });
    }

    if (restorer) {
      restorer.add(panel, 'nanorepo-repository');
      void restorer.restore(tracker, {
        command: CommandIDs.openDataset,
        args: widget => ({ accession: widget.content.accession }),
        name: widget => widget.content.accession
      });
    }
  }
};

export default plugin;
