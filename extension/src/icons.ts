/**
 * The extension's icon (a storage drum), themed through `jp-icon3` like Lab's own icons.
 */
import { LabIcon } from '@jupyterlab/ui-components';

import repositorySvg from '../style/icons/repository.svg';

export const repositoryIcon = new LabIcon({
  name: 'nanorepo:repository',
  svgstr: repositorySvg
});
