/** The models area's public API: every source behind one loader, the architectures, the readers. */
export { loadBackbone, classifySource, RegistryModelSource } from './registry';
export type { LoadBackboneOptions, SourceKind } from './registry';
export { buildArch, KNOWN_ARCHS } from './arch';
export type { ArchOptions, BuiltArch, Convention, ParamLayer } from './arch';
export { disposeLoaded, loadTorchSafetensors } from './torch-source';
export type { LoadedBackbone } from './torch-source';
export { inferTorchArch } from './torch-weights';
export { loadKerasH5 } from './keras-h5';
export { loadFrozenEmbedder, refuseUnfreeze } from './graph-source';
export type { FrozenEmbedder } from './graph-source';
export { checkParity, compareLogits, PARITY_RTOL } from './parity';
export type { ParityResult } from './parity';
export { readSafetensors, parseSafetensors, tensorAsFloat32 } from './safetensors';
export { modelSourceSchema } from './schema';
export type { ModelSourceConfig } from './schema';
export { describeBackbone, formatDescription } from './describe';
export type { ModelDescription, LayerRow, StageRow } from './describe';
