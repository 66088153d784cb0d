/**
 * The architecture names buildArch accepts, kept apart from the builders so that the config schema can list
 * them without loading tfjs.
 */
export const MOBILENET_V1_ALPHAS = [0.25, 0.5, 0.75, 1.0] as const;
export const MOBILENET_V2_ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] as const;
export const RESNET_DEPTHS = [18, 34, 50, 101, 152] as const;
export type ResNetDepth = (typeof RESNET_DEPTHS)[number];

/** The width multiplier as it appears in a name: 1 → '1.0', 0.25 → '0.25'. */
export function formatAlpha(alpha: number): string {
  return Number.isInteger(alpha) ? alpha.toFixed(1) : String(alpha);
}

/** Every architecture name, e.g. 'mobilenet_v1_0.25', 'mobilenet_v2_1.0', 'resnet50'. */
export const KNOWN_ARCHS: readonly string[] = [
  ...MOBILENET_V1_ALPHAS.map((a) => `mobilenet_v1_${formatAlpha(a)}`),
  ...MOBILENET_V2_ALPHAS.map((a) => `mobilenet_v2_${formatAlpha(a)}`),
  ...RESNET_DEPTHS.map((d) => `resnet${d}`),
];
