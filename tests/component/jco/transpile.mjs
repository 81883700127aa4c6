// Transpiles the release phantom:edge component to JS + core wasm with jco, into ./out
// (gitignored). The component path defaults to the cargo release build:
//   $PHANTOM_EDGE_COMPONENT, else $CARGO_TARGET_DIR (or <repo>/target)/wasm32-wasip2/release/
//   phantom_edge_component.wasm
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');

export function componentPath() {
  if (process.env.PHANTOM_EDGE_COMPONENT) return resolve(process.env.PHANTOM_EDGE_COMPONENT);
  const target = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(repo, 'target');
  return join(target, 'wasm32-wasip2/release/phantom_edge_component.wasm');
}

export const outDir = join(here, 'out');
export const jcoBin = join(here, 'node_modules/.bin/jco');

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const wasm = componentPath();
  if (!existsSync(wasm)) {
    console.error(`no component at ${wasm}: cargo build --release -p phantom-edge-component --target wasm32-wasip2`);
    process.exit(1);
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  execFileSync(jcoBin, ['transpile', wasm, '-o', outDir, '--name', 'phantom_edge', '-q'], { stdio: 'inherit' });
  // The output is ESM: mark the directory so Node loads it as a module wherever it is copied.
  writeFileSync(join(outDir, 'package.json'), JSON.stringify({ type: 'module' }, null, 2) + '\n');
  console.log(`transpiled ${wasm} -> ${outDir}`);
}
