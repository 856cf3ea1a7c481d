// jest, as the JupyterLab extension template configures it (@jupyterlab/testing's preset:
// ts-jest for our TypeScript, babel for the ES modules Lab's packages ship).
const jestJupyterLab = require('@jupyterlab/testing/lib/jest-config');

const esModules = [
  '@codemirror',
  '@jupyter/ydoc',
  '@jupyter/react-components',
  '@jupyter/web-components',
  '@microsoft',
  '@jupyterlab/',
  'exenv-es6',
  'lib0',
  'marked',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'y-websocket',
  'yjs'
].join('|');

const baseConfig = jestJupyterLab(__dirname);

module.exports = {
  ...baseConfig,
  automock: false,
  reporters: ['default'],
  collectCoverageFrom: ['src/**/*.{ts,tsx}', '!src/**/*.d.ts'],
  testRegex: 'src/__tests__/.*\\.spec\\.tsx?$',
  testTimeout: 30000,
  transformIgnorePatterns: [`/node_modules/(?!${esModules}).+`]
};
