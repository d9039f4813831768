#!/usr/bin/env node
// The installed `sluice` command. A plain file that exists before the build, so that `npm ci`
// links it into node_modules/.bin (npm skips a bin whose file is missing); the code is in dist.
try {
  await import('../dist/bin.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/bin.js')) {
    process.stderr.write('sluice: not built yet; run `npm run build` (or `npm start`) first\n');
    process.exit(70);
  }
  throw err;
}
