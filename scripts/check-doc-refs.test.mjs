import { describe, expect, it } from 'vitest';
import { citedSections, findCitations, headingNumbers } from './check-doc-refs.mjs';

describe('check-doc-refs', () => {
  it('reads section numbers from the headings of the design doc', () => {
    const doc =
      '# title\n## 3. The algorithm\ntext §9\n### 3.4 The balancer\n#### 3.4.1 Capacity\n';
    expect([...headingNumbers(doc)]).toEqual(['3', '3.4', '3.4.1']);
  });

  it('finds every section a line cites, with the further § of the same clause', () => {
    expect(citedSections(' * Capability probe (DESIGN §2 data flow, §7).')).toEqual(['2', '7']);
    expect(citedSections('// float16 codec (DESIGN §3 encodings; core codec is §4)')).toEqual([
      '3',
    ]);
    expect(citedSections('see docs/design.md §3.4, and DESIGN §5.1.')).toEqual(['3.4', '5.1']);
    expect(citedSections('§3 of the paper, no design doc named')).toEqual([]);
  });

  it('counts a bare § as a citation only inside the design doc', () => {
    const files = { 'docs/design.md': 'as in §3.5 and §8', 'a.ts': 'the §3.5 of the paper' };
    const found = findCitations(Object.keys(files), (f) => files[f]);
    expect(found).toEqual([
      { file: 'docs/design.md', line: 1, section: '3.5' },
      { file: 'docs/design.md', line: 1, section: '8' },
    ]);
  });
});
