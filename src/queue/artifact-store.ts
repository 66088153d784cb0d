/**
 * Where a submitted job's run folder (checkpoints, metrics) and export live, seen from any worker.
 *
 * A worker resumes a job another worker died in from the checkpoint that worker wrote, so the run folder must be
 * storage every worker reaches. `FsArtifactStore` is that storage as a path (a shared filesystem: NFS, a
 * Kubernetes ReadWriteMany volume, or one machine). An object-store implementation would download the run folder
 * in `open`, and upload checkpoints and the export in `publish`; nothing else in the queue code changes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkpointsDir } from '../train/checkpoint/store';

export interface ArtifactStore {
  /** A local run folder for the job's configured `out`, holding whatever an earlier attempt left there. */
  open(out: string): Promise<string>;
  /** Whether that folder holds a checkpoint to resume from (a previous worker died mid-job). */
  hasCheckpoint(runDir: string): boolean;
  /** Makes the run folder and export visible to everyone once the job finished. */
  publish(runDir: string, exportDir: string): Promise<void>;
}

/** A shared filesystem: the configured paths are the artifacts, so open and publish have nothing to copy. */
export class FsArtifactStore implements ArtifactStore {
  async open(out: string): Promise<string> {
    return path.resolve(out);
  }
  hasCheckpoint(runDir: string): boolean {
    const root = checkpointsDir(runDir);
    return fs.existsSync(root) && fs.readdirSync(root).some((n) => fs.existsSync(path.join(root, n, 'state.json')));
  }
  async publish(): Promise<void> {}
}
