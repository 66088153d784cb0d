#!/usr/bin/env node
// The CLI runs the compiled JavaScript in dist/ (npm run build; prepare builds it on npm ci / install
// from git / npm pack). It calls run() itself instead of letting main.js guess from require.main or
// argv[1], which neither name main.js when started through a node_modules/.bin symlink or npx.
require('../dist/cli/main.js').run();
