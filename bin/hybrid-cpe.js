#!/usr/bin/env node
// Runs the built CPE agent (npm run build first).
import '../dist/cpe/src/main.js'
