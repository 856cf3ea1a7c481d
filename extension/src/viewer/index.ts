/**
 * The viewer's command: `nanorepo:view-image` opens an image of a dataset version (or a
 * shared view link `ACC@vN/image?...`) in a main-area tab, and `nanorepo:open-view-link`
 * asks for a link and opens it. One tab per link; opening the same link again shows it.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  InputDialog,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';

import { IImageInfo, RepositoryClient } from '../api';
import { notifyError } from '../actions';
import { repositoryIcon } from '../icons';
import { IViewLink, formatViewLink, parseViewLink } from './link';
import { ViewerWidget } from './widget';

export { IViewLink, formatViewLink, parseViewLink } from './link';

export const VIEW_IMAGE = 'nanorepo:view-image';
export const OPEN_VIEW_LINK = 'nanorepo:open-view-link';

/** The catalog entry of one image (the image list filtered by its exact name). */
export async function findImage(
  client: RepositoryClient,
  accession: string,
  version: number,
  name: string
): Promise<IImageInfo> {
  let cursor: string | null = null;
  do {
    const page = await client.images(
      accession,
      version,
      { filters: [], name, sort: 'name', order: 'asc' },
      cursor,
      100
    );
    const hit = page.items.find(i => i.name === name);
    if (hit) {
      return hit;
    }
    cursor = page.next;
  } while (cursor);
  throw new Error(
    `${accession}@v${version} has no image named ${name} (or you may not see it): check the name in the dataset's image table`
  );
}

/** Register the viewer's commands; returns a function opening a link. */
export function registerViewer(
  app: JupyterFrontEnd,
  client: RepositoryClient
): (link: IViewLink) => void {
  const tracker = new WidgetTracker<MainAreaWidget<ViewerWidget>>({
    namespace: 'nanorepo-viewer'
  });
  app.commands.addCommand(VIEW_IMAGE, {
    label: 'View Image',
    caption: 'Open an image of a dataset version in the viewer',
    icon: repositoryIcon,
    execute: async args => {
      const text = typeof args['link'] === 'string' ? args['link'] : '';
      try {
        const link = parseViewLink(text);
        const key = formatViewLink(link);
        const existing = tracker.find(w => w.content.key === key);
        if (existing) {
          app.shell.activateById(existing.id);
          return existing;
        }
        const image = await findImage(
          client,
          link.accession,
          link.version,
          link.image
        );
        const content = new ViewerWidget(client, image, link);
        const widget = new MainAreaWidget({ content });
        widget.id = `nanorepo-viewer-${Date.now()}`;
        widget.title.icon = repositoryIcon;
        widget.title.closable = true;
        void tracker.add(widget);
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        return widget;
      } catch (error) {
        notifyError('View image', error);
      }
    }
  });
  app.commands.addCommand(OPEN_VIEW_LINK, {
    label: 'Open a View Link…',
    caption: 'Open a shared link ACC@vN/image?... in the image viewer',
    icon: repositoryIcon,
    execute: async () => {
      const answer = await InputDialog.getText({
        title: 'Open a view link',
        placeholder: 'S-NANO1@v2/npc_sted?x=0,2000&y=0,2000'
      });
      if (answer.button.accept && answer.value) {
        return app.commands.execute(VIEW_IMAGE, { link: answer.value });
      }
    }
  });
  return link => {
    void app.commands.execute(VIEW_IMAGE, { link: formatViewLink(link) });
  };
}
