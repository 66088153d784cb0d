#!/usr/bin/env node
// The CLI runs the TypeScript sources directly through tsx, so there is no build step
// between a clone and a first run.
require('tsx/cjs');
require('../src/cli/main.ts');
