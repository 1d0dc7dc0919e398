// npm run build:agent — one Linux x64 executable of the nfsha CLI, built offline
// from the local node: esbuild bundle → Node single-executable blob (protos and
// the raw-socket addon as assets) → postject into a copy of this node.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'out');
fs.mkdirSync(out, { recursive: true });

/** Files libraries read at run time next to their source, as repo-relative paths. */
function assetFiles() {
  const walk = (dir, keep) => fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    return e.isDirectory() ? walk(rel, keep) : keep(rel) ? [rel] : [];
  });
  const proto = (f) => f.endsWith('.proto');
  return [
    ...walk('proto', proto),
    ...walk('node_modules/grpc-health-check/proto', proto),
    ...walk('node_modules/@grpc/reflection/build/proto', proto),
    ...walk('node_modules/etcd3/proto', proto),
    'node_modules/raw-socket/build/Release/raw.node',
  ];
}

/** Rewrites `__dirname` in bundled files to a directory inside the extracted assets. */
const dirnamePlugin = {
  name: 'nfsha-dirname',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, async (args) => {
      const text = await fs.promises.readFile(args.path, 'utf8');
      if (!text.includes('__dirname')) return undefined;
      const rel = path.relative(root, path.dirname(args.path));
      return { contents: text.replace(/\b__dirname\b/g, `__nfshaAssets.dir(${JSON.stringify(rel)}, __dirname)`), loader: 'js' };
    });
    build.onResolve({ filter: /\.node$/ }, (args) => ({ path: path.relative(root, path.resolve(args.resolveDir, args.path)), namespace: 'nfsha-native' }));
    build.onLoad({ filter: /.*/, namespace: 'nfsha-native' }, (args) => ({ contents: `module.exports = __nfshaAssets.native(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

const bundle = path.join(out, 'nfsha.cjs');
await esbuild.build({
  entryPoints: [path.join(root, 'dist/cli/nfsha.js')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: bundle,
  banner: { js: fs.readFileSync(path.join(root, 'build/sea-runtime.js'), 'utf8') },
  plugins: [dirnamePlugin],
  logLevel: 'warning',
});

const files = assetFiles();
const id = createHash('sha256').update(fs.readFileSync(bundle)).update(files.map((f) => fs.readFileSync(path.join(root, f))).join('')).digest('hex').slice(0, 16);
fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify({ id, files }));
const seaConfig = {
  main: bundle,
  output: path.join(out, 'sea-prep.blob'),
  disableExperimentalSEAWarning: true,
  assets: Object.fromEntries([['manifest.json', path.join(out, 'manifest.json')], ...files.map((f) => [f, path.join(root, f)])]),
};
fs.writeFileSync(path.join(out, 'sea-config.json'), JSON.stringify(seaConfig, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', path.join(out, 'sea-config.json')], { stdio: 'inherit' });

const exe = path.join(out, 'nfsha');
fs.rmSync(exe, { force: true });
fs.copyFileSync(process.execPath, exe);
fs.chmodSync(exe, 0o755);
try { execFileSync('strip', [exe]); } catch { /* binutils missing: keep symbols */ }
execFileSync(process.execPath, [path.join(root, 'node_modules/postject/dist/cli.js'), exe, 'NODE_SEA_BLOB', seaConfig.output,
  '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: ['ignore', 'ignore', 'inherit'] });
const size = fs.statSync(exe).size;
console.log(`built ${path.relative(root, exe)}: ${(size / 2 ** 20).toFixed(1)} MiB (${files.length} assets, id ${id})`);
