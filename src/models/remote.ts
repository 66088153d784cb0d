import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from '../errors';
import { replaceFolderAtomic } from '../export/atomic';
import { declaredGroupBytes, MAX_MODEL_JSON_BYTES, MAX_WEIGHT_BYTES } from './io';
import { parseSafetensors } from './safetensors';

/**
 * Remote pretrained models (`http(s)://…/model.json`, `….safetensors`, `….h5`) are downloaded once into a
 * user cache folder and loaded from there by the local loaders, which validate them again.
 *
 * Cache policy (as Keras `get_file` and `torch.hub`): a URL names immutable content. A complete cached copy
 * is used without contacting the network; `refresh` downloads again and, if that fails, falls back to the
 * cached copy with a warning; `offline` never contacts the network. A copy is complete or absent: each
 * download is written whole into a temporary folder and renamed into place.
 */
export interface RemoteOptions {
  /** Default: `$LAYERTUNE_CACHE`, else `$XDG_CACHE_HOME/layertune`, else `~/.cache/layertune`. */
  cacheDir?: string;
  /** Use the cache only (default: `LAYERTUNE_OFFLINE=1`). */
  offline?: boolean;
  /** Download again even when cached (default: `LAYERTUNE_REFRESH=1`). */
  refresh?: boolean;
  /** Warnings and progress lines; default: stderr (stdout may be carrying `--json`). */
  log?: (line: string) => void;
  /** Abort a transfer that sends nothing for this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Report progress for downloads of at least this many bytes (default 1 MiB). */
  progressMinBytes?: number;
}

export function isRemote(uri: string): boolean {
  return /^https?:\/\//i.test(uri);
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LAYERTUNE_CACHE) return path.resolve(env.LAYERTUNE_CACHE);
  if (env.XDG_CACHE_HOME) return path.join(path.resolve(env.XDG_CACHE_HOME), 'layertune');
  return path.join(os.homedir(), '.cache', 'layertune');
}

/** The cache folder of one URL: `<cache>/models/<first 16 hex digits of sha256(url)>`. */
export function cacheFolderFor(url: string, cacheDir = defaultCacheDir()): string {
  return path.join(cacheDir, 'models', createHash('sha256').update(url).digest('hex').slice(0, 16));
}

type RemoteKind = 'tfjs' | 'safetensors' | 'h5';

/** What a URL points at, from its path (a trailing `/` means a tfjs model folder). */
function remoteKind(u: URL): { kind: RemoteKind; mainUrl: URL; mainName: string } {
  const p = u.pathname;
  if (p.endsWith('/')) return { kind: 'tfjs', mainUrl: new URL(`model.json${u.search}`, u), mainName: 'model.json' };
  const base = decodeURIComponent(p.slice(p.lastIndexOf('/') + 1));
  const ext = path.extname(base).toLowerCase();
  const safeName = base.replace(/[^A-Za-z0-9._-]/g, '_');
  if (ext === '.json') return { kind: 'tfjs', mainUrl: u, mainName: 'model.json' };
  if (ext === '.safetensors') return { kind: 'safetensors', mainUrl: u, mainName: safeName };
  if (['.h5', '.hdf5', '.keras'].includes(ext)) return { kind: 'h5', mainUrl: u, mainName: safeName };
  throw new ModelFormatError(u.href, 'unrecognised remote model URL (expected …/model.json, a folder URL ending in /, .safetensors or .h5)');
}

/**
 * The local path of a remote model (its model.json, or the single weights file), downloading it into the
 * cache if needed. Errors are ModelFormatErrors naming the URL and saying whether a cached copy exists.
 */
export async function fetchToCache(url: string, opts: RemoteOptions = {}): Promise<string> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ModelFormatError(url, 'not a valid URL');
  }
  const { kind, mainUrl, mainName } = remoteKind(u);
  const dir = cacheFolderFor(u.href, opts.cacheDir ?? defaultCacheDir());
  const local = path.join(dir, mainName);
  const cached = fs.existsSync(local);
  const offline = opts.offline ?? process.env.LAYERTUNE_OFFLINE === '1';
  const refresh = opts.refresh ?? process.env.LAYERTUNE_REFRESH === '1';
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (cached && !refresh) return local;
  if (offline) {
    if (cached) return local;
    throw new ModelFormatError(u.href, `offline (LAYERTUNE_OFFLINE=1) and no cached copy exists (looked in ${dir})`);
  }
  const dl = new Downloader(opts, log, u.href);
  try {
    await replaceFolderAtomic(dir, async (tmp) => {
      const files = kind === 'tfjs' ? await downloadTfjs(dl, mainUrl, tmp) : [await downloadSingle(dl, mainUrl, tmp, mainName, kind)];
      const record = { url: u.href, fetchedAt: new Date().toISOString(), files };
      fs.writeFileSync(path.join(tmp, 'source.json'), JSON.stringify(record, null, 2));
    });
  } catch (e) {
    const reason = e instanceof ModelFormatError && e.file === u.href ? e.message.slice(u.href.length + 2) : describeFailure(e);
    if (cached && fs.existsSync(local)) {
      log(`warning: ${u.href}: could not refresh (${reason}); using the cached copy in ${dir} from ${fs.statSync(local).mtime.toISOString()}`);
      return local;
    }
    throw new ModelFormatError(u.href, `${reason}; no cached copy exists (looked in ${dir})`);
  }
  return local;
}

function describeFailure(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err instanceof ModelFormatError) return err.message;
  const code = err?.cause?.code;
  if (err?.name === 'AbortError' || err?.name === 'TimeoutError') return 'download failed: the server stopped sending data (idle timeout)';
  return `download failed: ${code ?? err?.cause?.message ?? err?.message ?? String(e)}`;
}

/** Weight paths stay inside the model's folder, on the server and in the cache. */
function shardUrl(modelUrl: URL, p: unknown, where: string): { url: URL; rel: string } {
  const bad = (why: string): never => {
    throw new ModelFormatError(modelUrl.href, `${where}: weight path ${JSON.stringify(p)} ${why}`);
  };
  if (typeof p !== 'string' || p === '') return bad('must be a non-empty string');
  if (/^[a-z][a-z0-9+.-]*:/i.test(p) || p.startsWith('/') || p.includes('\\')) return bad('leaves the model folder (absolute)');
  let decoded: string;
  try {
    decoded = decodeURIComponent(p);
  } catch {
    return bad('is not a valid URL path (bad %-escape)');
  }
  const rel = path.posix.normalize(decoded);
  if (rel === '..' || rel.startsWith('../') || rel === '.' || path.posix.isAbsolute(rel)) return bad('leaves the model folder');
  const url = new URL(p, modelUrl);
  const folder = modelUrl.pathname.slice(0, modelUrl.pathname.lastIndexOf('/') + 1);
  if (url.origin !== modelUrl.origin || !url.pathname.startsWith(folder)) return bad('leaves the model folder');
  // tfjs's http loader carries the model URL's query (e.g. TF-Hub's ?tfjs-format=file) onto each shard
  url.search = modelUrl.search;
  return { url, rel };
}

async function downloadTfjs(dl: Downloader, modelUrl: URL, tmp: string): Promise<Array<{ path: string; bytes: number }>> {
  const jsonBytes = await dl.toBuffer(modelUrl, MAX_MODEL_JSON_BYTES, 'model.json');
  let json: { weightsManifest?: unknown };
  try {
    json = JSON.parse(jsonBytes.toString('utf8'));
  } catch (e) {
    throw new ModelFormatError(modelUrl.href, `not valid JSON (${(e as Error).message})`);
  }
  const manifest = (json?.weightsManifest ?? []) as tf.io.WeightsManifestConfig;
  if (!Array.isArray(manifest)) throw new ModelFormatError(modelUrl.href, 'weightsManifest must be an array');
  // everything is checked before the first shard is requested
  let total = 0;
  const plan = manifest.map((group, gi) => {
    if (group == null || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new ModelFormatError(modelUrl.href, `weightsManifest[${gi}] needs paths[] and weights[]`);
    }
    const bytes = declaredGroupBytes(group.weights, modelUrl.href).stored;
    total += bytes;
    if (total > MAX_WEIGHT_BYTES) throw new ModelFormatError(modelUrl.href, `manifest declares ${total} bytes of weights, over the limit`);
    return { bytes, shards: group.paths.map((p, j) => shardUrl(modelUrl, p, `weightsManifest[${gi}].paths[${j}]`)) };
  });
  fs.writeFileSync(path.join(tmp, 'model.json'), jsonBytes);
  const files = [{ path: 'model.json', bytes: jsonBytes.length }];
  dl.startProgress(total);
  for (const [gi, g] of plan.entries()) {
    let got = 0;
    for (const s of g.shards) {
      const dest = path.join(tmp, ...s.rel.split('/'));
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      // a server sending more than the group declares is cut off at the first excess byte
      const n = await dl.toFile(s.url, dest, g.bytes - got, 'the manifest leaves for it', `weightsManifest[${gi}] (${s.rel})`);
      got += n;
      files.push({ path: s.rel, bytes: n });
    }
    if (got !== g.bytes) {
      throw new ModelFormatError(
        modelUrl.href,
        `weightsManifest[${gi}] declares ${g.bytes} bytes but the downloaded shards (${g.shards.map((s) => s.rel).join(', ')}) hold ${got}`,
      );
    }
  }
  dl.endProgress();
  return files;
}

async function downloadSingle(dl: Downloader, url: URL, tmp: string, name: string, kind: RemoteKind): Promise<{ path: string; bytes: number }> {
  const dest = path.join(tmp, name);
  dl.startProgress(null);
  const n = await dl.toFile(url, dest, MAX_WEIGHT_BYTES, 'allowed for a weights file', name);
  dl.endProgress();
  // the safetensors header declares every tensor's byte range: a short or padded download is refused here
  if (kind === 'safetensors') parseSafetensors(fs.readFileSync(dest), url.href);
  return { path: name, bytes: n };
}

/** HTTP GETs with a byte cap, an idle timeout, Content-Length checks and throttled progress lines. */
class Downloader {
  private received = 0;
  private total: number | null = null;
  private lastReport = 0;
  private reporting = false;

  constructor(
    private readonly opts: RemoteOptions,
    private readonly log: (line: string) => void,
    private readonly label: string,
  ) {}

  startProgress(total: number | null): void {
    this.total = total;
    this.received = 0;
    this.lastReport = Date.now();
    this.reporting = total !== null && total >= (this.opts.progressMinBytes ?? 1024 * 1024);
  }

  endProgress(): void {
    if (this.reporting) this.log(`downloaded ${this.label}: ${mb(this.received)} MB`);
    this.reporting = false;
  }

  private progress(n: number, contentLength: number | null): void {
    this.received += n;
    if (this.total === null && contentLength !== null) {
      this.total = contentLength;
      this.reporting = contentLength >= (this.opts.progressMinBytes ?? 1024 * 1024);
    }
    const now = Date.now();
    if (!this.reporting || now - this.lastReport < 1000) return;
    this.lastReport = now;
    const t = this.total ?? 0;
    this.log(`downloading ${this.label}: ${mb(this.received)} of ${mb(t)} MB (${Math.floor((100 * this.received) / Math.max(1, t))}%)`);
  }

  private async open(
    url: URL,
    what: string,
  ): Promise<{
    res: Response;
    body: ReadableStreamDefaultReader<Uint8Array>;
    length: number | null;
    abort: AbortController;
    touch: () => void;
    done: () => void;
  }> {
    const abort = new AbortController();
    const idle = this.opts.idleTimeoutMs ?? 30_000;
    let timer = setTimeout(() => abort.abort(), idle);
    const touch = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => abort.abort(), idle);
    };
    const done = (): void => clearTimeout(timer);
    let res: Response;
    try {
      res = await fetch(url, { signal: abort.signal, redirect: 'follow' });
    } catch (e) {
      done();
      throw e;
    }
    if (!res.ok || !res.body) {
      done();
      await res.body?.cancel().catch(() => undefined);
      throw new ModelFormatError(this.label, `download failed: HTTP ${res.status} ${res.statusText} for ${what} (${url.href})`);
    }
    const cl = res.headers.get('content-length');
    const length = cl !== null && /^\d+$/.test(cl) ? Number(cl) : null;
    return { res, body: res.body.getReader(), length, abort, touch, done };
  }

  /**
   * GETs `url`, handing each chunk to `sink`; returns the byte count. More than `cap` bytes, announced or
   * sent, is refused at once (`capWhy` says where the cap comes from); fewer than Content-Length is a
   * transfer cut short.
   */
  private async stream(url: URL, cap: number, capWhy: string, what: string, sink: (chunk: Uint8Array, contentLength: number | null) => void): Promise<number> {
    const r = await this.open(url, what);
    let n = 0;
    try {
      if (r.length !== null && r.length > cap) {
        r.abort.abort();
        throw new ModelFormatError(this.label, `${what}: the server announces ${r.length} bytes, more than the ${cap} ${capWhy}`);
      }
      for (;;) {
        const { done, value } = await r.body.read();
        if (done) break;
        r.touch();
        n += value.length;
        if (n > cap) {
          r.abort.abort();
          throw new ModelFormatError(this.label, `${what}: the server sent more than the ${cap} bytes ${capWhy}`);
        }
        sink(value, r.length);
      }
    } finally {
      r.done();
    }
    if (r.length !== null && n !== r.length) throw new ModelFormatError(this.label, `${what}: transfer cut short (${n} of ${r.length} bytes)`);
    return n;
  }

  /** Streams `url` into `dest` with progress; returns its byte count. */
  async toFile(url: URL, dest: string, cap: number, capWhy: string, what: string): Promise<number> {
    const fd = fs.openSync(dest, 'w');
    try {
      return await this.stream(url, cap, capWhy, what, (chunk, length) => {
        fs.writeSync(fd, chunk);
        this.progress(chunk.length, length);
      });
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Reads a small response (model.json) into memory. */
  async toBuffer(url: URL, cap: number, what: string): Promise<Buffer> {
    const chunks: Uint8Array[] = [];
    await this.stream(url, cap, 'allowed for it', what, (chunk) => chunks.push(chunk));
    return Buffer.concat(chunks);
  }
}

function mb(n: number): string {
  return (n / (1024 * 1024)).toFixed(1);
}
