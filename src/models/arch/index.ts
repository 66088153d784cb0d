import { ConfigError, ModelFormatError } from '../../errors';
import type { ArchOptions, BuiltArch } from './common';
import { formatAlpha, KNOWN_ARCHS } from './names';
import { buildMobileNetV1, MOBILENET_V1_ALPHAS } from './mobilenet-v1';
import { buildMobileNetV2, MOBILENET_V2_ALPHAS } from './mobilenet-v2';
import { buildResNet, RESNET_LAYOUT, type ResNetDepth } from './resnet';

export type { ArchOptions, BuiltArch, Convention, ParamLayer } from './common';

type Builder = (opts: ArchOptions) => BuiltArch;

const BUILDERS = new Map<string, Builder>([
  ...MOBILENET_V1_ALPHAS.map((a): [string, Builder] => [`mobilenet_v1_${formatAlpha(a)}`, (o) => buildMobileNetV1(a, o)]),
  ...MOBILENET_V2_ALPHAS.map((a): [string, Builder] => [`mobilenet_v2_${formatAlpha(a)}`, (o) => buildMobileNetV2(a, o)]),
  ...(Object.keys(RESNET_LAYOUT).map(Number) as ResNetDepth[]).map((d): [string, Builder] => [`resnet${d}`, (o) => buildResNet(d, o)]),
]);

export { KNOWN_ARCHS };

/**
 * Builds an architecture by name. An unknown name is the user's mistake: a ConfigError on
 * `model.arch`, or a ModelFormatError on `source` when the name came from a weights file.
 */
export function buildArch(name: string, opts: ArchOptions = {}, source?: string): BuiltArch {
  const builder = BUILDERS.get(name);
  if (!builder) {
    const detail = `unknown architecture "${name}"; known: ${KNOWN_ARCHS.join(', ')}`;
    throw source ? new ModelFormatError(source, `field arch: ${detail}`) : new ConfigError('model.arch', detail);
  }
  return builder(opts);
}
