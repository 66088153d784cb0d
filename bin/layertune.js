#!/usr/bin/env node
// The CLI runs the compiled JavaScript in dist/ (npm run build; prepare builds it on npm ci / install
// from git / npm pack). It calls run() itself instead of letting main.js guess from require.main or
// argv[1], which neither name main.js when started through a node_modules/.bin symlink or npx.
const path = require('node:path');
const main = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
let cli;
try {
  cli = require(main);
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(main)) {
    // A clone where npm ci/npm install has not run yet has no dist/: say how to get it, not a stack trace.
    console.error(`error: ${main} is missing; run \`npm ci\` (or \`npm run build\`) in ${path.dirname(__dirname)} first`);
    process.exit(2);
  }
  throw e;
}
cli.run();
