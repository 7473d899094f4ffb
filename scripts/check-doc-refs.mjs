// Lists every citation of the design in the tree (`DESIGN §3`, `DESIGN §2, §7`, `docs/design.md
// §3.4`, `design.md §5.1`) and fails when one names no heading of docs/design.md. Headings are
// `## 3. The algorithm` and `### 3.4 The balancer`; a citation of `§3.4` needs the subsection, one
// of `§3` only the section; inside docs/design.md every `§n` counts. `node
// scripts/check-doc-refs.mjs --list` prints every citation.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export const DESIGN_DOC = 'docs/design.md';
/** Files worth reading for citations: sources, scripts, docs, pages. */
const TEXT_FILE = /\.(ts|mts|mjs|js|wgsl|md|html|json|css|yml|yaml)$|(^|\/)run$/;

/** Section numbers of the doc's headings (`3`, `3.4`). */
export function headingNumbers(markdown) {
  const numbers = new Set();
  for (const line of markdown.split('\n')) {
    const m = /^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s/.exec(line);
    if (m?.[1]) numbers.add(m[1]);
  }
  return numbers;
}

/**
 * The section numbers one line cites: each `DESIGN` or `design.md` followed by `§n`, and the
 * further `§n` of the same parenthesis or clause (`DESIGN §2 data flow, §7`).
 */
export function citedSections(line) {
  const out = [];
  const start = /\b(?:DESIGN|design\.md)\s*§/g;
  let m;
  while ((m = start.exec(line)) !== null) {
    const from = m.index + m[0].length - 1;
    const rest = line.slice(from);
    // The clause ends at a closing bracket, a semicolon or the next citation.
    const end = rest.search(/[)\];]|\b(?:DESIGN|design\.md)|$/);
    for (const s of rest.slice(0, end).matchAll(/§\s?(\d+(?:\.\d+)*)/g)) {
      if (s[1]) out.push(s[1].replace(/\.$/, ''));
    }
  }
  return out;
}

/** Every `§n` of a line, for the design doc's references to its own sections. */
function everySection(line) {
  return [...line.matchAll(/§\s?(\d+(?:\.\d+)*)/g)].flatMap((s) => (s[1] ? [s[1]] : []));
}

/**
 * Every citation in the given files: { file, line, section }. Inside the design doc itself a
 * bare `§n` is a citation too.
 */
export function findCitations(files, read = (f) => readFileSync(f, 'utf8')) {
  const found = [];
  for (const file of files) {
    let text;
    try {
      text = read(file);
    } catch {
      continue; // listed by git but gone from the work tree
    }
    text.split('\n').forEach((line, i) => {
      const sections = file === DESIGN_DOC ? everySection(line) : citedSections(line);
      for (const section of sections) found.push({ file, line: i + 1, section });
    });
  }
  return found;
}

function main() {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter((f) => TEXT_FILE.test(f));
  let headings;
  try {
    headings = headingNumbers(readFileSync(DESIGN_DOC, 'utf8'));
  } catch (err) {
    console.error(`check-doc-refs: cannot read ${DESIGN_DOC}: ${String(err)}`);
    process.exit(1);
  }
  const citations = findCitations(files);
  const broken = citations.filter((c) => !headings.has(c.section));
  if (process.argv.includes('--list')) {
    for (const c of citations) console.log(`${c.file}:${c.line}: §${c.section}`);
  }
  const bySection = new Map();
  for (const c of citations) bySection.set(c.section, (bySection.get(c.section) ?? 0) + 1);
  const counts = [...bySection]
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([s, n]) => `§${s} ×${n}`)
    .join(', ');
  console.log(`${citations.length} design citations in ${files.length} files: ${counts}`);
  for (const c of broken) {
    console.error(`${c.file}:${c.line}: cites §${c.section}, which is no heading of ${DESIGN_DOC}`);
  }
  if (broken.length) process.exit(1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
