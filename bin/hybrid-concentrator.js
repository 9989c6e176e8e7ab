#!/usr/bin/env node
// Runs the built concentrator (npm run build first).
import '../dist/concentrator/src/main.js'
