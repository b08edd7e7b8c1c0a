// Builds the web UI into dist/: a bundled, minified script per page (the search and comparison views; the
// listening test), the pages, their stylesheet and the icon.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync, renameSync } from 'node:fs';

const tmp = 'dist.tmp';
rmSync(tmp, { recursive: true, force: true });
mkdirSync(`${tmp}/assets`, { recursive: true });
await build({
  entryPoints: { app: 'src/main.ts', listen: 'src/listen.ts' },
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: 'es2021',
  outdir: `${tmp}/assets`,
  logLevel: 'warning',
});
copyFileSync('src/index.html', `${tmp}/index.html`);
copyFileSync('src/listen.html', `${tmp}/listen.html`);  // the listening test
copyFileSync('src/style.css', `${tmp}/assets/style.css`);
copyFileSync('src/favicon.svg', `${tmp}/favicon.svg`);  // /favicon.svg, as index.html links it
rmSync('dist', { recursive: true, force: true });
renameSync(tmp, 'dist');  // the served directory is replaced whole, never half-written
console.log('web UI built in web/dist');
