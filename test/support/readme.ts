import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The README's command lines, so tests run what the README prints rather
 * than a copy that can drift from it.
 */

export const README = path.resolve(__dirname, '..', '..', '..', 'README.md');

/**
 * The `sh` code blocks of the README section `heading` (a `## ` title),
 * each as its logical lines: continuation lines (`\` or a trailing `|`)
 * joined, blank lines dropped, comments kept.
 */
export function readmeBlocks(heading: string): string[][] {
  const text = fs.readFileSync(README, 'utf8');
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no section "## ${heading}"`);
  const next = text.indexOf('\n## ', start + 4);
  const section = text.slice(start, next < 0 ? undefined : next);
  const blocks: string[][] = [];
  for (const m of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines: string[] = [];
    let pending = '';
    for (const raw of m[1].split('\n')) {
      const line = pending + (pending ? raw.trimStart() : raw);
      if (/\\$/.test(raw)) { pending = line.slice(0, -1); continue; }
      if (/\|\s*$/.test(raw)) { pending = `${line} `; continue; }
      pending = '';
      if (line.trim()) lines.push(line.trim());
    }
    blocks.push(lines);
  }
  return blocks;
}

/** The first README block of `heading` with a line starting with `command `. */
export function readmeBlockOf(heading: string, command: string): string[] {
  const block = readmeBlocks(heading).find((b) => b.some((l) => l.startsWith(`${command} `)));
  if (!block) throw new Error(`README section "${heading}" has no block with ${command} lines`);
  return block;
}

/** A line without its trailing `# comment`. */
export function withoutComment(line: string): string {
  return line.replace(/\s+#\s.*$/, '');
}

/**
 * Shell words of a simple command line: whitespace-separated, single and
 * double quotes respected, `$NAME` expanded from `vars` outside single
 * quotes (unquoted expansions split into words, as the shell does).
 */
export function shellWords(line: string, vars: Record<string, string>): string[] {
  const words: string[] = [];
  let word: string | undefined;
  const add = (s: string) => { word = (word ?? '') + s; };
  const end = () => { if (word !== undefined) words.push(word); word = undefined; };
  const expand = (name: string) => {
    if (!(name in vars)) throw new Error(`README line uses $${name}, which the test does not define: ${line}`);
    return vars[name];
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (/\s/.test(c)) { end(); continue; }
    if (c === "'") {
      const j = line.indexOf("'", i + 1);
      add(line.slice(i + 1, j));
      i = j;
      continue;
    }
    if (c === '"') {
      const j = line.indexOf('"', i + 1);
      add(line.slice(i + 1, j).replace(/\$([A-Za-z_]\w*)/g, (_m, n: string) => expand(n)));
      i = j;
      continue;
    }
    if (c === '$') {
      const m = /^\$([A-Za-z_]\w*)/.exec(line.slice(i))!;
      const parts = expand(m[1]).split(/\s+/).filter(Boolean);
      parts.forEach((p, k) => { add(p); if (k < parts.length - 1) end(); });
      i += m[0].length - 1;
      continue;
    }
    add(c);
  }
  end();
  return words;
}

/** `T=/x` and `G="-a $T/b"` lines → variables (later ones may use earlier ones); `overrides` replace values. */
export function readmeVariables(lines: string[], overrides: Record<string, string>): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of lines) {
    const m = /^([A-Z_]+)=(.*)$/.exec(withoutComment(line));
    if (!m) continue;
    vars[m[1]] = overrides[m[1]] ?? shellWords(m[2], vars).join(' ');
  }
  return vars;
}
