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

/** The sample photos `layertune demo` fine-tunes on. */
export const DEMO_DATA = path.join(PACKAGE_ROOT, 'data', 'flowers');

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
