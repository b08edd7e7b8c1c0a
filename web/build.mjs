// Builds the web UI into dist/: one bundled, minified script plus the page, its stylesheet and its icon.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync, renameSync } from 'node:fs';

const tmp = 'dist.tmp';
rmSync(tmp, { recursive: true, force: true });
mkdirSync(`${tmp}/assets`, { recursive: true });
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: 'es2021',
  outfile: `${tmp}/assets/app.js`,
  logLevel: 'warning',
});
copyFileSync('src/index.html', `${tmp}/index.html`);
copyFileSync('src/style.css', `${tmp}/assets/style.css`);
copyFileSync('src/favicon.svg', `${tmp}/favicon.svg`);  // /favicon.svg, as index.html links it
rmSync('dist', { recursive: true, force: true });
renameSync(tmp, 'dist');  // the served directory is replaced whole, never half-written
console.log('web UI built in web/dist');
