/**
 * The sealed metadata rendered for people (authors first with ORCID links, REMBI order,
 * no empty sections, no "value" labels), the image table's pixel sizes and channels, and
 * the URL parameter that opens a dataset when Lab starts.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import { MessageLoop } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import * as React from 'react';

import { ISealedMetadata } from '../api';
import { datasetFromUrl } from '../url';
import {
  Immutable,
  authorsOf,
  channelsOf,
  isEmpty,
  orcidId,
  orderedSections,
  pixelSizes
} from '../metadata';

const SEALED: ISealedMetadata = {
  accession: 'S-NANO1',
  version: 2,
  sha256: 'ab'.repeat(32),
  metadata: {
    schema: 'nanorepo-rembi/1',
    images: { npc_sted: { acquisition: {} } },
    analysed_data: [],
    image_correlation: null,
    localisation_tables: {},
    specimen: {
      preparation: 'fixed 2.4% PFA',
      labels: [{ target: 'Nup96', fluorophore: 'AF647' }]
    },
    image_acquisition: { instrument: 'STED', depletion_wavelength_nm: 775 },
    extra_notes: 'kept after the REMBI sections',
    biosample: { organism: 'Homo sapiens', cell_line: 'U2OS', strain: '' },
    study: {
      description: 'Pores by STED.',
      authors: [
        {
          name: 'Ada Lovelace',
          orcid: 'https://orcid.org/0000-0002-1825-0097',
          affiliation: 'EMBL'
        },
        { name: 'Bo Li' },
        'Cy Xu'
      ]
    }
  }
};

describe('sealed metadata for people', () => {
  it('reads authors with their ORCID iDs, bare or as a URL', () => {
    expect(authorsOf(SEALED.metadata)).toEqual([
      {
        name: 'Ada Lovelace',
        orcid: '0000-0002-1825-0097',
        affiliation: 'EMBL'
      },
      { name: 'Bo Li', orcid: null, affiliation: null },
      { name: 'Cy Xu', orcid: null, affiliation: null }
    ]);
    expect(orcidId('0000-0001-5109-351X')).toBe('0000-0001-5109-351X');
    expect(orcidId('javascript:alert(1)')).toBeNull();
    expect(authorsOf(null)).toEqual([]);
  });

  it('orders sections as REMBI does and leaves out empty ones', () => {
    const keys = orderedSections(SEALED.metadata).map(([k]) => k);
    expect(keys).toEqual([
      'study',
      'biosample',
      'specimen',
      'image_acquisition',
      'extra_notes'
    ]);
    const study = orderedSections(SEALED.metadata)[0][1] as {
      [key: string]: unknown;
    };
    expect(Object.keys(study)).toEqual(['description']); // authors are shown first, apart
    expect(isEmpty({ a: [], b: { c: '' } })).toBe(true);
    expect(isEmpty(0)).toBe(false);
  });

  it('renders authors first as ORCID links, sections in order, no "value" label', async () => {
    const widget = ReactWidget.create(
      React.createElement(Immutable, { metadata: SEALED })
    );
    Widget.attach(widget, document.body);
    MessageLoop.sendMessage(widget, Widget.Msg.UpdateRequest);
    const node = widget.node;
    for (let i = 0; i < 100 && !node.querySelector('h4'); i++) {
      await new Promise(resolve => setTimeout(resolve, 10));
    }
    const headings = Array.from(node.querySelectorAll('h4')).map(
      h => h.textContent
    );
    expect(headings).toEqual([
      'Authors',
      'study',
      'biosample',
      'specimen',
      'image acquisition',
      'extra notes'
    ]);
    const link = node.querySelector('.nr-Authors a') as HTMLAnchorElement;
    expect(link.href).toBe('https://orcid.org/0000-0002-1825-0097');
    expect(link.rel).toContain('noopener');
    expect(node.querySelector('.nr-Authors')?.textContent).toContain(
      'Ada Lovelace'
    );
    const terms = Array.from(node.querySelectorAll('dt')).map(
      d => d.textContent
    );
    expect(terms).not.toContain('value');
    expect(terms).not.toContain('strain'); // an empty field is left out
    expect(
      node.querySelector('[data-section="extra_notes"] .nr-MetaValue')
        ?.textContent
    ).toBe('kept after the REMBI sections');
    widget.dispose();
  });
});

describe('the image table for microscopists', () => {
  it('shows pixel sizes per spatial axis in nm and channels with colours', () => {
    expect(
      pixelSizes({
        dims: ['c', 'z', 'y', 'x'],
        pixel_sizes: { z: 125, y: 40, x: 40, c: 1 }
      })
    ).toBe('z 125 · y 40 · x 40');
    expect(
      pixelSizes({ dims: ['y', 'x'], pixel_sizes: { y: 19.999999, x: 20 } })
    ).toBe('y 20 · x 20');
    expect(pixelSizes({ dims: ['y', 'x'], pixel_sizes: {} })).toBe('—');
    expect(
      channelsOf({
        channels: [{ name: 'H2B', color: '00ffff' }, { color: 'red;x:y' }]
      })
    ).toEqual([
      { name: 'H2B', color: '#00FFFF' },
      { name: 'channel 1', color: null }
    ]);
  });
});

describe('opening a dataset from the URL', () => {
  it('takes ?nanorepo-dataset=ACC and nothing that is not an accession', () => {
    expect(datasetFromUrl('http://h/user/a/lab?nanorepo-dataset=S-NANO1')).toBe(
      'S-NANO1'
    );
    expect(
      datasetFromUrl(
        'http://h/user/a/lab/tree/x?reset&nanorepo-dataset=S-NANO12'
      )
    ).toBe('S-NANO12');
    expect(
      datasetFromUrl('http://h/user/a/lab?nanorepo-dataset=..%2Fetc')
    ).toBeNull();
    expect(datasetFromUrl('http://h/user/a/lab')).toBeNull();
  });
});
