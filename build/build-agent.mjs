// npm run build:agent — two Linux x64 executables, built offline from the
// local node: esbuild bundle → Node single-executable blob (protos and the
// raw-socket addon as assets) → postject into a copy of this node.
//   out/nfsha        the whole CLI (master, follower, gate, deploy, init, …)
//   out/nfsha-agent  the ESXi agent alone (agent and probe commands): none of
//                    the master's, follower's, deploy, SSH or PKI-issuing code
//                    is in it, so the host loads less (DESIGN: lean agent)
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
function assetFiles(agentOnly) {
  const walk = (dir, keep) => fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    return e.isDirectory() ? walk(rel, keep) : keep(rel) ? [rel] : [];
  });
  const proto = (f) => f.endsWith('.proto');
  const addon = 'node_modules/raw-socket/build/Release/raw.node';
  if (agentOnly) return ['proto/nfsha/v1/agent.proto', addon];
  return [
    ...walk('proto', proto),
    ...walk('node_modules/grpc-health-check/proto', proto),
    ...walk('node_modules/@grpc/reflection/build/proto', proto),
    ...walk('node_modules/etcd3/proto', proto),
    addon,
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

/**
 * In the agent executable, SSH (the esxcli-ssh backend, which runs from an
 * SCVM with the full nfsha) is a stub that says so.
 */
const noSshPlugin = {
  name: 'nfsha-no-ssh',
  setup(build) {
    build.onResolve({ filter: /\/common\/ssh$/ }, () => ({ path: 'ssh-stub', namespace: 'nfsha-no-ssh' }));
    build.onLoad({ filter: /.*/, namespace: 'nfsha-no-ssh' }, () => ({
      contents: 'throw new Error("the esxcli-ssh backend is not in the ESXi agent executable: run it from an SCVM with the full nfsha (nfsha agent --backend esxcli-ssh)");',
      loader: 'js',
    }));
  },
};

/**
 * In the agent executable, common/log is common/light-log: the same JSON
 * lines without pino (about 3 MiB resident less; DESIGN: lean agent).
 */
const lightLogPlugin = {
  name: 'nfsha-light-log',
  setup(build) {
    build.onResolve({ filter: /\/common\/log$/ }, () => ({ path: path.join(root, 'dist/common/light-log.js') }));
  },
};

/**
 * zod/mini, tree-shaken. tsc emits CommonJS, and a bundler keeps every
 * export of a module that is require()d: all of zod/mini (535 KB, about
 * 11 MiB resident). This serves `zod/mini` (and the English locale) from a
 * module that re-exports only the functions the agent's dist files call on
 * it, bundled by esbuild from zod's ES modules, where unused code drops out
 * (about 20 KB).
 */
const zodMiniPlugin = {
  name: 'nfsha-zod-mini',
  setup(build) {
    let shim;
    const usedNames = () => {
      const names = new Set();
      const walk = (dir) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          const f = path.join(dir, e.name);
          if (e.isDirectory()) { if (e.name !== 'test') walk(f); continue; }
          if (!f.endsWith('.js')) continue;
          const text = fs.readFileSync(f, 'utf8');
          for (const m of text.matchAll(/const (\w+) = __importStar\(require\("zod\/mini"\)\)/g)) {
            for (const use of text.matchAll(new RegExp(`\\b${m[1]}\\.(\\w+)`, 'g'))) names.add(use[1]);
          }
        }
      };
      walk(path.join(root, 'dist'));
      return [...names].sort();
    };
    build.onResolve({ filter: /^zod\/mini$/ }, () => ({ path: 'zod-mini', namespace: 'nfsha-zod-mini' }));
    build.onResolve({ filter: /^zod\/v4\/locales\/en\.js$/ }, () => ({ path: 'zod-en', namespace: 'nfsha-zod-mini' }));
    build.onLoad({ filter: /.*/, namespace: 'nfsha-zod-mini' }, async (args) => {
      if (args.path === 'zod-en') return { contents: 'module.exports = { __esModule: true, default: require("zod/mini").__en };', loader: 'js', resolveDir: root };
      shim ??= (await esbuild.build({
        stdin: {
          contents: `export { ${usedNames().join(', ')} } from 'zod/mini';\nexport { default as __en } from 'zod/v4/locales/en.js';\n`,
          resolveDir: root,
          loader: 'js',
        },
        bundle: true, write: false, platform: 'node', target: 'node20', format: 'cjs', logLevel: 'warning',
      })).outputFiles[0].text;
      return { contents: shim, loader: 'js', resolveDir: root };
    });
  },
};

/** Bundles one entry point and makes it a single executable out/<name>. */
async function buildExecutable(name, entry, agentOnly) {
  const bundle = path.join(out, `${name}.cjs`);
  await esbuild.build({
    entryPoints: [path.join(root, entry)],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: bundle,
    banner: { js: fs.readFileSync(path.join(root, 'build/sea-runtime.js'), 'utf8') },
    plugins: agentOnly ? [noSshPlugin, lightLogPlugin, zodMiniPlugin, dirnamePlugin] : [dirnamePlugin],
    logLevel: 'warning',
  });

  const files = assetFiles(agentOnly);
  const id = createHash('sha256').update(fs.readFileSync(bundle)).update(files.map((f) => fs.readFileSync(path.join(root, f))).join('')).digest('hex').slice(0, 16);
  const manifest = path.join(out, `${name}.manifest.json`);
  fs.writeFileSync(manifest, JSON.stringify({ id, files }));
  const seaConfig = {
    main: bundle,
    output: path.join(out, `${name}.sea-prep.blob`),
    disableExperimentalSEAWarning: true,
    assets: Object.fromEntries([['manifest.json', manifest], ...files.map((f) => [f, path.join(root, f)])]),
  };
  const configFile = path.join(out, `${name}.sea-config.json`);
  fs.writeFileSync(configFile, JSON.stringify(seaConfig, null, 2));
  execFileSync(process.execPath, ['--experimental-sea-config', configFile], { stdio: 'inherit' });

  const exe = path.join(out, name);
  fs.rmSync(exe, { force: true });
  fs.copyFileSync(process.execPath, exe);
  fs.chmodSync(exe, 0o755);
  try { execFileSync('strip', [exe]); } catch { /* binutils missing: keep symbols */ }
  execFileSync(process.execPath, [path.join(root, 'node_modules/postject/dist/cli.js'), exe, 'NODE_SEA_BLOB', seaConfig.output,
    '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const size = fs.statSync(exe).size;
  console.log(`built ${path.relative(root, exe)}: ${(size / 2 ** 20).toFixed(1)} MiB (${files.length} assets, id ${id})`);
}

await buildExecutable('nfsha', 'dist/cli/nfsha.js', false);
await buildExecutable('nfsha-agent', 'dist/cli/agent-main.js', true);
