// The files the package carries beside dist/, made from the repository's at pack time (npm runs
// this as prepack, in libs/cogman): LICENSE and CHANGELOG.md as they are, and README.md without
// the sections about working on this repository (set-up, its tests, benchmarks), whose links point
// at files the package does not have. `postpack` removes them again.
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const FILES = ['README.md', 'LICENSE', 'CHANGELOG.md'];
/** Sections of the repository's README that are about the repository, not the package. */
const REPOSITORY_SECTIONS = ['Set-up', "Running this repository's tests", 'Benchmarks'];

if (process.argv[2] === 'clean') {
  for (const file of FILES) rmSync(file, { force: true });
} else {
  copyFileSync('../../LICENSE', 'LICENSE');
  copyFileSync('../../CHANGELOG.md', 'CHANGELOG.md');
  writeFileSync('README.md', packageReadme(readFileSync('../../README.md', 'utf8')));
}

/** The README split at its `## ` headings, without the repository's own sections. */
function packageReadme(text) {
  const parts = text.split(/^(?=## )/m);
  const kept = parts.filter((part) => {
    const heading = /^## (.*)$/m.exec(part);
    return !heading || !REPOSITORY_SECTIONS.includes(heading[1].trim());
  });
  return kept.join('').replace(/\n{3,}/g, '\n\n');
}
