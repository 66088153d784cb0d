import * as path from 'node:path';
import * as fs from 'node:fs';

/**
 * The folder holding package.json, the shipped model and the sample photos. This file compiles to
 * dist/package-root.js, one level below the root just as src/package-root.ts is, so the same
 * relative step works from the sources (tests, tsx) and from the installed package.
 */
export const PACKAGE_ROOT = path.join(__dirname, '..');

/** The embedded ImageNet MobileNet that a job uses when it names no model (config default). */
export const DEFAULT_MODEL_SOURCE = 'models/mobilenet_v1_0.25_224';

/** The full sample photos (150, 8.6 MB): present in a clone, left out of the npm tarball for size. */
export const DEMO_DATA = path.join(PACKAGE_ROOT, 'data', 'flowers');

/** The small subset (120 photos, about 2 MB) that the npm tarball ships instead; see its NOTICE.md. */
export const DEMO_SAMPLE = path.join(PACKAGE_ROOT, 'data', 'flowers-sample');

/**
 * Which photos `layertune demo` uses: the full set where it exists (a clone, or an install from a
 * folder or git URL), else the subset shipped in the tarball. Returns undefined when neither is there.
 */
export function demoPhotos(exists: (p: string) => boolean = fs.existsSync): { dir: string; which: 'full' | 'sample' } | undefined {
  if (exists(DEMO_DATA)) return { dir: DEMO_DATA, which: 'full' };
  if (exists(DEMO_SAMPLE)) return { dir: DEMO_SAMPLE, which: 'sample' };
  return undefined;
}

/**
 * The default model string is relative, and inside a clone it resolves from the working directory as
 * it always did. In a consumer project that folder does not exist, so it falls back to the copy
 * inside the package. Paths the user gives are never redirected.
 */
export function resolveDefaultModel(location: string, exists: (p: string) => boolean): string {
  if (location !== DEFAULT_MODEL_SOURCE || exists(location)) return location;
  return path.join(PACKAGE_ROOT, DEFAULT_MODEL_SOURCE);
}

/** The version in the package's own package.json (the CLI's --version and the export's metadata). */
export function packageVersion(): string {
  // read at call time rather than imported: a JSON import would pull package.json into dist's rootDir
  return JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version;
}
