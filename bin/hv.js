#!/usr/bin/env node
// The `hv` command: runs the TypeScript CLI through tsx (a runtime dependency).
require('tsx/cjs');
require('../src/cli/main.ts').runAsProgram();
