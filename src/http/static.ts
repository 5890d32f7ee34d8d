import express, { Router } from 'express';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root: the nearest folder above this file with a package.json (works from src/ under ts-jest and from dist/src/). */
function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/**
 * The browser pages: the lane (cashier screen) at /lane and the back office at /backoffice, built
 * by Vite into dist/web (`npm run build:web`; `npm start` does it when web/ changed). No key is
 * needed to load a page: the pages ask for one and send it as a Bearer token on every /v1 call.
 */
export function webPages(dir = process.env.POS_WEB_DIR || join(repoRoot(), 'dist', 'web')): Router {
  const r = Router();
  // Hashed file names: an asset never changes under its name, so browsers may keep it.
  r.use('/assets', express.static(join(dir, 'assets'), { immutable: true, maxAge: '365d', index: false }));
  for (const page of ['lane', 'backoffice']) {
    r.get(`/${page}`, (_req, res) => {
      const file = join(dir, page, 'index.html');
      if (!existsSync(file)) {
        // Not a 5xx: the service is fine, the page is simply not there until it is built.
        res.status(404).json({
          error: {
            code: 'page_not_built',
            message: `the ${page} page is not built; run \`npm run build:web\` (npm start does it)`,
            details: {},
          },
        });
        return;
      }
      // The page itself is small and names the current assets: never cache it.
      res.setHeader('cache-control', 'no-cache');
      res.sendFile(file);
    });
  }
  return r;
}
